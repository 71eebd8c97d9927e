"""The live channel: push a grid of studies to a user's open tabs; what a tab shows.

Scripts call these with `Authorization: Bearer`; tabs (`assets/live.js`) with their
session cookie and, for writes, the `X-CSRF-Token` header.
"""

from __future__ import annotations

from flask import Response, jsonify, request

from portal.api.errors import MAX_DB_INT
from portal.api.routes import bp
from portal.services import live
from portal.services.errors import InvalidInput, PermissionDenied
from portal.web.context import portal, principal
from portal.web.security import csrf_valid


def _csrf() -> None:
    if not csrf_valid(request.headers.get("X-CSRF-Token")):
        raise PermissionDenied("missing or wrong X-CSRF-Token header")


@bp.post("/sessions/me/open")
def live_open_mine() -> tuple[Response, int]:
    """`{"studies": [ids], "layout": "3x3", "state": {"mode", "slice_mm"}}` -> 201."""
    _csrf()
    with portal().db.session() as s:
        return jsonify(live.open_studies(s, principal(), request.get_json(silent=True))), 201


@bp.post("/sessions/<int:user_id>/open")
def live_open_for(user_id: int) -> tuple[Response, int]:
    """The same for another user's tabs: administrators only, audited with both ids."""
    _csrf()
    body = request.get_json(silent=True)
    with portal().db.session() as s:
        return jsonify(live.open_studies(s, principal(), body, user_id=user_id)), 201


@bp.get("/sessions/me/commands")
def live_commands() -> Response:
    """Commands above `after` (what tabs poll); without `after` only the newest id."""
    raw = request.args.get("after")
    try:
        after = int(raw) if raw not in (None, "") else None
    except ValueError as exc:
        raise InvalidInput("after must be a command id") from exc
    if after is not None and not 0 <= after <= MAX_DB_INT:
        raise InvalidInput(f"after must be a command id from 0 to {MAX_DB_INT}")
    with portal().db.session() as s:
        return jsonify(live.pending(s, principal(), after))


@bp.put("/sessions/me/state")
def live_report_state() -> Response:
    _csrf()
    with portal().db.session() as s:
        return jsonify(live.report_state(s, principal(), request.get_json(silent=True)))


@bp.get("/sessions/me/state")
def live_state() -> Response:
    """What the user's most recently reporting tab shows; `{"state": null}` if none."""
    with portal().db.session() as s:
        return jsonify(state=live.current_state(s, principal()))
