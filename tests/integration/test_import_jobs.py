"""Import jobs through the real queue: a `portal worker` process, uploads, and kill -9."""

from __future__ import annotations

import gc
import io
import os
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from sqlalchemy import select

from portal.app import create_app
from portal.config import Settings
from portal.db import migrate
from portal.db.models import ImportJob, Role, Segmentation, Study, Volume
from portal.db.session import Database
from portal.services import jobs
from portal.services.discovery import NOT_AN_IMAGE
from portal.services.importer import ImportSettings
from tests.conftest import login, make_user
from tests.integration.test_importer import _case


@pytest.fixture
def sqlite_settings(tmp_path: Path) -> Settings:
    settings = Settings(data_dir=tmp_path / "data", secret_key="k", preview_max_dim=64)
    settings.data_dir.mkdir()
    migrate.upgrade(settings.resolved_database_url)
    return settings


def _worker(settings: Settings, *args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, **settings.to_env()}
    return subprocess.Popen(
        [sys.executable, "-m", "portal.cli", "worker", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@pytest.fixture
def worker(sqlite_settings: Settings) -> Iterator[subprocess.Popen[bytes]]:
    proc = _worker(sqlite_settings)
    yield proc
    proc.terminate()
    proc.wait(timeout=30)


def _wait_job(db: Database, job_id: int, timeout: float = 90) -> ImportJob:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with db.session() as s:
            job = s.get(ImportJob, job_id)
            assert job is not None
            if job.status in ("done", "failed"):
                return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish")


def test_upload_is_queued_and_run_by_a_worker(
    sqlite_settings: Settings, worker: subprocess.Popen[bytes], tmp_path: Path
) -> None:
    app = create_app(sqlite_settings)
    db: Database = app.extensions["portal"].db
    make_user(db, "lead", Role.EXPERT)
    with db.session() as s:
        from portal.services.catalog import ensure_project

        ensure_project(s, "trial")
    client = app.test_client()
    login(client, "lead")
    image = _case(tmp_path / "upload")
    (tmp_path / "upload" / "notes.txt").write_text("not an image")
    names = ["case.nii.gz", "case-label.nii.gz", "notes.txt"]

    def files(which: list[str]) -> list[tuple[object, str]]:
        return [(io.BytesIO(image.with_name(n).read_bytes()), n) for n in which]

    # Not a member of "trial" yet: refused before anything is stored.
    no_token = client.post("/api/v1/imports", data={"project": "trial", "files": files(names)})
    assert no_token.status_code == 403
    refused = client.post(
        "/api/v1/imports",
        data={"project": "trial", "files": files(names[:1])},
        headers=_csrf(client),
    )
    assert refused.status_code == 403 and "member" in refused.get_json()["error"]
    assert not list((sqlite_settings.data_dir / "uploads").glob("*"))
    with db.session() as s:
        from portal.db.models import Project, User

        user = s.scalar(select(User).where(User.username == "lead"))
        project = s.scalar(select(Project).where(Project.name == "trial"))
        assert user is not None and project is not None
        user.projects.append(project)
    response = client.post(
        "/api/v1/imports", data={"project": "trial", "files": files(names)}, headers=_csrf(client)
    )
    assert response.status_code == 202, response.get_data(as_text=True)
    job_id = response.get_json()["id"]
    job = _wait_job(db, job_id)
    state = client.get(f"/api/v1/imports/{job_id}").get_json()
    assert state["status"] == "done" and state["total"] == 1 and len(state["imported"]) == 1
    assert state["refused"] == [{"file": "notes.txt", "reason": NOT_AN_IMAGE}]
    assert not Path(job.staging_dir).exists()  # uploads are removed once imported
    study = client.get(f"/api/v1/studies/{state['imported'][0]}").get_json()
    assert [lab["value"] for lab in study["segmentations"][0]["labels"]] == [1, 2]
    # Someone else cannot see the job.
    make_user(db, "other", Role.REVIEWER)
    other = app.test_client()
    login(other, "other")
    assert other.get(f"/api/v1/imports/{job_id}").status_code == 404


# Werkzeug leaves the spooled temp file of an upload it aborts at the size limit to the
# garbage collector; collect it inside this test, where that warning is expected.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_upload_over_the_size_limit_is_refused(sqlite_settings: Settings, tmp_path: Path) -> None:
    from dataclasses import replace

    app = create_app(replace(sqlite_settings, max_upload_mb=1))
    db: Database = app.extensions["portal"].db
    make_user(db, "root", Role.ADMIN)
    client = app.test_client()
    login(client, "root")
    big = io.BytesIO(b"\0" * (2 * 1024 * 1024))
    response = client.post(
        "/api/v1/imports", data={"project": "p", "files": [(big, "big.nii")]}, headers=_csrf(client)
    )
    assert response.status_code == 413
    del response, client
    gc.collect()
    assert not list((sqlite_settings.data_dir / "uploads").glob("*"))


def _csrf(client: object) -> dict[str, str]:
    with client.session_transaction() as sess:  # type: ignore[attr-defined]
        return {"X-CSRF-Token": sess["csrf"]}


def _orphans(settings: Settings, db: Database) -> list[Path]:
    with db.session() as s:
        referenced = {f for files in s.scalars(select(Volume.files)) for f in files}
        referenced |= set(s.scalars(select(Segmentation.file)))
        uids = set(s.scalars(select(Study.uid)))
    stray = [
        p
        for p in settings.store_dir.rglob("*")
        if p.is_file() and p.relative_to(settings.store_dir).as_posix() not in referenced
    ]
    stray += [p for p in settings.preview_dir.iterdir() if p.name not in uids]
    return stray


def test_kill_9_mid_import_leaves_no_orphans_and_the_job_finishes(
    sqlite_settings: Settings, tmp_path: Path
) -> None:
    for index in range(8):
        folder = tmp_path / "cases" / f"c{index}"
        image = _case(folder)
        # Different bytes per case, or the importer rightly treats them as one study.
        ref = nib.load(image)
        data = np.asanyarray(ref.dataobj).copy()
        data.flat[index] += 1
        nib.save(nib.Nifti1Image(data, ref.affine), folder / f"case{index}.nii.gz")
        image.unlink()
        (folder / "case-label.nii.gz").rename(folder / f"case{index}-label.nii.gz")
    db = Database(sqlite_settings.resolved_database_url)
    from portal.services.importer import ImportSettings
    from portal.services.queue import build_queue

    queue = build_queue(
        "",
        sqlite_settings.data_dir,
        sqlite_settings.resolved_database_url,
        ImportSettings.of(sqlite_settings),
    )
    job_id = jobs.create_job(db, "p", [tmp_path / "cases"], None)
    queue.enqueue_import(job_id)

    proc = _worker(sqlite_settings)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        with db.session() as s:
            job = s.get(ImportJob, job_id)
            assert job is not None
            if job.done >= 2:
                break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with db.session() as s:
        job = s.get(ImportJob, job_id)
        assert job is not None and job.status == "running" and job.done < 8
        # Every committed study is whole: its files and previews exist.
        for study in s.scalars(select(Study)):
            assert (sqlite_settings.preview_dir / study.uid / "image.vti.gz").exists()
            for f in study.volumes[0].files:
                assert (sqlite_settings.store_dir / f).exists()

    restarted = _worker(sqlite_settings, "--stale-after", "0")
    try:
        job = _wait_job(db, job_id)
    finally:
        restarted.terminate()
        restarted.wait(timeout=30)
    assert job.status == "done"
    with db.session() as s:
        assert len(s.scalars(select(Study)).all()) == 8
    assert _orphans(sqlite_settings, db) == []
    db.dispose()


def test_zip_archives_are_unpacked_by_the_job_and_bad_ones_refused_whole(
    sqlite_settings: Settings, tmp_path: Path
) -> None:
    image = _case(tmp_path / "case")
    good = tmp_path / "good.zip"
    with zipfile.ZipFile(good, "w") as zf:
        zf.write(image, "study/case.nii.gz")
        zf.write(image.with_name("case-label.nii.gz"), "study/case-label.nii.gz")
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.write(image, "case.nii.gz")
        zf.writestr("../../escape.txt", "outside")
    db = Database(sqlite_settings.resolved_database_url)
    job_id = jobs.create_job(db, "p", [good, evil], None)
    job = jobs.run_job(db, ImportSettings.of(sqlite_settings), job_id)
    assert job.status == "done" and len(job.imported) == 1
    [(path, reason)] = job.refused
    assert path == str(evil) and "escape.txt" in reason
    with db.session() as s:
        study = s.get(Study, job.imported[0])
        assert study is not None and study.segmentation_count == 1
    assert not (tmp_path.parent / "escape.txt").exists()
    assert not any((sqlite_settings.data_dir / "unpacked").iterdir())
    db.dispose()


def test_uploaded_folders_keep_their_structure_and_cannot_escape(
    sqlite_settings: Settings, tmp_path: Path
) -> None:
    """Two patients' `case.nii.gz` stay two studies; `../` and absolute names stay inside."""
    app = create_app(sqlite_settings)
    db: Database = app.extensions["portal"].db
    make_user(db, "root", Role.ADMIN)
    client = app.test_client()
    login(client, "root")
    image = _case(tmp_path / "src")
    files = [
        (io.BytesIO(image.read_bytes()), "trial/patient1/case.nii.gz"),
        (
            io.BytesIO(image.with_name("case-label.nii.gz").read_bytes()),
            "trial/patient1/case-label.nii.gz",
        ),
        (io.BytesIO(image.read_bytes() + b""), "../../trial/patient2/case.nii.gz"),
        (io.BytesIO(b"not an image"), "/etc/passwd"),
    ]
    response = client.post(
        "/api/v1/imports",
        data={"project": "p", "files": files, "resample_labels": "1"},
        headers=_csrf(client),
    )
    assert response.status_code == 202, response.get_data(as_text=True)
    job_id = response.get_json()["id"]
    job = jobs.run_job(db, ImportSettings.of(sqlite_settings), job_id)
    assert job.options == {"resample_labels": True}
    view = client.get(f"/api/v1/imports/{job_id}").get_json()
    # patient2's file has the same bytes as patient1's image but no label: its own study.
    assert len(view["imported"]) == 2, view
    assert view["refused"] == [{"file": "etc/passwd", "reason": NOT_AN_IMAGE}]
    with db.session() as s:
        lineages = sorted(s.scalars(select(Study.lineage)))
    assert lineages == ["nifti:trial/patient1/case", "nifti:trial/patient2/case"]
    assert not (sqlite_settings.data_dir / "etc").exists()
    listed = client.get("/api/v1/imports").get_json()["items"]
    assert [j["id"] for j in listed] == [job_id]
    page = client.get("/import")
    assert page.status_code == 200
