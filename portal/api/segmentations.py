"""`POST /studies/<id>/segmentations/attach`: add a label map to an existing study.

The study keeps its version (a corrected upload to `/studies/<id>/segmentations` makes a
new one instead): the label map joins the study's segmentations, with its own review item.
"""

from __future__ import annotations

from flask import Response, jsonify, request
from werkzeug.exceptions import RequestEntityTooLarge

from portal.api.errors import error_response
from portal.api.idempotent import idempotent
from portal.api.routes import bp
from portal.services import segmentation_add
from portal.services.errors import InvalidInput, PermissionDenied
from portal.web.context import portal, principal
from portal.web.security import csrf_valid


def _may_add(study_id: int) -> None:
    with portal().db.session() as s:
        segmentation_add.check_may_add(s, principal(), study_id)


@bp.post("/studies/<int:study_id>/segmentations/attach")
@idempotent(check=_may_add)
def attach_segmentation(study_id: int) -> tuple[Response, int]:
    """Multipart `file` (a label map on the study's grid) and `name` (optional).

    201 with the segmentation; 400 naming the file and the reason when it is refused
    (nothing is stored then); 409 when the study already holds exactly these bytes.
    """
    p = portal()
    limit = p.settings.max_segmentation_mb * 1024 * 1024
    # The form around the file is small; a larger body is refused before it is read.
    request.max_content_length = limit + 64 * 1024
    if not csrf_valid(request.headers.get("X-CSRF-Token")):
        raise PermissionDenied("missing or wrong X-CSRF-Token header")
    _may_add(study_id)  # before looking at what was sent
    try:
        upload = request.files.get("file")
    except RequestEntityTooLarge:
        mb = p.settings.max_segmentation_mb
        message = f"the label map is over {mb} MiB (PORTAL_MAX_SEGMENTATION_MB)"
        return error_response(413, message), 413
    if upload is None or not upload.filename:
        raise InvalidInput("send the label map as multipart field 'file'")
    data = upload.stream.read(limit + 1)
    with p.db.session() as s:
        segmentation = segmentation_add.add_segmentation(
            s,
            principal(),
            p.settings.store_dir,
            p.settings.preview_dir,
            study_id,
            upload.filename,
            data,
            request.form.get("name", ""),
            max_bytes=limit,
            max_voxels=p.settings.max_voxels,
        )
        return jsonify(segmentation_add.segmentation_json(segmentation)), 201
