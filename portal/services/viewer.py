"""What a viewer pane needs about a study: its detail, preview metadata and label surfaces."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from portal.services.auth import Principal
from portal.services.catalog import get_study, study_detail
from portal.services.store import preview_file


def pane_data(
    session: Session, principal: Principal, preview_dir: Path, study_id: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(detail, preview meta) of a study `principal` may see.

    Raises
    ------
    NotFound
        If the study is not visible to `principal`.
    """
    study = get_study(session, principal, study_id)
    meta = json.loads(preview_file(preview_dir, study.uid, "meta.json").read_text())
    return study_detail(study), meta


def label_surfaces(
    session: Session, principal: Principal, preview_dir: Path, study_id: int
) -> list[dict[str, Any]]:
    """The precomputed label surfaces (dash-vtk mesh states) of a visible study."""
    study = get_study(session, principal, study_id)
    path = preview_file(preview_dir, study.uid, "surfaces.json")
    if not path.exists():
        return []
    surfaces: list[dict[str, Any]] = json.loads(path.read_text())
    return surfaces
