"""Import from a real Orthanc (Debian's package) through its REST API and DICOMweb.

The test uploads real DICOM files (a generated CT series from a real brain image and
pydicom's own test files) to a throwaway Orthanc, searches and imports them through the
portal, and compares geometry and pixels with the originals read straight from disk.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from sqlalchemy import func, select

from portal.app import create_app
from portal.config import Settings
from portal.db import migrate
from portal.db.models import AuditEntry, ImportJob, Role, Study
from portal.db.session import Database
from portal.imaging.dicom import find_dicom_series, read_dicom_series
from portal.imaging.dicom_write import write_dicom_series
from portal.imaging.volume import Volume
from portal.services import jobs, pacs
from portal.services.catalog import ensure_project
from portal.services.importer import ImportSettings
from tests.conftest import csrf_headers, login, make_user
from tests.support.orthanc import OrthancServer, OrthancUnavailable

ANATOMICAL = Path(nib.__file__).parent / "tests" / "data" / "anatomical.nii"


@pytest.fixture(scope="module")
def orthanc() -> Iterator[OrthancServer]:
    try:
        server = OrthancServer()
        server.start()
    except (OrthancUnavailable, OSError) as exc:
        if os.environ.get("PORTAL_REQUIRE_ORTHANC") == "1":
            pytest.fail(f"Orthanc required but unavailable: {exc}")
        pytest.skip(f"Orthanc unavailable: {exc}")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def originals(orthanc: OrthancServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Folders of the DICOM files uploaded, by StudyInstanceUID."""
    root = tmp_path_factory.mktemp("originals")
    img = nib.load(ANATOMICAL)
    data = np.asanyarray(img.dataobj).astype(np.float32)
    volume = Volume(data=data, affine_ras=img.affine, modality="CT", description="brain")
    ct = write_dicom_series(
        volume,
        root / "ct",
        patient_name="Pacs^Brain",
        patient_id="PACS-1",
        study_description="pacs round trip",
        series_description="axial",
        modality="CT",
        uid_seed="pacs-test",
    )
    mr = root / "mr"
    mr.mkdir()
    (mr / "MR_small.dcm").write_bytes(Path(get_testdata_file("MR_small.dcm")).read_bytes())
    orthanc.upload([*ct, mr / "MR_small.dcm"])
    return {
        _uid_of(next(f for f in sorted(folder.iterdir()))): folder for folder in (root / "ct", mr)
    }


def _uid_of(path: Path) -> str:
    return str(pydicom.dcmread(path, stop_before_pixels=True).StudyInstanceUID)


def _source(orthanc: OrthancServer, kind: str, password: str | None = None) -> str:
    user, secret = orthanc.auth
    root = orthanc.url.replace("http://", f"http://{user}:{password or secret}@")
    return f"remote={kind}+{root}" + ("/dicom-web" if kind == "dicomweb" else "")


@pytest.mark.parametrize("kind", ["orthanc", "dicomweb"])
def test_search_finds_studies_by_patient_and_modality(
    orthanc: OrthancServer, originals: dict[str, Path], kind: str
) -> None:
    source = pacs.parse_sources(_source(orthanc, kind))["remote"]
    assert source.auth == orthanc.auth and "@" not in source.url
    everything = pacs.search(source, pacs.StudyFilter())
    assert {s.study_uid for s in everything} == set(originals)
    [brain] = pacs.search(source, pacs.StudyFilter(patient_name="pacs*"))
    assert (brain.patient_id, brain.description) == ("PACS-1", "pacs round trip")
    assert "CT" in brain.modalities
    mr_only = pacs.search(source, pacs.StudyFilter(modality="MR"))
    assert [s.study_uid for s in mr_only] == [u for u, f in originals.items() if f.name == "mr"]


@pytest.mark.parametrize("kind", ["orthanc", "dicomweb"])
def test_import_matches_the_originals(
    orthanc: OrthancServer,
    originals: dict[str, Path],
    db: Database,
    settings: Settings,
    tmp_path: Path,
    kind: str,
) -> None:
    settings = replace(settings, pacs_sources=_source(orthanc, kind))
    staging = tmp_path / "staging"
    job_id = jobs.create_pacs_job(db, "pacs", "remote", list(originals), None, staging)
    job = jobs.run_job(db, ImportSettings.of(settings), job_id)
    assert job.status == "done", job.error
    assert len(job.imported) == 2, (job.refused, job.notes)
    assert not staging.exists()  # the downloads are removed once imported
    with db.session() as s:
        for study in s.scalars(select(Study)):
            stored = [settings.store_dir / f for f in study.volumes[0].files]
            [series] = find_dicom_series([originals[_uid_of(stored[0])]])
            expected = read_dicom_series(series)
            assert study.shape == expected.shape
            np.testing.assert_allclose(study.affine_ras, expected.affine_ras, atol=1e-6)
            [got_series] = find_dicom_series(stored)
            got = read_dicom_series(got_series)
            assert np.array_equal(got.data, expected.data)  # pixels bit-exact


def test_unknown_study_and_bad_credentials_are_reported_and_leave_nothing(
    orthanc: OrthancServer, db: Database, settings: Settings, tmp_path: Path
) -> None:
    bad = pacs.parse_sources(_source(orthanc, "orthanc", password="wrong"))["remote"]
    with pytest.raises(pacs.PacsError, match="refused our credentials"):
        pacs.search(bad, pacs.StudyFilter())
    settings = replace(settings, pacs_sources=_source(orthanc, "dicomweb"))
    job_id = jobs.create_pacs_job(db, "pacs", "remote", ["1.2.3.4.5"], None, tmp_path / "st")
    job = jobs.run_job(db, ImportSettings.of(settings), job_id)
    assert job.imported == [] and job.refused[0][0] == "remote:1.2.3.4.5"
    assert "no study" in job.refused[0][1]
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(Study)) == 0
        assert s.get(ImportJob, job_id).options["pacs"]["studies"] == ["1.2.3.4.5"]


def test_size_limit_and_malformed_input(
    orthanc: OrthancServer, originals: dict[str, Path], tmp_path: Path
) -> None:
    source = pacs.parse_sources(_source(orthanc, "orthanc"))["remote"]
    big = next(u for u, f in originals.items() if f.name == "ct")
    with pytest.raises(pacs.PacsError, match="larger than the import limit"):
        pacs.fetch_study(source, big, tmp_path / "x", max_bytes=20_000)
    with pytest.raises(pacs.InvalidInput, match="not a DICOM UID"):
        pacs.fetch_study(source, "../../etc", tmp_path / "y", max_bytes=10**9)
    with pytest.raises(pacs.InvalidInput, match="patient_name"):
        pacs.search(source, pacs.StudyFilter(patient_name='x"; DROP'))
    with pytest.raises(ValueError, match="'nope'"):
        pacs.parse_sources("nope=ftp+ftp://host")


def test_api_search_and_import_with_access_checks(
    orthanc: OrthancServer, originals: dict[str, Path], settings: Settings
) -> None:
    settings = replace(settings, pacs_sources=_source(orthanc, "dicomweb"))
    migrate.upgrade(settings.resolved_database_url)
    app = create_app(settings)
    db: Database = app.extensions["portal"].db
    with db.session() as s:
        ensure_project(s, "trial")
    make_user(db, "rita", Role.REVIEWER, ["trial"])
    make_user(db, "vic", Role.VIEWER, ["trial"])
    rita, vic = app.test_client(), app.test_client()
    login(rita, "rita")
    login(vic, "vic")
    listed = rita.get("/api/v1/pacs").get_json()
    assert listed == {"items": [{"name": "remote", "kind": "dicomweb"}]}
    assert vic.get("/api/v1/pacs/remote/studies").status_code == 403
    assert rita.get("/api/v1/pacs/nowhere/studies").status_code == 404
    found = rita.get("/api/v1/pacs/remote/studies?patient_name=PACS*").get_json()["items"]
    assert [f["patient_id"] for f in found] == ["PACS-1"]
    uid = found[0]["study_uid"]
    body = {"project": "trial", "studies": [uid]}
    assert rita.post("/api/v1/pacs/remote/imports", json=body).status_code == 403  # no CSRF
    started = rita.post("/api/v1/pacs/remote/imports", json=body, headers=csrf_headers(rita))
    assert started.status_code == 202, started.get_data(as_text=True)
    job = jobs.run_job(db, ImportSettings.of(settings), started.get_json()["id"])
    assert job.status == "done" and len(job.imported) == 1
    study = rita.get(f"/api/v1/studies/{job.imported[0]}").get_json()
    assert study["patient_name"] == "Pacs^Brain" and study["modality"] == "CT"
    with db.session() as s:
        details = " ".join(s.scalars(select(AuditEntry.detail)))
    assert "fields=patient_name" in details and "Pacs" not in details and "PACS-1" not in details
    app.extensions["portal"].db.dispose()
