"""values.vti (real units) and per-segmentation previews, through the API, on demo studies.

Values are checked against nibabel and pydicom; grids against image.vti's; older studies
(no values file, old meta.json) get both on first use; a second segmentation previews
with its own colours on the study's grid; access is re-checked on every route.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from flask import Flask
from flask.testing import FlaskClient

from portal.app import create_app
from portal.config import Settings
from portal.db import migrate
from portal.db.models import Label, Role, Segmentation, Study
from portal.db.session import Database
from portal.imaging.vti import VtiImage
from portal.services import viewer
from portal.services.auth import Principal
from portal.services.importer import ImportSettings, import_paths
from portal.services.store import preview_file
from tests.conftest import login, make_user
from tests.support.preview_world import fetch, import_demo, vti
from tests.unit.imaging.test_values import check_hu_at_world_points

EXAMPLE_4D = Path(nib.__file__).parent / "tests" / "data" / "example4d.nii.gz"
VALUE_KEYS = {
    "modality",
    "units",
    "value_range",
    "auto_window",
    "default_window",
    "invert",
    "frame_of_reference",
    "values_dtype",
}


@dataclass
class World:
    app: Flask
    settings: Settings
    db: Database
    ids: dict[str, int]  # demo study name -> id; "other" is in another project
    sources: dict[str, Path]  # demo study name -> its first image file

    def client(self, user: str) -> FlaskClient:
        client = self.app.test_client()
        login(client, user)
        return client


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    data = tmp_path_factory.mktemp("values")
    settings = Settings(data_dir=data / "data", secret_key="k")  # default preview_max_dim
    settings.data_dir.mkdir()
    migrate.upgrade(settings.resolved_database_url)
    app = create_app(settings)
    db = app.extensions["portal"].db
    wanted = ("MNI152 T1 1mm", "CT small (pydicom)", "CT 512 (pydicom-data)")
    ids, demo = import_demo(db, settings, data / "demo", wanted)
    (ids["other"],) = import_paths(db, ImportSettings.of(settings), "other", [EXAMPLE_4D]).imported
    make_user(db, "rev", Role.REVIEWER, ["demo"])
    make_user(db, "root", Role.ADMIN)
    yield World(app, settings, db, ids, {d.name: Path(d.image_paths[0]) for d in demo})
    db.dispose()


def _uid(world: World, study_id: int) -> str:
    with world.db.session() as s:
        study = s.get(Study, study_id)
        assert study is not None
        return study.uid


def _meta(world: World, study_id: int) -> dict:  # type: ignore[type-arg]
    path = preview_file(world.settings.preview_dir, _uid(world, study_id), "meta.json")
    return json.loads(path.read_text())


def _same_grid(a: VtiImage, b: VtiImage) -> None:
    assert a.array.shape[:3] == b.array.shape[:3]
    assert a.origin_mm == b.origin_mm and a.spacing_mm == b.spacing_mm


def test_mni_values_equal_nibabel_on_the_image_grid(world: World) -> None:
    client = world.client("rev")
    sid = world.ids["MNI152 T1 1mm"]
    values = vti(fetch(client, f"/api/v1/studies/{sid}/preview/values.vti"))
    image = vti(fetch(client, f"/api/v1/studies/{sid}/preview/image.vti"))
    _same_grid(values, image)
    meta = _meta(world, sid)
    img = nib.as_closest_canonical(nib.load(world.sources["MNI152 T1 1mm"]))
    si, sj, sk = meta["step"]
    expected = img.get_fdata()[::si, ::sj, ::sk]
    np.testing.assert_allclose(values.array, expected, rtol=1e-6)
    np.testing.assert_allclose(values.origin_mm, img.affine[:3, 3], atol=1e-4)
    assert VALUE_KEYS <= set(meta)
    assert meta["modality"] == "MR" and meta["units"] == "" and meta["invert"] is False
    assert meta["frame_of_reference"] is None
    assert meta["values_dtype"] == values.array.dtype.name
    assert meta["value_range"] == [float(expected.min()), float(expected.max())]
    assert meta["default_window"] == meta["window"]
    low, high = meta["auto_window"]
    nonzero = expected[expected != 0]
    assert low == pytest.approx(np.percentile(nonzero, 0.5))
    assert high == pytest.approx(np.percentile(nonzero, 99.5))


@pytest.mark.parametrize("name", ["CT small (pydicom)", "CT 512 (pydicom-data)"])
def test_dicom_ct_values_are_hounsfield_units(world: World, name: str) -> None:
    if name not in world.ids:
        pytest.skip(f"{name} is not installed")
    sid = world.ids[name]
    values = vti(world.client("rev").get(f"/api/v1/studies/{sid}/preview/values.vti"))
    checked = check_hu_at_world_points(
        world.sources[name], values.array, values.origin_mm, values.spacing_mm
    )
    assert checked > 300
    meta = _meta(world, sid)
    assert meta["units"] == "HU" and meta["values_dtype"] == "int16"
    assert meta["default_window"] == [-160.0, 240.0]  # what image.vti was windowed with
    header = pydicom.dcmread(world.sources[name], stop_before_pixels=True)
    frame = header.get("FrameOfReferenceUID")
    assert meta["frame_of_reference"] == (str(frame) if frame else None)


def test_conditional_get_and_gzip_on_the_wire(world: World) -> None:
    client = world.client("rev")
    sid = world.ids["CT small (pydicom)"]
    url = f"/api/v1/studies/{sid}/preview/values.vti"
    first = fetch(client, url, headers={"Accept-Encoding": "gzip"})
    assert first.status_code == 200 and first.headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in first.headers["Vary"]
    etag = first.headers["ETag"]
    again = fetch(client, url, headers={"Accept-Encoding": "gzip", "If-None-Match": etag})
    assert again.status_code == 304 and not again.get_data()
    plain = fetch(client, url)  # a client without gzip gets the inflated file
    assert "Content-Encoding" not in plain.headers
    assert plain.get_data() == gzip.decompress(first.get_data())


def test_older_study_gets_values_and_meta_on_first_use(world: World) -> None:
    sid = world.ids["CT small (pydicom)"]
    uid = _uid(world, sid)
    client = world.client("rev")
    made_at_import = vti(fetch(client, f"/api/v1/studies/{sid}/preview/values.vti"))
    meta_at_import = _meta(world, sid)
    # As imported before values.vti existed: no file, meta.json without its keys.
    preview_file(world.settings.preview_dir, uid, "values.vti.gz").unlink()
    old = {k: v for k, v in meta_at_import.items() if k not in VALUE_KEYS}
    preview_file(world.settings.preview_dir, uid, "meta.json").write_text(json.dumps(old))
    with world.db.session() as s:
        who = Principal.of(_user(s, "rev"))
        _, without_store = viewer.pane_data(s, who, world.settings.preview_dir, sid)
        assert "values_dtype" not in without_store  # cannot read the original
        _, meta = viewer.pane_data(
            s, who, world.settings.preview_dir, sid, store_dir=world.settings.store_dir
        )
    for key in (*VALUE_KEYS, "shape", "window", "step"):
        assert meta[key] == meta_at_import[key], key
    assert meta["segmentations"][0]["labels"]
    remade = vti(fetch(client, f"/api/v1/studies/{sid}/preview/values.vti"))
    np.testing.assert_array_equal(remade.array, made_at_import.array)
    _same_grid(remade, made_at_import)
    # The file alone deleted (meta complete): the route makes it again.
    preview_file(world.settings.preview_dir, uid, "values.vti.gz").unlink()
    again = vti(fetch(client, f"/api/v1/studies/{sid}/preview/values.vti"))
    np.testing.assert_array_equal(again.array, made_at_import.array)
    assert not list((world.settings.preview_dir / uid).glob("*.tmp"))


def _user(s, name: str):  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from portal.db.models import User

    return s.scalar(select(User).where(User.username == name))


def _second_segmentation(world: World, study_id: int) -> tuple[int, np.ndarray]:
    """A second label map (two blocks) stored for the study, with its own colours."""
    with world.db.session() as s:
        study = s.get(Study, study_id)
        assert study is not None
        affine = np.asarray(study.affine_ras, dtype=float)
        labels = np.zeros(study.shape, np.uint8)
        labels[40:90, 60:120, 50:100] = 3
        labels[120:160, 100:150, 90:130] = 7
        rel = "edits/second.nii.gz"
        path = world.settings.store_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        nib.save(nib.Nifti1Image(labels, affine), path)
        seg = Segmentation(study_id=study_id, name="AI v2", file=rel, content_hash="x" * 64)
        seg.labels = [
            Label(value=3, name="left block", color="#ff0000", volume_ml=1.0),
            Label(value=7, name="right block", color="#00ff00", volume_ml=2.0),
        ]
        s.add(seg)
        s.commit()
        return seg.id, labels


def test_second_segmentation_previews_with_its_own_colours(world: World) -> None:
    sid = world.ids["MNI152 T1 1mm"]
    seg_id, labels = _second_segmentation(world, sid)
    client = world.client("rev")
    base = f"/api/v1/studies/{sid}/segmentations"
    rgba = vti(fetch(client, f"{base}/{seg_id}/labels.vti"))
    image = vti(fetch(client, f"/api/v1/studies/{sid}/preview/image.vti"))
    _same_grid(rgba, image)
    # Where the labels are, from nibabel's canonical reorientation and the stored step.
    step = _meta(world, sid)["step"]
    canonical = nib.as_closest_canonical(nib.load(world.settings.store_dir / "edits/second.nii.gz"))
    expected = np.asanyarray(canonical.dataobj)[:: step[0], :: step[1], :: step[2]]
    alpha = rgba.array[..., 3]
    np.testing.assert_array_equal(alpha > 0, expected > 0)
    assert (rgba.array[expected == 3][:, :3] == (255, 0, 0)).all()
    assert (rgba.array[expected == 7][:, :3] == (0, 255, 0)).all()
    surfaces = fetch(client, f"{base}/{seg_id}/surfaces.json")
    assert surfaces.status_code == 200
    meshes = surfaces.get_json()
    assert [(m["value"], m["color"]) for m in meshes] == [(3, [1.0, 0, 0]), (7, [0, 1.0, 0])]
    # The first segmentation's previews are the study's own labels.vti and surfaces.
    with world.db.session() as s:
        study = s.get(Study, sid)
        assert study is not None
        first_id = study.segmentations[0].id
        who = Principal.of(_user(s, "rev"))
        _, meta = viewer.pane_data(s, who, world.settings.preview_dir, sid)
    first = fetch(client, f"{base}/{first_id}/labels.vti", headers={"Accept-Encoding": "gzip"})
    own = fetch(
        client, f"/api/v1/studies/{sid}/preview/labels.vti", headers={"Accept-Encoding": "gzip"}
    )
    assert first.get_data() == own.get_data() and first.headers["ETag"] == own.headers["ETag"]
    assert [seg["id"] for seg in meta["segmentations"]] == [first_id, seg_id]
    second = meta["segmentations"][1]
    assert second["name"] == "AI v2"
    assert second["labels"] == [
        {"value": 3, "name": "left block", "color": "#ff0000", "volume_ml": 1.0},
        {"value": 7, "name": "right block", "color": "#00ff00", "volume_ml": 2.0},
    ]
    gz = {"Accept-Encoding": "gzip"}
    etag = fetch(client, f"{base}/{seg_id}/labels.vti", gz).headers["ETag"]
    cached = fetch(client, f"{base}/{seg_id}/labels.vti", {**gz, "If-None-Match": etag})
    assert cached.status_code == 304


def test_access_is_checked_on_every_new_route(world: World) -> None:
    client = world.client("rev")  # member of "demo" only
    other = world.ids["other"]
    mine = world.ids["MNI152 T1 1mm"]
    with world.db.session() as s:
        other_study = s.get(Study, other)
        mine_study = s.get(Study, mine)
        assert other_study is not None and mine_study is not None
        mine_seg = mine_study.segmentations[0].id
    assert fetch(client, f"/api/v1/studies/{other}/preview/values.vti").status_code == 404
    assert fetch(client, f"/api/v1/studies/{other}/volumes/1/values.vti").status_code == 404
    # A segmentation id of another study under a visible one: 404, no bytes.
    ct = world.ids["CT small (pydicom)"]
    for name in ("labels.vti", "surfaces.json"):
        refused = fetch(client, f"/api/v1/studies/{ct}/segmentations/{mine_seg}/{name}")
        assert refused.status_code == 404
        assert refused.get_json()["error"]
    assert (
        fetch(client, f"/api/v1/studies/{mine}/segmentations/{mine_seg}/meta.json").status_code
        == 404
    )
    root = world.client("root")  # an admin sees the other project's 4-D study
    four_d = vti(fetch(root, f"/api/v1/studies/{other}/volumes/1/values.vti"))
    img = nib.as_closest_canonical(nib.load(EXAMPLE_4D))
    step = _meta(world, other)["step"]
    expected = img.get_fdata()[:: step[0], :: step[1], :: step[2], 1]
    np.testing.assert_allclose(four_d.array, expected, rtol=1e-6)
    _same_grid(four_d, vti(fetch(root, f"/api/v1/studies/{other}/preview/image.vti")))


def test_volumes_made_later_keep_the_stored_grid_when_the_size_setting_changed(
    world: World,
) -> None:
    settings = Settings(data_dir=world.settings.data_dir, secret_key="k", preview_max_dim=16)
    app = create_app(settings)
    try:
        client = app.test_client()
        login(client, "root")
        other = world.ids["other"]
        grid = vti(fetch(client, f"/api/v1/studies/{other}/preview/image.vti"))
        assert max(grid.array.shape) > 16  # made at import under the default setting
        for name in ("image.vti", "values.vti"):
            later = vti(fetch(client, f"/api/v1/studies/{other}/volumes/1/{name}"))
            _same_grid(later, grid)
    finally:
        app.extensions["portal"].db.dispose()
