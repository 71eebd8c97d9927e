"""A throwaway Orthanc (Debian's `orthanc` + `orthanc-dicomweb`) on 127.0.0.1.

Started with its own configuration, storage and free ports, with HTTP basic auth on,
so the tests talk to the real server exactly as the portal would talk to a hospital's.
Without the binary the tests that need it are skipped, unless PORTAL_REQUIRE_ORTHANC=1
(CI sets it) turns that into a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import requests

from tests.support.postgres import _free_port

BINARY = Path(os.environ.get("PORTAL_ORTHANC_BINARY", "/usr/sbin/Orthanc"))
DICOMWEB_PLUGIN = Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so")
USER, PASSWORD = "portal", "orthanc-test-secret"


class OrthancUnavailable(RuntimeError):
    pass


class OrthancServer:
    def __init__(self) -> None:
        if not BINARY.exists() or not DICOMWEB_PLUGIN.exists():
            raise OrthancUnavailable(f"{BINARY} or {DICOMWEB_PLUGIN} not found")
        self.root = Path(tempfile.mkdtemp(prefix="portal-orthanc-"))
        self.http_port = _free_port()
        self.dicom_port = _free_port()
        self.url = f"http://127.0.0.1:{self.http_port}"
        self.auth = (USER, PASSWORD)
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        config = {
            "Name": "portal-test",
            "StorageDirectory": str(self.root / "storage"),
            "IndexDirectory": str(self.root / "index"),
            "HttpPort": self.http_port,
            "DicomPort": self.dicom_port,
            "DicomAet": "PORTALTEST",
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": True,
            "RegisteredUsers": {USER: PASSWORD},
            "Plugins": [str(DICOMWEB_PLUGIN)],
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
            "HttpCompressionEnabled": False,
        }
        path = self.root / "orthanc.json"
        path.write_text(json.dumps(config))
        with (self.root / "orthanc.log").open("wb") as log:
            self._proc = subprocess.Popen(
                [str(BINARY), str(path)], stdout=log, stderr=subprocess.STDOUT, cwd=self.root
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise OrthancUnavailable(
                    "Orthanc exited: " + (self.root / "orthanc.log").read_text()[-2000:]
                )
            try:
                if requests.get(self.url + "/system", auth=self.auth, timeout=2).ok:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.2)
        self.stop()
        raise OrthancUnavailable("Orthanc did not answer within 60 s")

    def upload(self, files: list[Path]) -> None:
        for f in files:
            r = requests.post(
                self.url + "/instances", data=f.read_bytes(), auth=self.auth, timeout=30
            )
            r.raise_for_status()

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self._proc.kill()
        shutil.rmtree(self.root, ignore_errors=True)
