"""Full-resolution 2D slices for the viewer, cut on request from the study's canonical
volume (values in real units, or a segmentation's RGBA colours), on the preview's grid."""

from __future__ import annotations

import isal.igzip
from flask import Response, request

from portal.api.routes import bp
from portal.services import slices
from portal.services.errors import InvalidInput
from portal.web.context import portal, principal

#: Compressed per request, so a fast level: a 512x512 int16 slice takes a few ms.
GZIP_LEVEL = 1


def _segmentation_arg() -> int | None:
    raw = request.args.get("segmentation")
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError as exc:
        raise InvalidInput("segmentation must be a segmentation id (an integer)") from exc


def _slice(
    study_id: int, axis: str, index: int, kind: slices.SliceKind, segmentation_id: int | None
) -> Response:
    p = portal()
    with p.db.session() as s:
        target = slices.open_slice(
            s, principal(), p.settings.preview_dir, study_id, axis, index, kind, segmentation_id
        )
        if request.if_none_match.contains(target.etag):
            response = Response(status=304)
        else:
            body = slices.slice_vti(
                target, p.settings.store_dir, p.settings.preview_dir, p.settings.max_voxels
            )
            if "gzip" in request.headers.get("Accept-Encoding", ""):
                body = isal.igzip.compress(body, GZIP_LEVEL, mtime=0)
                response = Response(body, mimetype="application/octet-stream")
                response.headers["Content-Encoding"] = "gzip"
            else:
                response = Response(body, mimetype="application/octet-stream")
    response.set_etag(target.etag)
    response.headers["Vary"] = "Accept-Encoding"
    # A study uid's slices never change; private because they are patient images.
    response.headers["Cache-Control"] = "private, max-age=86400"
    return response


@bp.get("/studies/<int:study_id>/slices/<axis>/<int:index>/values.vti")
def slice_values(study_id: int, axis: str, index: int) -> Response:
    """One full-resolution slice in real units (`axial`, `coronal` or `sagittal`)."""
    return _slice(study_id, axis, index, slices.SliceKind.VALUES, None)


@bp.get("/studies/<int:study_id>/slices/<axis>/<int:index>/labels.vti")
def slice_labels(study_id: int, axis: str, index: int) -> Response:
    """One full-resolution slice of a segmentation (`?segmentation=<id>`, default the
    study's first) as RGBA, on the grid of the values slice."""
    return _slice(study_id, axis, index, slices.SliceKind.LABELS, _segmentation_arg())
