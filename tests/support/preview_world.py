"""Shared set-up of integration tests that read previews through the API: a migrated
catalog with chosen demo studies imported, and fetching a `.vti` answer."""

from __future__ import annotations

import gzip
from pathlib import Path

from flask.testing import FlaskClient

from portal.config import Settings
from portal.db.session import Database
from portal.imaging.demo import DemoStudy, build_demo_dataset
from portal.imaging.vti import VtiImage, read_vti_bytes
from portal.services.discovery import StudySource
from portal.services.importer import ImportSettings, import_sources


def import_demo(
    db: Database, settings: Settings, folder: Path, names: tuple[str, ...], project: str = "demo"
) -> tuple[dict[str, int], list[DemoStudy]]:
    """Build the demo data in `folder` and import the studies called `names` into
    `project`; their ids by name, and the demo entries (image and label paths)."""
    demo = [d for d in build_demo_dataset(folder) if d.name in names]
    sources = [StudySource.of_demo(d) for d in demo]
    report = import_sources(db, ImportSettings.of(settings), project, sources)
    assert not report.refused, report.refused
    return dict(zip([d.name for d in demo], report.imported, strict=True)), demo


def fetch(client: FlaskClient, url: str, headers: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    """GET, the body read and the response closed (a 304 would leave its file open)."""
    response = client.get(url, headers=headers or {})
    response.get_data()
    response.close()
    return response


def vti(response) -> VtiImage:  # type: ignore[no-untyped-def]
    """The `.vti` of a 200 answer, inflated if it came gzip-encoded."""
    assert response.status_code == 200, response.data[:300]
    body = response.get_data()
    if response.headers.get("Content-Encoding") == "gzip":
        body = gzip.decompress(body)
    return read_vti_bytes(body)
