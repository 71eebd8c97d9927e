"""Settings: every `PORTAL_*` environment variable is declared here once, with help text.

README's settings table is checked against `SETTINGS` by a test, so a new setting cannot
go undocumented.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any


def _setting(default: object, help: str) -> object:
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class Settings:
    """Runtime configuration. Build it with `Settings.from_env()`; tests use `replace`."""

    data_dir: Path = _setting(  # type: ignore[assignment]
        Path("portal-data"),
        "Folder for the SQLite catalog, the file store, previews and the secret key.",
    )
    database_url: str = _setting(  # type: ignore[assignment]
        "",
        "SQLAlchemy URL of the catalog. Empty means `sqlite:///<data_dir>/portal.db`. "
        "PostgreSQL URLs (`postgresql+psycopg://user:pw@host/db`) work unchanged.",
    )
    secret_key: str = _setting(  # type: ignore[assignment]
        "",
        "Key that signs session cookies. Empty means a random key kept in "
        "`<data_dir>/secret_key`, shared by all workers using that folder.",
    )
    admin_password: str = _setting(  # type: ignore[assignment]
        "",
        "Password given to the `admin` user that `portal demo` creates. Empty means one is "
        "generated and printed once.",
    )
    session_hours: float = _setting(  # type: ignore[assignment]
        12.0, "Hours a login session stays valid without activity."
    )
    session_max_hours: float = _setting(  # type: ignore[assignment]
        72.0, "Hours after sign-in when a session ends, however active (absolute timeout)."
    )
    login_max_failures: int = _setting(  # type: ignore[assignment]
        5,
        "Failed sign-ins of one account within 15 minutes before that account is locked "
        "for 15 minutes; one address may fail four times as often.",
    )
    preview_max_dim: int = _setting(  # type: ignore[assignment]
        192,
        "Largest edge, in voxels, of the preview volume sent to a browser pane.",
    )
    max_voxels: int = _setting(  # type: ignore[assignment]
        512 * 1024 * 1024,
        "Largest image (voxel count) accepted by import; checked from headers before loading.",
    )
    panes_per_page: int = _setting(  # type: ignore[assignment]
        12,
        "Panes on one review page (at most 12: each pane is one WebGL context and browsers "
        "keep about 16).",
    )
    queue_url: str = _setting(  # type: ignore[assignment]
        "",
        "Job queue for imports. Empty means a SQLite queue in `<data_dir>/jobs.db` (no extra "
        "server); `redis://host:6379/0` for workers on several machines.",
    )
    pacs_sources: str = _setting(  # type: ignore[assignment]
        "",
        "Remote archives to search and import from: comma-separated `name=orthanc+URL` or "
        "`name=dicomweb+URL` (credentials as `https://user:password@host`). Empty: none.",
    )
    max_upload_mb: int = _setting(  # type: ignore[assignment]
        4096, "Largest upload (all files of one request together), in MiB."
    )
    max_segmentation_mb: int = _setting(  # type: ignore[assignment]
        256,
        "Largest label map file added to an existing study, in MiB (it is held in memory "
        "while checked; the pane's upload is also bounded by the 16 MiB of a Dash request).",
    )
    max_archive_mb: int = _setting(  # type: ignore[assignment]
        16384,
        "Largest total unpacked size of one ZIP archive being imported, in MiB (zip bombs "
        "and archives over this are refused before anything is written).",
    )
    log_level: str = _setting("INFO", "Python logging level for the portal loggers.")  # type: ignore[assignment]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read `PORTAL_<FIELD>` variables, converting to each field's type."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(env_name(f.name))
            if raw is None or raw == "":
                continue
            kind: Callable[[str], Any] = Path if isinstance(f.default, Path) else type(f.default)
            try:
                values[f.name] = kind(raw)
            except ValueError as exc:
                raise ValueError(f"{env_name(f.name)}={raw!r}: {exc}") from exc
        return cls(**values).validated()

    def to_env(self) -> dict[str, str]:
        """The `PORTAL_*` variables that reproduce these settings in a child process."""
        return {
            env_name(f.name): str(getattr(self, f.name))
            for f in fields(self)
            if str(getattr(self, f.name)) != ""
        }

    def validated(self) -> Settings:
        from portal.services.pacs import parse_sources

        parse_sources(self.pacs_sources)  # a typo fails at start-up, naming the entry
        if not 1 <= self.panes_per_page <= 12:
            raise ValueError("PORTAL_PANES_PER_PAGE must be between 1 and 12")
        if self.preview_max_dim < 16:
            raise ValueError("PORTAL_PREVIEW_MAX_DIM must be at least 16")
        return self

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'portal.db').resolve()}"

    @property
    def store_dir(self) -> Path:
        return self.data_dir / "store"

    @property
    def preview_dir(self) -> Path:
        return self.data_dir / "previews"

    def with_secret(self) -> Settings:
        """Return settings whose `secret_key` is set, creating the key file if needed."""
        if self.secret_key:
            return self
        path = self.data_dir / "secret_key"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_urlsafe(48))
            # link() fails if another worker won the race; then we read theirs.
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass
            tmp.unlink(missing_ok=True)
        return replace(self, secret_key=path.read_text().strip())


def env_name(field_name: str) -> str:
    return f"PORTAL_{field_name.upper()}"


SETTINGS: tuple[tuple[str, str, str], ...] = tuple(
    (env_name(f.name), str(f.default), f.metadata["help"]) for f in fields(Settings)
)
"""(variable, default, help) for each setting, in declaration order."""
