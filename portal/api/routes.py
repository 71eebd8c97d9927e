"""REST API v1: JSON in and out, session-cookie auth; every study route re-checks access."""

from __future__ import annotations

import gzip
import shutil
import uuid
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, abort, jsonify, request, send_file
from werkzeug.utils import secure_filename

from portal.api.errors import MAX_DB_INT, error_response
from portal.api.idempotent import idempotent
from portal.services import catalog, jobs, viewer
from portal.services.errors import IdempotencyMismatch, InvalidInput, NotFound, PermissionDenied
from portal.services.store import preview_file
from portal.web.auditing import record_refusal, request_target
from portal.web.context import portal, principal
from portal.web.security import csrf_valid

bp = Blueprint("api", __name__, url_prefix="/api/v1")

PREVIEW_TYPES = {
    "image.vti": "application/octet-stream",
    "values.vti": "application/octet-stream",
    "labels.vti": "application/octet-stream",
    "thumb.png": "image/png",
    "mosaic.png": "image/png",
}


@bp.errorhandler(NotFound)
def _not_found(exc: NotFound) -> tuple[Response, int]:
    record_refusal(exc, request_target())
    return error_response(404, str(exc)), 404


@bp.errorhandler(InvalidInput)
def _invalid(exc: InvalidInput) -> tuple[Response, int]:
    return error_response(400, str(exc)), 400


@bp.errorhandler(IdempotencyMismatch)
def _mismatch(exc: IdempotencyMismatch) -> tuple[Response, int]:
    return error_response(422, str(exc)), 422


@bp.errorhandler(PermissionDenied)
def _denied(exc: PermissionDenied) -> tuple[Response, int]:
    record_refusal(exc, request_target())
    return error_response(403, str(exc)), 403


@bp.get("/health")
def health() -> Response:
    return jsonify(status="ok")


def _int_arg(name: str, default: int) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise InvalidInput(f"{name} must be an integer") from exc
    return checked_int(name, value)


def checked_int(name: str, value: int) -> int:
    """`value` if a database integer column can hold it, else InvalidInput naming `name`."""
    if abs(value) > MAX_DB_INT:
        raise InvalidInput(f"{name} is out of range")
    return value


def _queue(raw: str) -> catalog.Queue:
    try:
        return catalog.Queue(raw)
    except ValueError as exc:
        raise InvalidInput("queue must be one of mine, expert, overdue") from exc


def _sort() -> catalog.SortKey:
    try:
        return catalog.SortKey(request.args.get("sort", "id"))
    except ValueError as exc:
        keys = ", ".join(k.value for k in catalog.SortKey)
        raise InvalidInput(f"sort must be one of {keys}") from exc


def _bool_arg(name: str) -> bool:
    raw = request.args.get(name, "").lower()
    if raw in ("", "0", "false", "no"):
        return False
    if raw in ("1", "true", "yes"):
        return True
    raise InvalidInput(f"{name} must be true or false")


@bp.get("/studies")
def studies() -> Response:
    """The case list: its filters, `sort`/`desc`, and `offset` or keyset `after` paging."""
    query = catalog.StudyQuery(
        search=request.args.get("q", ""),
        modality=request.args.get("modality", ""),
        status=request.args.get("status", ""),
        project=request.args.get("project", ""),
        queue=_queue(request.args.get("queue", "")),
        sort=_sort(),
        descending=_bool_arg("desc"),
        offset=_int_arg("offset", 0),
        limit=_int_arg("limit", 50),
        after=request.args.get("after", ""),
    )
    with portal().db.session() as s:
        page = catalog.list_studies(s, principal(), query)
    body: dict[str, Any] = {
        "items": page.items,
        "total": page.total,
        "offset": query.offset,
        "limit": query.limit,
        "next_cursor": page.next_cursor,
    }
    return jsonify(body)


@bp.get("/studies/<int:study_id>")
def study(study_id: int) -> Response:
    with portal().db.session() as s:
        return jsonify(catalog.study_detail(catalog.open_study(s, principal(), study_id, "detail")))


@bp.get("/studies/<int:study_id>/preview/<name>")
def preview(study_id: int, name: str) -> Response:
    """Binary preview files for the viewer panes, gzip on the wire, cacheable per study.

    The `.vti` files are stored gzip-compressed (made once at import) and sent as-is with
    `Content-Encoding: gzip`, so the browser inflates them off the main thread.
    `values.vti` (real units, HU for CT) of a study imported before it existed is made
    from the stored original on first request.
    """
    if name not in PREVIEW_TYPES:
        abort(404)
    p = portal()
    if name == "values.vti":
        with p.db.session() as s:
            path = viewer.values_preview(
                s,
                principal(),
                p.settings.store_dir,
                p.settings.preview_dir,
                study_id,
                max_voxels=p.settings.max_voxels,
            )
        return _gzip_file_response(path, PREVIEW_TYPES[name])
    with p.db.session() as s:
        uid = catalog.open_study(s, principal(), study_id, f"preview:{name}").uid
    stored = name + ".gz" if name.endswith(".vti") else name
    path = preview_file(p.settings.preview_dir, uid, stored)
    if not path.exists():
        abort(404)
    if stored.endswith(".gz"):
        if "gzip" in request.headers.get("Accept-Encoding", ""):
            response = send_file(path, mimetype=PREVIEW_TYPES[name], conditional=True)
            response.headers["Content-Encoding"] = "gzip"
        else:
            response = Response(gzip.decompress(path.read_bytes()), mimetype=PREVIEW_TYPES[name])
        response.headers["Vary"] = "Accept-Encoding"
    else:
        response = send_file(path, mimetype=PREVIEW_TYPES[name], conditional=True)
    # Previews of a study uid never change; private because they are patient images.
    response.headers["Cache-Control"] = "private, max-age=86400"
    return response


@bp.get("/studies/<int:study_id>/volumes/<int:index>/image.vti")
def volume_image(study_id: int, index: int) -> Response:
    """Volume `index` of a 4-D study as a gzip `.vti` (made on first request, then cached)."""
    p = portal()
    with p.db.session() as s:
        path = viewer.volume_preview(
            s,
            principal(),
            p.settings.store_dir,
            p.settings.preview_dir,
            study_id,
            index,
            max_dim=p.settings.preview_max_dim,
            max_voxels=p.settings.max_voxels,
        )
    return _gzip_file_response(path, PREVIEW_TYPES["image.vti"])


@bp.get("/studies/<int:study_id>/volumes/<int:index>/values.vti")
def volume_values(study_id: int, index: int) -> Response:
    """Volume `index` of a study in real units as a gzip `.vti` (made on first request)."""
    p = portal()
    with p.db.session() as s:
        path = viewer.values_preview(
            s,
            principal(),
            p.settings.store_dir,
            p.settings.preview_dir,
            study_id,
            index,
            max_voxels=p.settings.max_voxels,
        )
    return _gzip_file_response(path, PREVIEW_TYPES["values.vti"])


SEGMENTATION_PREVIEWS = {"labels.vti": "labels.vti.gz", "surfaces.json": "surfaces.json"}


@bp.get("/studies/<int:study_id>/segmentations/<int:segmentation_id>/<name>")
def segmentation_preview(study_id: int, segmentation_id: int, name: str) -> Response:
    """One segmentation's RGBA label preview (`labels.vti`) or label meshes (`surfaces.json`)
    on the study's preview grid; made on first request for all but the first."""
    if name not in SEGMENTATION_PREVIEWS:
        abort(404)
    p = portal()
    with p.db.session() as s:
        path = viewer.segmentation_preview(
            s,
            principal(),
            p.settings.store_dir,
            p.settings.preview_dir,
            study_id,
            segmentation_id,
            SEGMENTATION_PREVIEWS[name],
        )
    if name == "labels.vti":
        return _gzip_file_response(path, PREVIEW_TYPES["labels.vti"])
    response = send_file(path, mimetype="application/json", conditional=True)
    response.headers["Cache-Control"] = "private, max-age=86400"
    return response


def _gzip_file_response(path: Path, mimetype: str) -> Response:
    """A stored `.gz` file sent as-is with Content-Encoding gzip (inflated if not accepted)."""
    if "gzip" in request.headers.get("Accept-Encoding", ""):
        response = send_file(path, mimetype=mimetype, conditional=True)
        response.headers["Content-Encoding"] = "gzip"
    else:
        response = Response(gzip.decompress(path.read_bytes()), mimetype=mimetype)
    response.headers["Vary"] = "Accept-Encoding"
    # A study uid's previews never change; private because they are patient images.
    response.headers["Cache-Control"] = "private, max-age=86400"
    return response


MAX_UPLOAD_DEPTH = 16


def _upload_path(filename: str, index: int) -> Path:
    """A safe relative path for an uploaded file that keeps its folders.

    Browsers send a dropped folder's files as `folder/sub/name`; the folders matter (a
    label map pairs with the image beside it, and `patient1/case` is not `patient2/case`).
    Every part is reduced to a plain name, so `..`, absolute paths and drive letters
    cannot leave the staging folder.
    """
    parts = [secure_filename(part) for part in filename.replace("\\", "/").split("/")]
    parts = [part for part in parts if part][-MAX_UPLOAD_DEPTH:]
    return Path(*parts) if parts else Path(f"file-{index}")


@bp.post("/imports")
@idempotent
def create_import() -> tuple[Response, int]:
    """Upload files (multipart field `files`, plus `project`) and queue their import.

    Files stream to a staging folder on disk (Werkzeug spools parts over 500 kB to disk),
    bounded by `PORTAL_MAX_UPLOAD_MB` for the whole request. Answers 202 with the job.
    """
    p = portal()
    request.max_content_length = p.settings.max_upload_mb * 1024 * 1024
    if not csrf_valid(request.headers.get("X-CSRF-Token")):
        # Cookie-authenticated writes need the page's token, so another site cannot post.
        raise PermissionDenied("missing or wrong X-CSRF-Token header")
    who = principal()
    project = (request.form.get("project") or "").strip()
    if not project:
        raise InvalidInput("say which project to import into (field 'project')")
    uploads = request.files.getlist("files")
    if not uploads:
        raise InvalidInput("no files uploaded (multipart field 'files')")
    with p.db.session() as s:
        jobs.may_import(who, project, catalog.visible_project_names(s, who))
    staging = p.settings.data_dir / "uploads" / uuid.uuid4().hex
    staging.mkdir(parents=True)
    resample = request.form.get("resample_labels", "").lower() in ("1", "true", "on", "yes")
    try:
        for index, upload in enumerate(uploads):
            target = staging / _upload_path(upload.filename or "", index)
            if target.exists():  # same name twice: keep both, apart
                target = staging / f"dup-{index}" / target.relative_to(staging)
            target.parent.mkdir(parents=True, exist_ok=True)
            upload.save(target)
        job_id = jobs.create_job(
            p.db, project, [staging], who.user_id, staging_dir=staging, resample_labels=resample
        )
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    p.queue.enqueue_import(job_id)
    return jsonify(jobs.get_job(p.db, who, job_id)), 202


@bp.get("/imports")
def import_list() -> Response:
    """The newest import jobs of the caller (an admin sees everyone's), newest first."""
    try:
        limit = int(request.args.get("limit", "20"))
    except ValueError as exc:
        raise InvalidInput("limit must be a whole number") from exc
    return jsonify({"items": jobs.list_jobs(portal().db, principal(), limit)})


@bp.get("/imports/<int:job_id>")
def import_status(job_id: int) -> Response:
    return jsonify(jobs.get_job(portal().db, principal(), job_id))
