"""A corrected segmentation, uploaded for an existing study, becomes the study's next
version: the stored image plus the new label map go through the normal import, with
all its checks (grid, label values, size), previews and versioning."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.orm import Session

from portal.db.models import ProjectRole, Study
from portal.db.session import Database
from portal.services.auth import Principal
from portal.services.catalog import get_study, project_role
from portal.services.discovery import StudySource
from portal.services.errors import Conflict, InvalidInput, PermissionDenied
from portal.services.importer import ImportReport, ImportSettings, import_study

_EDITORS = {ProjectRole.REVIEWER, ProjectRole.EXPERT, ProjectRole.LEAD}


def check_may_correct(session: Session, principal: Principal, study_id: int) -> Study:
    """The study, if `principal` may upload a corrected segmentation for it.

    Raises
    ------
    NotFound
        If the study is not visible to `principal`.
    PermissionDenied
        For viewers.
    Conflict
        If the study already has a newer version (correct that one instead).
    """
    study = get_study(session, principal, study_id)
    if project_role(session, principal, study.project_id) not in _EDITORS:
        raise PermissionDenied("viewers cannot upload segmentations")
    if study.superseded_at is not None:
        raise Conflict(f"study {study.id} has a newer version: correct that one")
    if not study.volumes:
        raise InvalidInput(f"study {study.id} has no stored image")
    return study


def import_correction(
    db: Database,
    settings: ImportSettings,
    principal: Principal,
    study_id: int,
    label_path: Path,
) -> ImportReport:
    """Import `label_path` as the corrected segmentation of a study (a new version).

    The segmentation is named after the file (``liver-fixed.nii.gz`` -> ``liver-fixed``).

    Returns
    -------
    ImportReport
        `imported` holds the new version's study id; `refused` the file and reason when
        the label map does not fit the study (the catalog and store are then unchanged).

    Raises
    ------
    NotFound, PermissionDenied, Conflict
        As `check_may_correct`.
    """
    with db.session() as s:
        study = check_may_correct(s, principal, study_id)
        volume = study.volumes[0]
        source = StudySource(
            name=study.name,
            image_paths=tuple(settings.store_dir / f for f in volume.files),
            kind=volume.format,
            label_path=label_path,
            modality=study.modality,
            series_uid=volume.series_uid,
            lineage=study.lineage,
        )
        project = study.project.name
    return import_study(db, settings, project, source, principal.user_id)
