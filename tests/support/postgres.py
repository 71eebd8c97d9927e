"""A throwaway PostgreSQL 15 cluster on 127.0.0.1 for the test session.

initdb refuses to run as root, so as root the cluster runs as the `postgres` system user.
Without the binaries the tests that need it are skipped, unless PORTAL_REQUIRE_POSTGRES=1
(CI sets it) turns that into a failure.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

BINDIR = Path(os.environ.get("PORTAL_PG_BINDIR", "/usr/lib/postgresql/15/bin"))


class PostgresUnavailable(RuntimeError):
    pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostgresCluster:
    def __init__(self) -> None:
        if not (BINDIR / "initdb").exists():
            raise PostgresUnavailable(f"{BINDIR}/initdb not found")
        self.root = Path(tempfile.mkdtemp(prefix="portal-pg-"))
        self.datadir = self.root / "data"
        self.port = _free_port()
        self._run_as: list[str] = []
        if os.geteuid() == 0:
            try:
                pw = pwd.getpwnam("postgres")
            except KeyError as exc:
                raise PostgresUnavailable("running as root and no 'postgres' user") from exc
            os.chown(self.root, pw.pw_uid, pw.pw_gid)
            self._run_as = ["runuser", "-u", "postgres", "--"]
        self.root.chmod(0o700)

    def _cmd(self, *args: str) -> None:
        subprocess.run([*self._run_as, *args], check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        self._cmd(
            str(BINDIR / "initdb"),
            "-D",
            str(self.datadir),
            "-U",
            "portal",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        )
        self._cmd(
            str(BINDIR / "pg_ctl"),
            "-D",
            str(self.datadir),
            "-w",
            "-t",
            "60",
            "-l",
            str(self.root / "log"),
            "-o",
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off",
            "start",
        )

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://portal@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(
            f"host=127.0.0.1 port={self.port} user=portal dbname=postgres", autocommit=True
        ) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        try:
            self._cmd(
                str(BINDIR / "pg_ctl"), "-D", str(self.datadir), "-m", "immediate", "-w", "stop"
            )
        except subprocess.CalledProcessError:
            pass
        time.sleep(0.1)
        shutil.rmtree(self.root, ignore_errors=True)
