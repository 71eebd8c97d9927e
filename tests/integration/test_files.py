"""Downloads (original files, segmentations) and corrected-segmentation uploads,
checked against independent readers (nibabel, pynrrd, zipfile, sha256 of the sources)."""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import nibabel as nib
import nrrd
import numpy as np
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from portal.config import Settings
from portal.db.models import AuditEntry, Role, Segmentation, Study
from portal.db.session import Database
from portal.services.importer import import_paths
from tests.conftest import csrf_headers, login, make_user
from tests.integration.test_importer import _case, _import_settings


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def world(app: Flask, settings: Settings, tmp_path: Path) -> tuple[int, Path]:
    db: Database = app.extensions["portal"].db
    image = _case(tmp_path / "src")
    [study_id] = import_paths(db, _import_settings(settings), "trial", [image]).imported
    make_user(db, "rita", Role.REVIEWER, ["trial"])
    make_user(db, "vic", Role.VIEWER, ["trial"])
    make_user(db, "out", Role.REVIEWER)
    return study_id, tmp_path / "src"


def test_zip_holds_the_original_bytes(app: Flask, world: tuple[int, Path]) -> None:
    study_id, src = world
    client = app.test_client()
    login(client, "vic")  # viewers may download what they may see
    response = client.get(f"/api/v1/studies/{study_id}/files.zip")
    assert response.status_code == 200 and response.mimetype == "application/zip"
    assert "attachment" in response.headers["Content-Disposition"]
    with zipfile.ZipFile(io.BytesIO(response.get_data())) as zf:
        assert zf.testzip() is None
        got = {n: _sha(zf.read(n)) for n in zf.namelist()}
    assert sorted(got) == ["image/case.nii.gz", "segmentations/case-label.nii.gz"]
    assert got["image/case.nii.gz"] == _sha((src / "case.nii.gz").read_bytes())
    assert got["segmentations/case-label.nii.gz"] == _sha((src / "case-label.nii.gz").read_bytes())
    outsider = app.test_client()
    login(outsider, "out")
    assert outsider.get(f"/api/v1/studies/{study_id}/files.zip").status_code == 404
    db: Database = app.extensions["portal"].db
    with db.session() as s:
        downloads = s.scalars(select(AuditEntry).where(AuditEntry.action == "study.download"))
        assert [(a.target, a.outcome) for a in downloads] == [(f"study:{study_id}", "ok")]


def test_segmentation_downloads_match_the_source_in_world_space(
    app: Flask, world: tuple[int, Path]
) -> None:
    study_id, src = world
    client = app.test_client()
    login(client, "rita")
    seg_id = client.get(f"/api/v1/studies/{study_id}").get_json()["segmentations"][0]["id"]
    reference = nib.load(src / "case-label.nii.gz")
    ref_data = np.asanyarray(reference.dataobj)

    nifti = client.get(f"/api/v1/segmentations/{seg_id}/labels")
    assert nifti.status_code == 200
    got = nib.Nifti1Image.from_bytes(__import__("gzip").decompress(nifti.get_data()))
    assert np.array_equal(np.asanyarray(got.dataobj), ref_data)
    np.testing.assert_allclose(got.affine, reference.affine, atol=1e-5)

    raw = client.get(f"/api/v1/segmentations/{seg_id}/labels?format=nrrd")
    assert raw.status_code == 200
    header = nrrd.read_header(io.BytesIO(raw.get_data()))
    assert header["space"] == "left-posterior-superior"
    data, header = _read_nrrd(raw.get_data())
    assert np.array_equal(data, ref_data)
    lps = np.eye(4)
    lps[:3, :3] = np.asarray(header["space directions"]).T
    lps[:3, 3] = header["space origin"]
    ras = np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps
    np.testing.assert_allclose(ras, reference.affine, atol=1e-5)
    assert client.get(f"/api/v1/segmentations/{seg_id}/labels?format=stl").status_code == 400
    outsider = app.test_client()
    login(outsider, "out")
    assert outsider.get(f"/api/v1/segmentations/{seg_id}/labels").status_code == 404


def _read_nrrd(data: bytes) -> tuple[np.ndarray, dict]:
    import tempfile

    with tempfile.NamedTemporaryFile(suffix=".nrrd") as fh:
        fh.write(data)
        fh.flush()
        return nrrd.read(fh.name)


def test_corrected_segmentation_becomes_the_next_version(
    app: Flask, settings: Settings, world: tuple[int, Path], tmp_path: Path
) -> None:
    study_id, src = world
    db: Database = app.extensions["portal"].db
    reference = nib.load(src / "case-label.nii.gz")
    fixed = np.asanyarray(reference.dataobj).copy()
    fixed[fixed == 2] = 1  # the reader merged the two labels
    path = tmp_path / "case-fixed.nii.gz"
    nib.save(nib.Nifti1Image(fixed, reference.affine), path)

    viewer, rita = app.test_client(), app.test_client()
    login(viewer, "vic")
    login(rita, "rita")

    def send(client: FlaskClient, file: Path, csrf: bool = True) -> object:
        return client.post(
            f"/api/v1/studies/{study_id}/segmentations",
            data={"file": (io.BytesIO(file.read_bytes()), file.name)},
            headers=csrf_headers(client) if csrf else {},
        )

    assert send(viewer, path).status_code == 403
    assert send(rita, path, csrf=False).status_code == 403
    shifted = tmp_path / "case-shifted.nii.gz"
    moved = reference.affine.copy()
    moved[0, 3] += 7.0
    nib.save(nib.Nifti1Image(fixed, moved), shifted)
    with db.session() as s:
        before = s.scalar(select(func.count()).select_from(Study))
    refused = send(rita, shifted)
    assert refused.status_code == 400
    assert "case-shifted.nii.gz" in refused.get_json()["error"]
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Study)) == before
    assert not list((settings.data_dir / "uploads").glob("*"))

    created = send(rita, path)
    assert created.status_code == 201, created.get_data(as_text=True)
    new_id = created.get_json()["study_id"]
    detail = rita.get(f"/api/v1/studies/{new_id}").get_json()
    assert detail["version"] == 2 and [v["current"] for v in detail["versions"]] == [False, True]
    assert [lab["value"] for lab in detail["segmentations"][0]["labels"]] == [1]
    assert detail["segmentations"][0]["name"] == "case-fixed"
    with db.session() as s:
        seg = s.scalar(select(Segmentation).where(Segmentation.study_id == new_id))
        stored = nib.load(settings.store_dir / seg.file)
        assert np.array_equal(np.asanyarray(stored.dataobj), fixed)
    stale = send(rita, path)  # the old version is superseded now
    assert stale.status_code == 409


def test_projects_and_users_directory(app: Flask, world: tuple[int, Path]) -> None:
    db: Database = app.extensions["portal"].db
    make_user(db, "root", Role.ADMIN)
    rita, vic, out, root = (app.test_client() for _ in range(4))
    for client, name in ((rita, "rita"), (vic, "vic"), (out, "out"), (root, "root")):
        login(client, name)
    assert rita.get("/api/v1/projects").get_json()["items"] == [
        {
            "id": 1,
            "name": "trial",
            "description": "",
            "required_reads": 1,
            "role": "reviewer",
            "study_count": 1,
        }
    ]
    assert vic.get("/api/v1/projects").get_json()["items"][0]["role"] == "viewer"
    assert out.get("/api/v1/projects").get_json()["items"] == []
    assert rita.get("/api/v1/users").status_code == 403
    users = {u["username"]: u for u in root.get("/api/v1/users").get_json()["items"]}
    assert users["rita"]["projects"] == [{"id": 1, "name": "trial", "role": "reviewer"}]
    assert users["root"]["role"] == "admin" and "password_hash" not in users["root"]
