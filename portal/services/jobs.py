"""Import jobs: one row per request, run by a worker, progress and report kept in the catalog.

A job is idempotent (the importer skips studies already present), so a job interrupted by a
crash is simply run again. `sweep_orphans` removes store files and preview folders that a
killed import wrote but never committed.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select, update

from portal.db.models import ImportJob, JobStatus, Role, Segmentation, Study, Volume
from portal.db.session import Database
from portal.services import audit, pacs
from portal.services.auth import Principal
from portal.services.discovery import discover, expand_archives
from portal.services.errors import InvalidInput, NotFound, PermissionDenied
from portal.services.importer import ImportSettings, import_study

log = logging.getLogger(__name__)

MAX_PACS_STUDIES = 100


def create_job(
    db: Database,
    project: str,
    paths: list[Path],
    user_id: int | None,
    staging_dir: Path | None = None,
    *,
    resample_labels: bool = False,
) -> int:
    """Record a queued job and return its id (the caller then enqueues or runs it).

    `resample_labels` puts label maps whose grid differs from their image's on the
    image grid (nearest neighbour) instead of refusing them.
    """
    with db.session() as s:
        job = ImportJob(
            project=project,
            paths=[str(p) for p in paths],
            staging_dir=str(staging_dir or ""),
            created_by_id=user_id,
            imported=[],
            skipped=[],
            refused=[],
            notes=[],
            options={"resample_labels": bool(resample_labels)},
        )
        s.add(job)
        s.flush()
        audit.record(s, user_id, "import.queued", f"job:{job.id}", f"paths={len(paths)}")
        return job.id


def create_pacs_job(
    db: Database,
    project: str,
    source: str,
    study_uids: list[str],
    user_id: int | None,
    staging_dir: Path,
    *,
    resample_labels: bool = False,
) -> int:
    """Queue the import of studies from a configured archive (see `services.pacs`).

    The worker downloads them into `staging_dir` first, then imports that folder.
    """
    uids = [pacs.check_uid(u) for u in dict.fromkeys(study_uids)]
    if not uids:
        raise InvalidInput("choose at least one study to import")
    if len(uids) > MAX_PACS_STUDIES:
        raise InvalidInput(f"import at most {MAX_PACS_STUDIES} studies at a time")
    job_id = create_job(
        db, project, [staging_dir], user_id, staging_dir, resample_labels=resample_labels
    )
    with db.session() as s:
        job = s.get(ImportJob, job_id)
        assert job is not None
        job.options = {**job.options, "pacs": {"source": source, "studies": uids}}
        audit.record(
            s, user_id, "import.pacs", f"job:{job_id}", f"source={source} studies={len(uids)}"
        )
    return job_id


def _fetch_from_pacs(
    settings: ImportSettings, options: dict[str, Any], staging: Path
) -> list[list[str]]:
    """Download a PACS job's studies into `staging`; return (study UID, reason) refusals."""
    spec = options["pacs"]
    source = pacs.source_named(pacs.parse_sources(settings.pacs_sources), spec["source"])
    refused: list[list[str]] = []
    for n, uid in enumerate(spec["studies"]):
        folder = staging / f"study-{n:03d}"
        try:
            pacs.fetch_study(source, uid, folder, settings.max_archive_bytes)
        except (pacs.PacsError, NotFound) as exc:
            shutil.rmtree(folder, ignore_errors=True)
            refused.append([f"{source.name}:{uid}", str(exc)])
    return refused


def _set(db: Database, job_id: int, **values: Any) -> None:
    with db.session() as s:
        s.execute(update(ImportJob).where(ImportJob.id == job_id).values(**values))


def run_job(
    db: Database,
    settings: ImportSettings,
    job_id: int,
    progress: Callable[[int, int, str], None] | None = None,
) -> ImportJob:
    """Run a job to the end, saving progress after every study; returns the final row.

    `progress(done, total, study_name)` is called after each study (the CLI's bar).
    """
    with db.session() as s:
        job = s.get(ImportJob, job_id)
        if job is None:
            raise NotFound(f"import job {job_id} not found")
        paths = [Path(p) for p in job.paths]
        project, user_id, staging = job.project, job.created_by_id, job.staging_dir
        options = dict(job.options or {})
    settings = replace(settings, resample_labels=bool(options.get("resample_labels")))
    now = datetime.now(UTC)
    _set(db, job_id, status=JobStatus.RUNNING.value, started_at=now, heartbeat_at=now)
    unpacked = unpack_dir(settings, job_id)
    shutil.rmtree(unpacked, ignore_errors=True)  # what a crashed run of this job left
    try:
        fetch_refused = (
            _fetch_from_pacs(settings, options, Path(staging)) if options.get("pacs") else []
        )
        folders, refused = expand_archives(paths, unpacked, settings.max_archive_bytes)
        found = discover([*paths, *folders], archives_expanded=True)
        sources = found.sources
        imported: list[int] = []
        skipped: list[str] = []
        refused_rows = [*fetch_refused, *[list(r) for r in [*refused, *found.refused]]]
        note_rows = [list(n) for n in found.notes]
        _set(db, job_id, total=len(sources), done=0, refused=refused_rows, notes=note_rows)
        for index, source in enumerate(sources, start=1):
            report = import_study(db, settings, project, source, user_id)
            imported += report.imported
            skipped += report.skipped
            refused_rows += [list(r) for r in report.refused]
            note_rows += [list(n) for n in report.notes]
            _set(
                db,
                job_id,
                done=index,
                imported=imported,
                skipped=skipped,
                refused=refused_rows,
                notes=note_rows,
                heartbeat_at=datetime.now(UTC),
            )
            if progress is not None:
                progress(index, len(sources), source.name)
        status = JobStatus.DONE
    except Exception as exc:  # a worker must survive any input; the job records why
        log.exception("import job %s failed", job_id)
        _set(
            db,
            job_id,
            status=JobStatus.FAILED.value,
            error=f"{type(exc).__name__}: {exc}",
            finished_at=datetime.now(UTC),
        )
        status = JobStatus.FAILED
    else:
        _set(db, job_id, status=status.value, finished_at=datetime.now(UTC))
    shutil.rmtree(unpacked, ignore_errors=True)
    if staging:
        shutil.rmtree(staging, ignore_errors=True)
    with db.session() as s:
        job = s.get(ImportJob, job_id)
        assert job is not None
        audit.record(s, user_id, "import.finished", f"job:{job_id}", f"status={job.status}")
        return job


def unpack_dir(settings: ImportSettings, job_id: int) -> Path:
    """Where a job unpacks its archives (removed when it ends, or swept after a crash)."""
    return settings.store_dir.parent / "unpacked" / f"job-{job_id}"


def job_view(job: ImportJob) -> dict[str, Any]:
    """JSON-ready state of a job (paths of uploads are server-internal and left out)."""
    return {
        "id": job.id,
        "status": job.status,
        "project": job.project,
        "total": job.total,
        "done": job.done,
        "imported": list(job.imported or []),
        "skipped": list(job.skipped or []),
        "refused": [{"file": _shown_path(job, f), "reason": r} for f, r in (job.refused or [])],
        "notes": [{"file": _shown_path(job, f), "note": n} for f, n in (job.notes or [])],
        "options": dict(job.options or {}),
        "error": job.error,
        "created_at": _iso(job.created_at),
        "finished_at": _iso(job.finished_at),
    }


def _iso(value: datetime | None) -> str | None:
    # SQLite gives naive datetimes back; they are UTC.
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()


def _shown_path(job: ImportJob, path: str) -> str:
    # Uploads live in a server-internal staging folder: show the path the user sent.
    if not job.staging_dir:
        return path
    try:
        return Path(path).relative_to(job.staging_dir).as_posix()
    except ValueError:
        return Path(path).name


def get_job(db: Database, principal: Principal, job_id: int) -> dict[str, Any]:
    """A job's state for its creator or an admin; anyone else gets NotFound."""
    with db.session() as s:
        job = s.get(ImportJob, job_id)
        if job is None or (not principal.is_admin and job.created_by_id != principal.user_id):
            raise NotFound(f"import job {job_id} not found")
        return job_view(job)


def list_jobs(db: Database, principal: Principal, limit: int = 20) -> list[dict[str, Any]]:
    """The newest jobs `principal` may see (admins: everyone's; others: their own)."""
    stmt = select(ImportJob).order_by(ImportJob.id.desc()).limit(max(1, min(limit, 200)))
    if not principal.is_admin:
        stmt = stmt.where(ImportJob.created_by_id == principal.user_id)
    with db.session() as s:
        return [job_view(job) for job in s.scalars(stmt)]


def may_import(principal: Principal, project: str, member_projects: list[str]) -> None:
    """Admins import anywhere; experts and reviewers only into projects they belong to."""
    if principal.role is Role.ADMIN or project in member_projects:
        return
    raise PermissionDenied(f"you are not a member of project {project!r}")


def recover_interrupted(db: Database, stale_after: timedelta) -> list[int]:
    """Mark jobs left RUNNING by a dead worker as interrupted; return their ids to re-run.

    A running job is dead when its heartbeat (saved by its worker after every study) is
    older than `stale_after`.
    """
    cutoff = datetime.now(UTC) - stale_after
    with db.session() as s:
        rows = s.scalars(select(ImportJob).where(ImportJob.status == JobStatus.RUNNING.value)).all()
        dead = [j.id for j in rows if _is_before(j.heartbeat_at, cutoff)]
        if dead:
            s.execute(
                update(ImportJob)
                .where(ImportJob.id.in_(dead))
                .values(status=JobStatus.INTERRUPTED.value)
            )
    return dead


def _is_before(value: datetime | None, cutoff: datetime) -> bool:
    """True for a missing time too; SQLite hands timestamps back without a zone."""
    if value is None:
        return True
    return (value if value.tzinfo else value.replace(tzinfo=UTC)) < cutoff


def sweep_orphans(
    db: Database, store_dir: Path, preview_dir: Path, older_than_s: float
) -> list[Path]:
    """Delete store files and preview folders no catalog row refers to.

    Only entries older than `older_than_s` are touched, so files an import is writing right
    now (committed a moment later) are safe.
    """
    with db.session() as s:
        referenced = {f for files in s.scalars(select(Volume.files)) for f in files}
        referenced |= set(s.scalars(select(Segmentation.file)))
        uids = set(s.scalars(select(Study.uid)))
    cutoff = time.time() - older_than_s
    removed: list[Path] = []
    if store_dir.exists():
        for path in store_dir.rglob("*"):
            if not path.is_file() or path.stat().st_mtime > cutoff:
                continue
            if path.relative_to(store_dir).as_posix() not in referenced:
                path.unlink(missing_ok=True)
                removed.append(path)
    if preview_dir.exists():
        for entry in preview_dir.iterdir():
            name = entry.name
            uid = name[1:].removesuffix(".tmp") if name.startswith(".") else name
            if entry.stat().st_mtime > cutoff or (uid in uids and not name.startswith(".")):
                continue
            shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else entry.unlink()
            removed.append(entry)
    unpacked = store_dir.parent / "unpacked"
    if unpacked.exists():
        with db.session() as s:
            active = {
                f"job-{job_id}"
                for job_id in s.scalars(
                    select(ImportJob.id).where(
                        ImportJob.status.in_([JobStatus.QUEUED.value, JobStatus.RUNNING.value])
                    )
                )
            }
        for entry in unpacked.iterdir():
            if entry.name not in active and entry.stat().st_mtime <= cutoff:
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(entry)
    if removed:
        log.info("swept %d orphan files/folders (pid %d)", len(removed), os.getpid())
    return removed
