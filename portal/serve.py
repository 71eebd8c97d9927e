"""Run the app under gunicorn from the `portal` command (same server as in production)."""

from __future__ import annotations

import os
import subprocess
import sys
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


def run(
    settings: Settings,
    host: str,
    port: int,
    workers: int = 2,
    threads: int = 4,
    import_worker: bool = False,
) -> None:
    """Serve until interrupted. Workers share the catalog and the secret key file.

    With `import_worker`, a `portal worker` process runs beside the web server for as long
    as it does, so the embedded default needs no second command.
    """
    settings = settings.with_secret()
    helper = None
    if import_worker:
        env = {**os.environ, **settings.to_env()}
        helper = subprocess.Popen([sys.executable, "-m", "portal.cli", "worker"], env=env)
    try:
        _serve(settings, host, port, workers, threads)
    finally:
        if helper is not None:
            helper.terminate()
            try:
                helper.wait(timeout=30)
            except subprocess.TimeoutExpired:
                helper.kill()


def _serve(settings: Settings, host: str, port: int, workers: int, threads: int) -> None:
    _Gunicorn(
        settings,
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
