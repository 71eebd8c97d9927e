"""Malformed input through the real import job: every file refused with its reason, nothing kept.

The corpus (`tests/support/malformed.py`) is written into a temporary folder by each test.
Each case runs as its own job on its own migrated SQLite catalog, then the whole corpus
runs as one job together with one valid study. A worker must finish such a job (status
done), record for every bad file a reason that names its problem, and keep nothing of it:
no catalog rows, no store files, no preview folders, no unpacked archives.
"""

from __future__ import annotations

import shutil
import signal
import time
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

import pytest
from sqlalchemy import func, select

from portal.config import Settings
from portal.db import migrate
from portal.db.models import ImportJob, Segmentation, Study, Volume
from portal.db.session import Database
from portal.imaging.dicom import find_dicom_series
from portal.services import jobs
from portal.services.importer import ImportSettings
from tests.support.malformed import (
    CASES,
    CORPUS_MAX_ARCHIVE_MB,
    CORPUS_MAX_VOXELS,
    NIBABEL_DATA,
    UNREADABLE_DICOM,
    BuiltCase,
    Case,
    build_corpus,
)

# A refusal must come quickly: sizes are checked from headers, bombs are stopped early.
CASE_SECONDS = 10
HUGE_CASE_SECONDS = 2.0
HUGE_CASE_PEAK_BYTES = 64 * 1024**2


class _Hang(BaseException):
    """Raised by the alarm; a BaseException so that the job's `except Exception` lets it by."""


@contextmanager
def _deadline(seconds: int) -> Iterator[None]:
    def expire(signum: int, frame: FrameType | None) -> None:
        raise _Hang(f"import still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture(scope="module")
def migrated_catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty catalog migrated to head once; each job gets a fresh copy of the file."""
    path = tmp_path_factory.mktemp("catalog") / "portal.db"
    migrate.upgrade(f"sqlite:///{path}")
    return path


def _settings(data_dir: Path, migrated_catalog: Path) -> Settings:
    data_dir.mkdir(parents=True)
    shutil.copyfile(migrated_catalog, data_dir / "portal.db")
    return Settings(
        data_dir=data_dir,
        secret_key="k",
        preview_max_dim=32,
        max_voxels=CORPUS_MAX_VOXELS,
        max_archive_mb=CORPUS_MAX_ARCHIVE_MB,
    )


def _run_job(settings: Settings, paths: list[Path]) -> tuple[ImportJob, dict[str, int]]:
    """Run one import job in this process; the job row and the catalog's row counts."""
    db = Database(settings.resolved_database_url)
    try:
        job_id = jobs.create_job(db, "corpus", paths, None)
        job = jobs.run_job(db, ImportSettings.of(settings), job_id)
        with db.session() as s:
            counts = {
                model.__name__: s.scalar(select(func.count()).select_from(model)) or 0
                for model in (Study, Volume, Segmentation)
            }
    finally:
        db.dispose()
    return job, counts


def _leftovers(settings: Settings) -> list[Path]:
    """Everything an import wrote besides the catalog: store, previews, unpacked archives."""
    files = [
        p
        for p in settings.data_dir.rglob("*")
        if p.is_file() and not p.name.startswith("portal.db")
    ]
    folders = [*settings.preview_dir.glob("*"), *(settings.store_dir.parent / "unpacked").glob("*")]
    return sorted({*files, *folders})


def _files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()]


def _tree(folder: Path) -> list[tuple[str, int]]:
    return sorted((p.relative_to(folder).as_posix(), p.stat().st_size) for p in folder.rglob("*"))


def _assert_refused(job: ImportJob, built: BuiltCase) -> None:
    """The case's file is refused with its reason; every refusal names one of its files."""
    refused = [(Path(f), r) for f, r in job.refused or []]
    reasons = [r for f, r in refused if f == built.culprit]
    assert any(built.case.reason in r.lower() for r in reasons), (
        f"{built.culprit.name}: expected a reason with {built.case.reason!r}, got {refused}"
    )
    for f, reason in refused:
        assert f.is_relative_to(built.folder), (f, reason)
        # Reasons are shown in the UI and the API: no server folders, no patient names.
        assert str(built.folder) not in reason, reason
        assert "corpus^synthetic" not in reason.lower(), reason


def test_the_corpus_has_at_least_40_small_distinct_cases(tmp_path: Path) -> None:
    built = build_corpus(tmp_path)
    assert len(built) >= 40
    assert len({b.case.name for b in built}) == len(built)
    for b in built:
        assert b.files, b.case.name
        assert all(f.is_file() for f in b.files), b.case.name
        assert b.case.reason == b.case.reason.lower(), b.case.name
    sizes = {p.relative_to(tmp_path).as_posix(): p.stat().st_size for p in tmp_path.rglob("*.*")}
    assert max(sizes.values()) <= 64 * 1024, max(sizes.items(), key=lambda kv: kv[1])


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_each_malformed_input_is_refused_with_its_reason_and_leaves_nothing(
    case: Case, tmp_path: Path, migrated_catalog: Path
) -> None:
    (built,) = build_corpus(tmp_path / "in", [case])
    before = _tree(built.folder)
    settings = _settings(tmp_path / "data", migrated_catalog)

    if case.huge:
        tracemalloc.start()
    started = time.perf_counter()
    try:
        with _deadline(CASE_SECONDS):
            job, counts = _run_job(settings, [built.folder])
        seconds = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1] if case.huge else 0
    finally:
        if case.huge:
            tracemalloc.stop()

    assert job.status == "done", job.error
    _assert_refused(job, built)
    assert not job.imported
    assert counts == {"Study": 0, "Volume": 0, "Segmentation": 0}
    assert _leftovers(settings) == []
    assert _tree(built.folder) == before, "the import changed its input folder"
    if case.huge:
        # Refused from the header (or stopped early), not after allocating the declared size.
        assert seconds < HUGE_CASE_SECONDS, seconds
        assert peak < HUGE_CASE_PEAK_BYTES, f"peak {peak / 1024**2:.0f} MiB"


def test_one_job_with_the_whole_corpus_imports_exactly_the_valid_study(
    tmp_path: Path, migrated_catalog: Path
) -> None:
    inputs = tmp_path / "in"
    built = build_corpus(inputs)
    valid = inputs / "valid" / "anatomical.nii"
    valid.parent.mkdir()
    shutil.copyfile(NIBABEL_DATA / "anatomical.nii", valid)
    settings = _settings(tmp_path / "data", migrated_catalog)

    with _deadline(60):
        job, counts = _run_job(settings, [inputs])

    assert job.status == "done", job.error
    assert len(job.imported or []) == 1
    assert not job.skipped
    assert counts == {"Study": 1, "Volume": 1, "Segmentation": 0}
    refused = {Path(f) for f, _ in job.refused or []}
    assert valid not in refused
    for b in built:
        reasons = [r.lower() for f, r in job.refused or [] if Path(f) == b.culprit]
        assert any(b.case.reason in r for r in reasons), (b.case.name, reasons)
    db = Database(settings.resolved_database_url)
    try:
        with db.session() as s:
            study = s.scalars(select(Study)).one()
            assert study.name == "anatomical"
            stored = {f for files in s.scalars(select(Volume.files)) for f in files}
            uid = study.uid
    finally:
        db.dispose()
    in_store = {p.relative_to(settings.store_dir).as_posix() for p in _files(settings.store_dir)}
    assert in_store == stored
    assert [p.name for p in settings.preview_dir.iterdir()] == [uid]
    assert not list((settings.store_dir.parent / "unpacked").glob("*/*"))


@pytest.mark.parametrize("name", sorted(UNREADABLE_DICOM))
def test_the_dicom_reader_names_what_is_wrong_with_an_unreadable_header(
    name: str, tmp_path: Path
) -> None:
    (built,) = build_corpus(tmp_path, [c for c in CASES if c.name == name])
    unreadable: list[tuple[Path, str]] = []
    assert find_dicom_series([built.folder], unreadable=unreadable) == []
    assert [(p, UNREADABLE_DICOM[name] in r.lower()) for p, r in unreadable] == [
        (built.culprit, True)
    ], unreadable


def test_deep_nesting_is_refused_whatever_the_recursion_limit(tmp_path: Path) -> None:
    """pydicom gives up on deep nesting only by hitting Python's recursion limit, which
    other libraries raise; the reader's own depth limit must refuse it regardless."""
    import sys

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(100_000)
    try:
        (built,) = build_corpus(
            tmp_path, [c for c in CASES if c.name == "dcm_sequence_nested_300_deep"]
        )
        unreadable: list[tuple[Path, str]] = []
        assert find_dicom_series([built.folder], unreadable=unreadable) == []
    finally:
        sys.setrecursionlimit(limit)
    [(path, reason)] = unreadable
    assert path == built.culprit and "nested too deeply" in reason
