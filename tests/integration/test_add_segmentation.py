"""Adding a segmentation to an existing study (a reader's edit, a second model's output).

Label maps are made with nibabel on the demo MNI studies' own grids (read from their
files, not from the catalog); previews are checked against nibabel's canonical
reorientation. Refusals (wrong grid, too large, not a label map, a viewer, another
project's user) answer with the reason and leave no row, no stored file, no preview.
"""

from __future__ import annotations

import base64
import io
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.serving import make_server
from werkzeug.test import TestResponse, encode_multipart

from portal.app import create_app
from portal.client import PortalClient, PortalError
from portal.config import Settings
from portal.db import migrate
from portal.db.models import AuditEntry, ReviewItem, Role, Segmentation, Study, User
from portal.db.session import Database
from portal.services import segmentation_add, tokens, viewer
from portal.services.auth import Principal
from portal.services.errors import InvalidInput
from portal.services.importer import ImportSettings, import_paths
from portal.services.segmentations import dice_between
from portal.services.store import preview_file
from tests.conftest import csrf_headers, dash_post, login, make_user
from tests.support.preview_world import fetch, import_demo, vti

EXAMPLE_4D = Path(nib.__file__).parent / "tests" / "data" / "example4d.nii.gz"
MNI = "MNI152 T1 1mm"
MNI_LAS = "MNI152 T1 1mm (LAS on disk)"


@dataclass
class World:
    app: Flask
    settings: Settings
    db: Database
    ids: dict[str, int]  # demo study name -> id; "other" is in another project
    sources: dict[str, Path]  # demo study name -> its image file
    tmp: Path

    def client(self, user: str) -> FlaskClient:
        client = self.app.test_client()
        login(client, user)
        return client


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    data = tmp_path_factory.mktemp("addseg")
    settings = Settings(data_dir=data / "data", secret_key="k")
    settings.data_dir.mkdir()
    migrate.upgrade(settings.resolved_database_url)
    app = create_app(settings)
    db = app.extensions["portal"].db
    ids, demo = import_demo(db, settings, data / "demo", (MNI, MNI_LAS))
    (ids["other"],) = import_paths(db, ImportSettings.of(settings), "other", [EXAMPLE_4D]).imported
    make_user(db, "rev", Role.REVIEWER, ["demo"])
    make_user(db, "exp", Role.EXPERT, ["demo"])
    make_user(db, "vie", Role.VIEWER, ["demo"])
    make_user(db, "out", Role.REVIEWER, ["other"])
    yield World(app, settings, db, ids, {d.name: Path(d.image_paths[0]) for d in demo}, data)
    db.dispose()


def _blocks(reference: nib.Nifti1Image, seed: int) -> np.ndarray:
    """Three boxes labelled 2, 5 and 9 (sizes from `seed`) on the reference image's grid."""
    labels = np.zeros(reference.shape[:3], np.uint8)
    s = seed
    labels[30 : 70 + s, 50:110, 40:90] = 2
    labels[100:140, 90 + s : 150, 80:120] = 5
    labels[60:80, 150:170, 100 : 110 + s] = 9
    return labels


def _label_file(world: World, study: str, name: str, seed: int = 0) -> tuple[Path, np.ndarray]:
    reference = nib.load(world.sources[study])
    labels = _blocks(reference, seed)
    path = world.tmp / name
    nib.save(nib.Nifti1Image(labels, reference.affine), path)
    return path, labels


def _post(
    client: FlaskClient, study_id: int, path: Path, name: str = "", key: str | None = None
) -> TestResponse:
    headers = csrf_headers(client)
    if key:
        headers["Idempotency-Key"] = key
    return client.post(
        f"/api/v1/studies/{study_id}/segmentations/attach",
        data={"file": (io.BytesIO(path.read_bytes()), path.name), "name": name},
        headers=headers,
    )


def _state(world: World, study_id: int) -> tuple[int, int, set[str], set[str]]:
    """Segmentation rows, review items, stored files and preview files of the catalog."""
    with world.db.session() as s:
        segs = s.scalar(select(func.count()).where(Segmentation.study_id == study_id))
        items = s.scalar(select(func.count()).where(ReviewItem.study_id == study_id))
    store = {str(p) for p in world.settings.store_dir.rglob("*") if p.is_file()}
    previews = {str(p) for p in world.settings.preview_dir.rglob("*") if p.is_file()}
    return int(segs or 0), int(items or 0), store, previews


def _principal(world: World, name: str) -> Principal:
    with world.db.session() as s:
        user = s.scalar(select(User).where(User.username == name))
        assert user is not None
        return Principal.of(user)


@pytest.mark.parametrize("study", [MNI, MNI_LAS])
def test_added_label_map_shows_in_the_pane_with_nibabels_voxels(world: World, study: str) -> None:
    sid = world.ids[study]
    path, labels = _label_file(world, study, f"reader2-{sid}.nii.gz")
    client = world.client("rev")
    response = _post(client, sid, path, "Reader 2 edit")
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["name"] == "Reader 2 edit" and body["study_id"] == sid
    voxel_ml = float(np.prod(nib.load(path).header.get_zooms()[:3])) / 1000.0
    assert [(lab["value"], lab["voxel_count"]) for lab in body["labels"]] == [
        (v, int((labels == v).sum())) for v in (2, 5, 9)
    ]
    for lab in body["labels"]:
        assert lab["volume_ml"] == pytest.approx(lab["voxel_count"] * voxel_ml, abs=1e-3)
    seg_id = body["id"]

    # The pane's data lists it after the import's own segmentation.
    with world.db.session() as s:
        _, meta = viewer.pane_data(s, _principal(world, "rev"), world.settings.preview_dir, sid)
        items = s.scalars(select(ReviewItem.key).where(ReviewItem.study_id == sid)).all()
        audited = s.scalars(
            select(AuditEntry.detail).where(
                AuditEntry.action == "segmentation.add", AuditEntry.target == f"study:{sid}"
            )
        ).all()
    entries = meta["segmentations"]
    assert [e["id"] for e in entries][-1] == seg_id and len(entries) == 2
    assert entries[1]["name"] == "Reader 2 edit"
    assert f"seg:{seg_id}" in items  # its own review item
    assert audited == [f"segmentation={seg_id} labels=3"]

    # Its labels.vti, made at once, holds nibabel's canonical labels on the preview grid.
    folder = world.settings.preview_dir / meta_uid(world, sid) / "segmentations" / str(seg_id)
    assert (folder / "labels.vti.gz").is_file() and (folder / "surfaces.json").is_file()
    base = f"/api/v1/studies/{sid}/segmentations/{seg_id}"
    rgba = vti(fetch(client, f"{base}/labels.vti"))
    image = vti(fetch(client, f"/api/v1/studies/{sid}/preview/image.vti"))
    assert rgba.array.shape[:3] == image.array.shape[:3]
    assert rgba.origin_mm == image.origin_mm and rgba.spacing_mm == image.spacing_mm
    step = meta["step"]
    canonical = nib.as_closest_canonical(nib.load(path))
    expected = np.asanyarray(canonical.dataobj)[:: step[0], :: step[1], :: step[2]]
    np.testing.assert_array_equal(rgba.array[..., 3] > 0, expected > 0)
    colours = {v: {tuple(c) for c in rgba.array[expected == v][:, :3]} for v in (2, 5, 9)}
    assert all(len(c) == 1 for c in colours.values())  # one colour per label
    assert len({next(iter(c)) for c in colours.values()}) == 3  # and three colours
    meshes = fetch(client, f"{base}/surfaces.json").get_json()
    assert [m["value"] for m in meshes] == [2, 5, 9]

    # Multi-read Dice can now compare the import's map and the reader's.
    with world.db.session() as s:
        first = s.scalars(
            select(Segmentation.id).where(Segmentation.study_id == sid).order_by(Segmentation.id)
        ).first()
        assert first is not None
        assert 0.0 <= dice_between(s, world.settings.store_dir, first, seg_id) < 1.0
        assert dice_between(s, world.settings.store_dir, seg_id, seg_id) == 1.0


def meta_uid(world: World, study_id: int) -> str:
    with world.db.session() as s:
        study = s.get(Study, study_id)
        assert study is not None
        return study.uid


def test_refused_files_leave_nothing(world: World) -> None:
    sid = world.ids[MNI]
    client = world.client("exp")
    before = _state(world, sid)
    reference = nib.load(world.sources[MNI])

    shifted = world.tmp / "shifted.nii.gz"  # right shape, origin 2 mm off
    moved = reference.affine.copy()
    moved[0, 3] += 2.0
    nib.save(nib.Nifti1Image(_blocks(reference, 3), moved), shifted)
    cropped = world.tmp / "cropped.nii.gz"
    nib.save(nib.Nifti1Image(_blocks(reference, 3)[:-1], reference.affine), cropped)
    fractional = world.tmp / "probabilities.nii.gz"
    nib.save(nib.Nifti1Image(_blocks(reference, 3) * np.float32(0.3), reference.affine), fractional)
    garbage = world.tmp / "garbage.nii.gz"
    garbage.write_bytes(b"this is not a NIfTI file at all")
    text = world.tmp / "notes.txt"
    text.write_text("labels: liver")

    cases = [
        (shifted, "grid"),
        (cropped, "grid"),
        (fractional, "whole numbers"),
        (garbage, ""),
        (text, "not a label map file"),
    ]
    for path, reason in cases:
        response = _post(client, sid, path)
        assert response.status_code == 400, (path.name, response.get_json())
        error = response.get_json()
        assert error["code"] == "invalid"
        assert error["error"].startswith(f"{path.name}: "), error
        assert reason in error["error"], error
    assert _state(world, sid) == before


def test_oversize_is_refused_before_reading(world: World) -> None:
    sid = world.ids[MNI]
    before = _state(world, sid)
    big = world.tmp / "big.nii"  # uncompressed: 182*218*182 bytes, over 1 MiB
    reference = nib.load(world.sources[MNI])
    nib.save(nib.Nifti1Image(_blocks(reference, 4), reference.affine), big)
    small_app = create_app(replace(world.settings, max_segmentation_mb=1))
    client = small_app.test_client()
    login(client, "rev")
    # Encoded in memory: the test client spools a multipart body over 500 kB to a
    # temporary file that nothing closes when the route refuses it unread.
    boundary, body = encode_multipart(
        MultiDict({"file": FileStorage(io.BytesIO(big.read_bytes()), filename=big.name)})
    )
    response = client.post(
        f"/api/v1/studies/{sid}/segmentations/attach",
        data=body,
        content_type=f"multipart/form-data; boundary={boundary}",
        headers=csrf_headers(client),
    )
    assert response.status_code == 413
    assert response.get_json() == {
        "error": "the label map is over 1 MiB (PORTAL_MAX_SEGMENTATION_MB)",
        "code": "too_large",
    }
    # The service's own bound (what an Idempotency-Key request, parsed earlier, meets).
    with world.db.session() as s:
        with pytest.raises(InvalidInput, match=r"^big\.nii: \d+ bytes is over the limit of 1024"):
            segmentation_add.add_segmentation(
                s,
                _principal(world, "rev"),
                world.settings.store_dir,
                world.settings.preview_dir,
                sid,
                big.name,
                big.read_bytes(),
                "",
                max_bytes=1024,
                max_voxels=world.settings.max_voxels,
            )
    assert _state(world, sid) == before
    small_app.extensions["portal"].db.dispose()


def test_viewer_and_other_project_are_refused(world: World) -> None:
    sid = world.ids[MNI]
    path, _ = _label_file(world, MNI, "viewer-try.nii.gz", seed=5)
    before = _state(world, sid)
    viewer_try = _post(world.client("vie"), sid, path)
    assert viewer_try.status_code == 403
    assert viewer_try.get_json() == {
        "error": "viewers cannot add segmentations",
        "code": "forbidden",
    }
    outsider = _post(world.client("out"), sid, path)
    assert outsider.status_code == 404 and outsider.get_json()["code"] == "not_found"
    assert MNI.encode() not in outsider.get_data()
    assert _state(world, sid) == before


def test_idempotent_retry_and_duplicate_bytes(world: World) -> None:
    sid = world.ids[MNI]
    path, _ = _label_file(world, MNI, "model-b.nii.gz", seed=7)
    client = world.client("rev")
    segs_before = _state(world, sid)[0]
    first = _post(client, sid, path, "model B", key="add-model-b")
    again = _post(client, sid, path, "model B", key="add-model-b")
    assert first.status_code == again.status_code == 201, (first.get_json(), again.get_json())
    assert first.get_json() == again.get_json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert _state(world, sid)[0] == segs_before + 1
    # The same bytes again, without a key: the study already holds them.
    duplicate = _post(client, sid, path, "model B again")
    assert duplicate.status_code == 409
    assert f"segmentation {first.get_json()['id']}" in duplicate.get_json()["error"]
    # The same name for other bytes is refused too: the chooser tells them apart by name.
    other, _ = _label_file(world, MNI, "model-c.nii.gz", seed=8)
    same_name = _post(client, sid, other, "model B")
    assert same_name.status_code == 400 and "named 'model B'" in same_name.get_json()["error"]
    assert _state(world, sid)[0] == segs_before + 1


def test_failure_while_writing_previews_takes_back_row_and_file(world: World) -> None:
    sid = world.ids[MNI_LAS]
    path, _ = _label_file(world, MNI_LAS, "blocked.nii.gz", seed=9)
    uid = meta_uid(world, sid)
    folder = world.settings.preview_dir / uid / "segmentations"
    moved = None
    if folder.exists():
        moved = folder.rename(folder.with_name("segmentations.saved"))
    folder.write_text("a file where the folder should be")  # the preview write fails
    try:
        before = _state(world, sid)
        with pytest.raises(OSError), world.db.session() as s:
            segmentation_add.add_segmentation(
                s,
                _principal(world, "rev"),
                world.settings.store_dir,
                world.settings.preview_dir,
                sid,
                path.name,
                path.read_bytes(),
                "blocked",
                max_bytes=1 << 30,
                max_voxels=world.settings.max_voxels,
            )
        assert _state(world, sid) == before
    finally:
        folder.unlink()
        if moved is not None:
            moved.rename(folder)


def test_first_segmentation_of_a_study_without_one(world: World) -> None:
    """A study imported without labels gets the study's own labels.vti and meta labels."""
    sid = world.ids["other"]
    with world.db.session() as s:
        study = s.get(Study, sid)
        assert study is not None and not study.segmentations
        shape, affine = study.shape, np.asarray(study.affine_ras, dtype=float)
    reference = nib.load(EXAMPLE_4D)
    assert reference.shape[:3] == shape
    labels = np.zeros(shape, np.uint8)
    labels[10:40, 20:50, 3:9] = 1
    path = world.tmp / "first.nii.gz"
    nib.save(nib.Nifti1Image(labels, reference.affine), path)
    np.testing.assert_allclose(reference.affine, affine, atol=1e-3)
    client = world.client("out")
    response = _post(client, sid, path, "first")
    assert response.status_code == 201, response.get_json()
    uid = meta_uid(world, sid)
    meta = json.loads(preview_file(world.settings.preview_dir, uid, "meta.json").read_text())
    assert [lab["value"] for lab in meta["labels"]] == [1]
    rgba = vti(fetch(client, f"/api/v1/studies/{sid}/preview/labels.vti"))
    canonical = nib.as_closest_canonical(nib.Nifti1Image(labels, reference.affine))
    step = meta["step"]
    expected = np.asanyarray(canonical.dataobj)[:: step[0], :: step[1], :: step[2]]
    np.testing.assert_array_equal(rgba.array[..., 3] > 0, expected > 0)


# --- the pane's upload (Dash) ---------------------------------------------------------


def _upload_payload(client: FlaskClient, study_id: int, path: Path, name: str) -> dict[str, object]:
    """The request the renderer sends when a label file is dropped on the pane's upload."""
    deps = client.get("/_dash-dependencies").get_json()
    [dep] = [d for d in deps if "pane-slot" in d["output"]]
    contents = "data:application/gzip;base64," + base64.b64encode(path.read_bytes()).decode()

    def pid(kind: str) -> dict[str, object]:
        return {"type": kind, "study": study_id}

    values = {
        ("pane-seg-upload", "contents"): contents,
        ("pane-seg-upload", "filename"): path.name,
        ("pane-seg-upload", "id"): pid("pane-seg-upload"),
        ("pane-seg-name", "value"): name,
        ("pane-slider", "value"): 40,
        ("pane-mode", "value"): "2d",
    }

    def entry(x: dict[str, str]) -> dict[str, object]:
        kind = json.loads(x["id"])["type"]
        return {"id": pid(kind), "property": x["property"], "value": values[kind, x["property"]]}

    changed = json.dumps(pid("pane-seg-upload"), sort_keys=True, separators=(",", ":"))
    return {
        "output": dep["output"],
        "outputs": [
            {"id": pid("pane-seg-message"), "property": "children"},
            {"id": pid("pane-slot"), "property": "children"},
        ],
        "inputs": [entry(x) for x in dep["inputs"]],
        "state": [entry(x) for x in dep["state"]],
        "changedPropIds": [changed + ".contents"],
    }


def test_pane_upload_remounts_the_pane_with_the_new_segmentation(world: World) -> None:
    sid = world.ids[MNI]
    path, _ = _label_file(world, MNI, "from-pane.nii.gz", seed=11)
    client = world.client("rev")
    page = dash_post(
        client,
        {
            "output": "..shell-page.children...shell-nav.children..",
            "outputs": [
                {"id": "shell-page", "property": "children"},
                {"id": "shell-nav", "property": "children"},
            ],
            "inputs": [
                {"id": "shell-url", "property": "pathname", "value": "/review"},
                {"id": "shell-url", "property": "search", "value": f"?studies={sid}"},
            ],
            "changedPropIds": ["shell-url.pathname"],
        },
    )
    assert page.status_code == 200
    assert '"pane-slot"' in page.get_data(as_text=True)  # panes sit in their slots
    assert "pane-seg-upload" in page.get_data(as_text=True)  # a reader gets the upload

    response = dash_post(client, _upload_payload(client, sid, path, "from the pane"))
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    out = response.get_json()["response"]
    mount = out[json.dumps({"study": sid, "type": "pane-slot"}, separators=(",", ":"))]
    mounted = mount["children"]
    with world.db.session() as s:
        new_id = s.scalar(
            select(Segmentation.id).where(
                Segmentation.study_id == sid, Segmentation.name == "from the pane"
            )
        )
    assert mounted["props"]["id"] == {"type": "pane-mount", "study": sid, "n": new_id}
    text = json.dumps(mounted)
    view = json.loads(mounted["props"]["children"]["props"]["data-view"])
    assert "from the pane" in [seg["name"] for seg in view["segmentations"]]
    assert f"/segmentations/{new_id}/labels.vti" in text
    assert "Added 'from the pane': choose it in the segmentation menu." in text

    # A viewer forging the call is refused, and nothing is added.
    before = _state(world, sid)
    viewer_client = world.client("vie")
    refused = dash_post(viewer_client, _upload_payload(viewer_client, sid, path, "viewer's"))
    body = refused.get_data(as_text=True)
    assert "viewers cannot add segmentations" in body and "pane-mount" not in body
    out_client = world.client("out")
    outsider = dash_post(out_client, _upload_payload(out_client, sid, path, "outsider"))
    assert "not available to you" in outsider.get_data(as_text=True)
    assert MNI not in outsider.get_data(as_text=True)
    assert _state(world, sid) == before


# --- the Python client against a real server ------------------------------------------


def test_python_client_adds_a_segmentation(world: World) -> None:
    sid = world.ids[MNI]
    path, labels = _label_file(world, MNI, "client.nii.gz", seed=13)
    with world.db.session() as s:
        user = s.scalar(select(User).where(User.username == "exp"))
        assert user is not None
        _, token = tokens.create_token(
            s, Principal.of(user), "addseg", tokens.parse_scopes(["review"]), 1
        )
    httpd = make_server("127.0.0.1", 0, world.app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        with PortalClient(f"http://127.0.0.1:{httpd.server_port}", token) as client:
            added = client.add_segmentation(sid, path, "from a notebook", "nb-1")
            again = client.add_segmentation(sid, path, "from a notebook", "nb-1")
            assert added == again and added["name"] == "from a notebook"
            assert [lab["voxel_count"] for lab in added["labels"]] == [
                int((labels == v).sum()) for v in (2, 5, 9)
            ]
            study = client.study(sid)
            assert added["id"] in [seg["id"] for seg in study["segmentations"]]
            with pytest.raises(PortalError) as refused:
                client.add_segmentation(sid, path, "again, no key")
            assert refused.value.status == 409 and refused.value.code == "conflict"
    finally:
        httpd.shutdown()
        thread.join(timeout=10)


# --- each database kind -----------------------------------------------------------------


def test_add_and_refusal_on_each_database(
    app: Flask, db: Database, settings: Settings, tmp_path: Path
) -> None:
    """The add path's transaction (rows, review item, audit) on SQLite and PostgreSQL."""
    from tests.integration.test_access_matrix import _nifti_case
    from tests.integration.test_importer import _import_settings

    image = _nifti_case(tmp_path / "case", 1)
    [sid] = import_paths(db, _import_settings(settings), "trial", [image]).imported
    make_user(db, "ann", Role.REVIEWER, ["trial"])
    reference = nib.load(image)
    labels = np.zeros(reference.shape, np.uint16)
    labels[5:15, 6:20, 4:10] = 300  # a value over 255: stored as uint16
    edit = tmp_path / "edit.nii.gz"
    nib.save(nib.Nifti1Image(labels, reference.affine), edit)
    client = app.test_client()
    login(client, "ann")
    added = _post(client, sid, edit, "ann's edit")
    assert added.status_code == 201, added.get_json()
    body = added.get_json()
    voxel_ml = float(np.prod(reference.header.get_zooms()[:3])) / 1000.0
    assert [(lab["value"], lab["voxel_count"]) for lab in body["labels"]] == [(300, 10 * 14 * 6)]
    assert body["labels"][0]["volume_ml"] == pytest.approx(10 * 14 * 6 * voxel_ml, abs=1e-3)
    with db.session() as s:
        study = s.get(Study, sid)
        assert study is not None
        assert [seg.name for seg in study.segmentations][-1] == "ann's edit"
        assert study.segmentation_count == 2
        keys = {item.key for item in study.review_items}
        assert f"seg:{body['id']}" in keys
    moved = reference.affine.copy()
    moved[2, 3] += 1.5  # one slice off
    wrong = tmp_path / "wrong.nii.gz"
    nib.save(nib.Nifti1Image(labels, moved), wrong)
    files = {p for p in settings.store_dir.rglob("*") if p.is_file()}
    refused = _post(client, sid, wrong, "wrong")
    assert refused.status_code == 400 and refused.get_json()["error"].startswith("wrong.nii.gz: ")
    assert {p for p in settings.store_dir.rglob("*") if p.is_file()} == files
    with db.session() as s:
        count = s.scalar(select(func.count()).where(Segmentation.study_id == sid))
    assert count == 2
