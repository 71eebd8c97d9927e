"""REST routes of the review workflow: items, reads, transitions, comments, assignments.

Writes need the page's `X-CSRF-Token` header (cookie sessions) and carry the item
`version` the client saw; a stale version answers 409 with the reason.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Response, jsonify, request

from portal.api.errors import error_response
from portal.api.idempotent import idempotent
from portal.api.routes import bp, checked_int
from portal.db.models import ReviewStatus
from portal.services import assignments, comments, review, review_view
from portal.services.errors import Conflict, InvalidInput, PermissionDenied
from portal.web.context import portal, principal
from portal.web.security import csrf_valid


@bp.errorhandler(Conflict)
def _conflict(exc: Conflict) -> tuple[Response, int]:
    return error_response(409, str(exc)), 409


def _body() -> dict[str, Any]:
    if not csrf_valid(request.headers.get("X-CSRF-Token")):
        raise PermissionDenied("missing or wrong X-CSRF-Token header")
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise InvalidInput("send a JSON object")
    return body


def _status(body: dict[str, Any], field: str) -> ReviewStatus:
    try:
        return ReviewStatus(str(body.get(field, "")))
    except ValueError as exc:
        raise InvalidInput(
            f"{field} must be one of " + ", ".join(s.value for s in ReviewStatus)
        ) from exc


def _version(body: dict[str, Any]) -> int:
    value = body.get("version")
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidInput("send the item's version you saw (integer field 'version')")
    return checked_int("version", value)


def _opt_int(body: dict[str, Any], field: str) -> int | None:
    value = body.get(field)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidInput(f"{field} must be an integer")
    return checked_int(field, value)


def _review(study_id: int) -> Response:
    p = portal()
    with p.db.session() as s:
        return jsonify(review_view.study_review(s, principal(), study_id, p.settings.store_dir))


@bp.get("/studies/<int:study_id>/review")
def study_review(study_id: int) -> Response:
    """The study's review items with state, version, history, reads and comments."""
    return _review(study_id)


@bp.post("/review-items/<int:item_id>/reads")
def submit_read(item_id: int) -> Response:
    """`{"verdict", "version", "note"?, "label_verdicts"?, "segmentation_id"?}`."""
    body = _body()
    labels = body.get("label_verdicts") or {}
    if not isinstance(labels, dict):
        raise InvalidInput("label_verdicts must map label values to verdicts")
    p = portal()
    with p.db.session() as s:
        item = review.submit_read(
            s,
            principal(),
            item_id,
            _status(body, "verdict"),
            str(body.get("note") or ""),
            labels,
            _version(body),
            _opt_int(body, "segmentation_id"),
            p.settings.store_dir,
        )
        study_id = item.study_id
    return _review(study_id)


@bp.post("/review-items/<int:item_id>/transitions")
def transition(item_id: int) -> Response:
    """`{"to", "version", "reason"?}`: start, escalate, resolve or reopen."""
    body = _body()
    with portal().db.session() as s:
        item = review.transition(
            s,
            principal(),
            item_id,
            _status(body, "to"),
            str(body.get("reason") or ""),
            _version(body),
        )
        study_id = item.study_id
    return _review(study_id)


@bp.post("/review-items/<int:item_id>/comments")
@idempotent
def comment(item_id: int) -> tuple[Response, int]:
    """`{"body", "parent_id"?, "anchor"?: {"world_mm": [x, y, z], "slice_index", "axis",
    "label_value"}}`."""
    body = _body()
    anchor = None
    raw = body.get("anchor")
    if raw is not None:
        if not isinstance(raw, dict):
            raise InvalidInput("anchor must be an object")
        world = raw.get("world_mm")
        if (
            not isinstance(world, list)
            or len(world) != 3
            or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in world)
        ):
            raise InvalidInput("anchor.world_mm must be three numbers (RAS mm)")
        anchor = comments.Anchor(
            world_mm=(float(world[0]), float(world[1]), float(world[2])),
            slice_index=_opt_int(raw, "slice_index"),
            axis=str(raw.get("axis") or "axial"),
            label_value=_opt_int(raw, "label_value"),
        )
    with portal().db.session() as s:
        c = comments.add_comment(
            s,
            principal(),
            item_id,
            str(body.get("body") or ""),
            anchor,
            _opt_int(body, "parent_id"),
        )
        return jsonify(id=c.id, parent_id=c.parent_id), 201


@bp.post("/comments/<int:comment_id>/resolve")
def resolve(comment_id: int) -> Response:
    _body()
    with portal().db.session() as s:
        c = comments.resolve_comment(s, principal(), comment_id)
        return jsonify(id=c.id, resolved=c.resolved_at is not None)


def _due(body: dict[str, Any]) -> datetime | None:
    raw = body.get("due")
    if not raw:
        return None
    try:
        due = datetime.fromisoformat(str(raw))
    except ValueError as exc:
        raise InvalidInput("due must be an ISO date, e.g. 2026-12-31") from exc
    return due if due.tzinfo else due.replace(tzinfo=UTC)


@bp.post("/assignments")
@idempotent
def assign() -> Response:
    """`{"studies": [ids], "assignee_id", "due"?, "replace_id"?}` (project leads)."""
    body = _body()
    ids = body.get("studies")
    if not isinstance(ids, list) or not ids or not all(isinstance(i, int) for i in ids):
        raise InvalidInput("studies must be a non-empty list of study ids")
    ids = [checked_int("studies", i) for i in ids]
    assignee = _opt_int(body, "assignee_id")
    if assignee is None:
        raise InvalidInput("say who gets the studies (assignee_id)")
    with portal().db.session() as s:
        made = assignments.assign(
            s, principal(), ids, assignee, _due(body), _opt_int(body, "replace_id")
        )
        return jsonify(assigned=[a.study_id for a in made])


@bp.delete("/studies/<int:study_id>/assignments/<int:user_id>")
def unassign(study_id: int, user_id: int) -> Response:
    if not csrf_valid(request.headers.get("X-CSRF-Token")):
        raise PermissionDenied("missing or wrong X-CSRF-Token header")
    with portal().db.session() as s:
        return jsonify(ended=assignments.unassign(s, principal(), study_id, user_id))
