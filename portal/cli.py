"""The `portal` command: demo, serve, db upgrade, user add, token, import."""

from __future__ import annotations

import logging
import secrets
import sys
import time
from datetime import timedelta
from pathlib import Path

import click
from sqlalchemy import select

from portal.config import Settings
from portal.db import migrate
from portal.db.models import Role, User
from portal.db.session import Database
from portal.services import auth, jobs, tokens
from portal.services.auth import Principal
from portal.services.discovery import StudySource
from portal.services.errors import InvalidInput, NotFound
from portal.services.importer import ImportReport, ImportSettings, import_sources


def _settings() -> Settings:
    return Settings.from_env()


def _import_settings(settings: Settings) -> ImportSettings:
    return ImportSettings.of(settings)


def _print_report(report: ImportReport) -> None:
    click.echo(
        f"imported {len(report.imported)}, already present {len(report.skipped)}, "
        f"refused {len(report.refused)}"
    )
    for path, note in report.notes:
        click.echo(f"note: {path}: {note}")
    for path, reason in report.refused:
        click.echo(f"refused: {path}: {reason}", err=True)


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log at debug level.")
def main(verbose: bool) -> None:
    """portal: review medical images and their segmentations in the browser."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


@main.group()
def db() -> None:
    """Database schema commands."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Create or upgrade the catalog schema with Alembic."""
    settings = _settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    migrate.upgrade(settings.resolved_database_url, revision)
    click.echo("database is at " + revision)


@main.group()
def user() -> None:
    """User accounts."""


@user.command("add")
@click.argument("name")
@click.option(
    "--role",
    type=click.Choice([r.value for r in Role]),
    default=Role.REVIEWER.value,
    show_default=True,
)
@click.option("--project", "projects", multiple=True, help="Project to join (repeatable).")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def user_add(name: str, role: str, projects: tuple[str, ...], password_stdin: bool) -> None:
    """Create a user. The password is prompted for unless --password-stdin."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    database = Database(_settings().resolved_database_url)
    try:
        with database.session() as s:
            auth.create_user(s, name, password, Role(role), list(projects))
    except InvalidInput as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        database.dispose()
    click.echo(f"created {role} {name}")


@main.group()
def token() -> None:
    """Personal access tokens for scripts (`Authorization: Bearer ...`)."""


def _principal_named(s: object, name: str) -> Principal:
    user = s.scalar(select(User).where(User.username == name))  # type: ignore[attr-defined]
    if user is None or not user.is_active:
        raise click.ClickException(f"no active user {name!r}")
    return Principal.of(user)


@token.command("create")
@click.argument("username")
@click.option("--name", required=True, help="What the token is for, e.g. the script.")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    type=click.Choice([sc.value for sc in tokens.Scope]),
    default=["read"],
    show_default=True,
    help="Repeatable: read, review (implies read), admin (implies both).",
)
@click.option("--days", default=90, show_default=True, help="Lifetime in days (1-365).")
def token_create(username: str, name: str, scopes: tuple[str, ...], days: int) -> None:
    """Create a token for USERNAME and print it (it is shown only this once)."""
    database = Database(_settings().resolved_database_url)
    try:
        with database.session() as s:
            who = _principal_named(s, username)
            row, secret = tokens.create_token(s, who, name, tokens.parse_scopes(list(scopes)), days)
            expires = row.expires_at.date().isoformat()
    except InvalidInput as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        database.dispose()
    click.echo(secret)
    click.echo(f"token {name!r} for {username}, scopes {row.scopes}, expires {expires}", err=True)


@token.command("list")
@click.argument("username")
def token_list(username: str) -> None:
    """List USERNAME's tokens (never the tokens themselves)."""
    database = Database(_settings().resolved_database_url)
    try:
        with database.session() as s:
            rows = tokens.list_tokens(s, _principal_named(s, username))
    finally:
        database.dispose()
    for r in rows:
        state = "revoked" if r["revoked"] else "expired" if r["expired"] else "live"
        click.echo(
            f"{r['id']}\t{r['prefix']}…\t{r['name']}\t{' '.join(r['scopes'])}\t"
            f"{r['expires_at'][:10]}\t{state}"
        )


@token.command("revoke")
@click.argument("username")
@click.argument("token_id", type=int)
def token_revoke(username: str, token_id: int) -> None:
    """Revoke token TOKEN_ID of USERNAME."""
    database = Database(_settings().resolved_database_url)
    try:
        with database.session() as s:
            tokens.revoke_token(s, _principal_named(s, username), token_id)
    except NotFound as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        database.dispose()
    click.echo(f"revoked token {token_id}")


@main.command("import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--project", default="default", show_default=True)
@click.option(
    "--resample-labels",
    is_flag=True,
    help="Resample label maps whose grid differs from their image's (nearest neighbour) "
    "instead of refusing them.",
)
def import_cmd(paths: tuple[Path, ...], project: str, resample_labels: bool) -> None:
    """Import images, their segmentations, DICOM folders and ZIP archives into a project.

    NIfTI, MGH/MGZ and NRRD images pair with label maps named <stem>-label, <stem>_seg,
    <stem>.seg.nrrd (and similar); a DICOM SEG pairs with the series it references.
    """
    settings = _settings()
    database = Database(settings.resolved_database_url)
    try:
        job_id = jobs.create_job(
            database, project, list(paths), None, resample_labels=resample_labels
        )
        with click.progressbar(length=1, label="importing", show_pos=True) as bar:

            def advance(done: int, total: int, name: str) -> None:
                bar.length = max(total, 1)
                bar.label = f"importing {name[:40]}"
                bar.update(1)

            job = jobs.run_job(database, ImportSettings.of(settings), job_id, progress=advance)
    finally:
        database.dispose()
    report = ImportReport(
        imported=list(job.imported),
        skipped=list(job.skipped),
        refused=[(f, r) for f, r in job.refused],
        notes=[(f, n) for f, n in job.notes],
    )
    _print_report(report)
    if job.status != "done":
        raise click.ClickException(f"import job {job_id} {job.status}: {job.error}")
    if report.refused:
        sys.exit(1)


def _ensure_admin(database: Database, password: str) -> str | None:
    """Create `admin` unless it exists; return the generated password if one was made."""
    with database.session() as s:
        if s.scalar(select(User.id).where(User.username == "admin")) is not None:
            return None
        generated = None
        if not password:
            password = generated = secrets.token_urlsafe(12)
        auth.create_user(s, "admin", password, Role.ADMIN)
        return generated


def prepare_demo(settings: Settings) -> tuple[ImportReport, str | None]:
    """Migrate, build and import the demo studies, create the admin. Safe to rerun."""
    from portal.imaging.demo import build_demo_dataset

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    migrate.upgrade(settings.resolved_database_url)
    database = Database(settings.resolved_database_url)
    try:
        demo = build_demo_dataset(settings.data_dir / "demo-source")
        sources = [StudySource.of_demo(d) for d in demo]
        report = import_sources(database, _import_settings(settings), "demo", sources)
        generated = _ensure_admin(database, settings.admin_password)
    finally:
        database.dispose()
    return report, generated


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8050, show_default=True, type=int)
@click.option("--no-serve", is_flag=True, help="Prepare the demo data and exit.")
def demo(host: str, port: int, no_serve: bool) -> None:
    """Set up the demo catalog (real images from installed packages) and serve it."""
    settings = _settings()
    started = time.perf_counter()
    report, generated = prepare_demo(settings)
    _print_report(report)
    click.echo(f"demo ready in {time.perf_counter() - started:.1f} s ({settings.data_dir})")
    if generated:
        click.echo(f"created user 'admin' with password: {generated}  (shown only once)")
    if report.refused:
        raise click.ClickException("some demo studies could not be imported")
    if not no_serve:
        click.echo(f"serving on http://{host}:{port}")
        from portal.serve import run

        run(settings, host, port, import_worker=True)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8050, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, type=int)
@click.option("--no-import-worker", is_flag=True, help="Do not start an import worker too.")
def serve(host: str, port: int, workers: int, no_import_worker: bool) -> None:
    """Serve the portal (run `portal db upgrade` first), with one import worker."""
    from portal.serve import run

    run(_settings(), host, port, workers=workers, import_worker=not no_import_worker)


@main.command()
@click.option("--threads", default=1, show_default=True, type=int)
@click.option(
    "--stale-after",
    default=600,
    show_default=True,
    type=float,
    help="Seconds without a heartbeat after which a running job counts as interrupted, and "
    "the age beyond which uncommitted files count as orphans.",
)
def worker(threads: int, stale_after: float) -> None:
    """Run import jobs from the queue until stopped (re-queues jobs a crash interrupted)."""
    from portal.services.queue import build_queue, start_worker

    settings = _settings()
    queue = build_queue(
        settings.queue_url,
        settings.data_dir,
        settings.resolved_database_url,
        ImportSettings.of(settings),
    )
    start_worker(
        queue,
        settings.resolved_database_url,
        ImportSettings.of(settings),
        threads,
        stale_after=timedelta(seconds=stale_after),
    )


if __name__ == "__main__":
    main()
