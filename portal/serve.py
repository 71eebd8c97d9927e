"""Run the app under gunicorn from the `portal` command (same server as in production)."""

from __future__ import annotations

from typing import Any

from gunicorn.app.base import BaseApplication

from portal.config import Settings


class _Gunicorn(BaseApplication):  # type: ignore[misc]
    def __init__(self, settings: Settings, options: dict[str, Any]) -> None:
        self.settings = settings
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        from portal.app import create_app

        return create_app(self.settings)


def run(settings: Settings, host: str, port: int, workers: int = 2, threads: int = 4) -> None:
    """Serve until interrupted. Workers share the catalog and the secret key file."""
    _Gunicorn(
        settings.with_secret(),
        {
            "bind": f"{host}:{port}",
            "workers": workers,
            "threads": threads,
            "worker_class": "gthread",
            "timeout": 120,
            "accesslog": "-",
            # Query strings hold study ids, not names; still keep the log line short.
            "access_log_format": '%(h)s "%(m)s %(U)s" %(s)s %(b)s %(M)sms',
        },
    ).run()
