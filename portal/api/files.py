"""File routes: download a study's originals (streamed zip) or a segmentation
(NIfTI / NRRD), and upload a corrected segmentation (a new version of the study)."""

from __future__ import annotations

import shutil
import uuid

from flask import Response, jsonify, request, stream_with_context

from portal.api.idempotent import idempotent
from portal.api.routes import bp
from portal.services import downloads
from portal.services.corrections import check_may_correct, import_correction
from portal.services.errors import InvalidInput, PermissionDenied
from portal.services.importer import ImportSettings
from portal.web.context import portal, principal
from portal.web.security import csrf_valid

LABEL_SUFFIXES = (".nii.gz", ".nii", ".nrrd", ".seg.nrrd", ".nhdr", ".mgz", ".mgh", ".dcm")


def _attachment(name: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{name}"'}


@bp.get("/studies/<int:study_id>/files.zip")
def study_zip(study_id: int) -> Response:
    """The study's stored original files (and label files), as a zip streamed out."""
    p = portal()
    with p.db.session() as s:
        name, entries = downloads.study_files(s, principal(), study_id, p.settings.store_dir)
    body = stream_with_context(downloads.iter_zip(entries))
    return Response(body, mimetype="application/zip", headers=_attachment(name))


@bp.get("/segmentations/<int:segmentation_id>/labels")
def segmentation_download(segmentation_id: int) -> Response:
    """`?format=nifti` (default, `.nii.gz`) or `?format=nrrd`, on the study's grid."""
    p = portal()
    fmt = request.args.get("format", "nifti")
    with p.db.session() as s:
        name, data, mimetype = downloads.segmentation_file(
            s, principal(), segmentation_id, p.settings.store_dir, fmt
        )
    return Response(data, mimetype=mimetype, headers=_attachment(name))


def _may_correct(study_id: int) -> None:
    with portal().db.session() as s:
        check_may_correct(s, principal(), study_id)


@bp.post("/studies/<int:study_id>/segmentations")
@idempotent(check=_may_correct)
def upload_correction(study_id: int) -> tuple[Response, int]:
    """Multipart field `file`: a corrected label map on the study's grid.

    201 with the new version's study id; 400 with the reason when the import checks
    refuse it (nothing is stored then).
    """
    p = portal()
    request.max_content_length = p.settings.max_upload_mb * 1024 * 1024
    if not csrf_valid(request.headers.get("X-CSRF-Token")):
        raise PermissionDenied("missing or wrong X-CSRF-Token header")
    _may_correct(study_id)  # before looking at what was sent
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise InvalidInput("send the label map as multipart field 'file'")
    name = downloads.safe_name(upload.filename, "labels")
    if not name.lower().endswith(LABEL_SUFFIXES):
        raise InvalidInput(f"{name}: send a NIfTI, NRRD, MGH or DICOM SEG label map")
    staging = p.settings.data_dir / "uploads" / uuid.uuid4().hex
    staging.mkdir(parents=True)
    try:
        path = staging / name
        upload.save(path)
        settings = ImportSettings.of(p.settings)
        report = import_correction(p.db, settings, principal(), study_id, path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    if report.refused:
        raise InvalidInput("; ".join(f"{name}: {reason}" for _, reason in report.refused))
    if not report.imported:
        raise InvalidInput(f"{name}: the study already has exactly this segmentation")
    return jsonify(study_id=report.imported[0], notes=[n for _, n in report.notes]), 201
