"""The job queue: Huey, with SQLite storage in the data folder by default, Redis at scale.

Huey is small, needs no server for its SQLite storage (the embedded default stays one
command), keeps queued tasks across restarts, and switches to Redis by URL for several
machines. Workers run `portal worker`; the web app only enqueues.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from huey import Huey, RedisHuey, SqliteHuey
from huey.api import TaskWrapper

from portal.db.session import Database
from portal.services import jobs
from portal.services.importer import ImportSettings

log = logging.getLogger(__name__)


@dataclass
class Queue:
    huey: Huey
    run_import: TaskWrapper

    def enqueue_import(self, job_id: int) -> None:
        self.run_import(job_id)


def build_queue(
    queue_url: str, data_dir: Path, database_url: str, import_settings: ImportSettings
) -> Queue:
    """Build the Huey instance and register the import task on it.

    The web process and the workers call this with the same settings, so the task name
    and storage agree.
    """
    if queue_url.startswith("redis://"):
        huey: Huey = RedisHuey("portal", url=queue_url)
    else:
        data_dir.mkdir(parents=True, exist_ok=True)
        huey = SqliteHuey("portal", filename=str(data_dir / "jobs.db"))

    def import_job(job_id: int) -> None:
        db = Database(database_url)
        try:
            jobs.run_job(db, import_settings, job_id)
        finally:
            db.dispose()

    return Queue(huey=huey, run_import=huey.task(name="portal.import_job")(import_job))


def start_worker(
    queue: Queue,
    database_url: str,
    import_settings: ImportSettings,
    workers: int = 1,
    stale_after: timedelta = timedelta(minutes=10),
) -> None:
    """Recover after a crash, then consume jobs until stopped (SIGTERM/SIGINT)."""
    db = Database(database_url)
    try:
        for job_id in jobs.recover_interrupted(db, stale_after):
            log.info("re-queueing interrupted import job %s", job_id)
            queue.enqueue_import(job_id)
        jobs.sweep_orphans(
            db,
            import_settings.store_dir,
            import_settings.preview_dir,
            older_than_s=stale_after.total_seconds(),
        )
    finally:
        db.dispose()
    queue.huey.create_consumer(workers=workers, worker_type="thread").run()
