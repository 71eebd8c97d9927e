"""REST routes for remote archives: list sources, search one, import studies from it."""

from __future__ import annotations

import uuid

from flask import Response, jsonify, request

from portal.api.errors import error_response
from portal.api.idempotent import idempotent
from portal.api.routes import bp
from portal.services import catalog, jobs, pacs
from portal.services.errors import InvalidInput, PermissionDenied
from portal.web.context import portal, principal
from portal.web.security import csrf_valid


@bp.errorhandler(pacs.PacsError)
def _pacs_failed(exc: pacs.PacsError) -> tuple[Response, int]:
    return error_response(502, str(exc)), 502


@bp.get("/pacs")
def sources() -> Response:
    """Configured archives by name and kind (never their URLs or credentials)."""
    found = pacs.parse_sources(portal().settings.pacs_sources)
    return jsonify(items=[{"name": s.name, "kind": s.kind} for s in found.values()])


@bp.get("/pacs/<source>/studies")
def search(source: str) -> Response:
    """QIDO-style search: `patient_name`, `patient_id`, `study_date`, `modality`,
    `accession`, `description` (`*` and `?` wildcards), `limit`."""
    where = pacs.StudyFilter(**{k: request.args.get(k, "") for k in pacs.FILTER_FIELDS})
    try:
        limit = int(request.args.get("limit", "100"))
    except ValueError as exc:
        raise InvalidInput("limit must be a whole number") from exc
    p = portal()
    with p.db.session() as s:
        found = pacs.search_audited(s, principal(), p.settings.pacs_sources, source, where, limit)
    return jsonify(items=[st.as_dict() for st in found])


@bp.post("/pacs/<source>/imports")
@idempotent
def start_import(source: str) -> tuple[Response, int]:
    """`{"project", "studies": [StudyInstanceUID, ...], "resample_labels"?}` -> 202 job."""
    if not csrf_valid(request.headers.get("X-CSRF-Token")):
        raise PermissionDenied("missing or wrong X-CSRF-Token header")
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise InvalidInput("send a JSON object")
    p = portal()
    who = principal()
    pacs.source_named(pacs.parse_sources(p.settings.pacs_sources), source)
    project = str(body.get("project") or "").strip()
    uids = body.get("studies")
    if not project:
        raise InvalidInput("say which project to import into (field 'project')")
    if not isinstance(uids, list) or not all(isinstance(u, str) for u in uids):
        raise InvalidInput("studies must be a list of StudyInstanceUIDs")
    with p.db.session() as s:
        jobs.may_import(who, project, catalog.visible_project_names(s, who))
    staging = p.settings.data_dir / "uploads" / uuid.uuid4().hex
    job_id = jobs.create_pacs_job(
        p.db,
        project,
        source,
        uids,
        who.user_id,
        staging,
        resample_labels=bool(body.get("resample_labels")),
    )
    p.queue.enqueue_import(job_id)
    return jsonify(jobs.get_job(p.db, who, job_id)), 202
