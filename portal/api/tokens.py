"""Personal access tokens: list, create (shown once), revoke — from a browser session."""

from __future__ import annotations

from flask import Response, jsonify, request

from portal.api.idempotent import idempotent
from portal.api.routes import bp
from portal.services import tokens
from portal.services.errors import InvalidInput, PermissionDenied
from portal.web.context import portal, principal
from portal.web.security import csrf_valid, via_token


def _session_only() -> None:
    # A token cannot mint or revoke tokens: a stolen one must not outlive its revocation.
    if via_token():
        raise PermissionDenied("manage tokens from a signed-in browser session")
    if request.method != "GET" and not csrf_valid(request.headers.get("X-CSRF-Token")):
        raise PermissionDenied("missing or wrong X-CSRF-Token header")


@bp.get("/tokens")
def token_list() -> Response:
    _session_only()
    with portal().db.session() as s:
        return jsonify(items=tokens.list_tokens(s, principal()))


@bp.post("/tokens")
@idempotent
def token_create() -> tuple[Response, int]:
    """`{"name", "scopes": ["read", "review"], "days": 90}` -> 201 with `token` (once)."""
    _session_only()
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise InvalidInput("send a JSON object")
    days = body.get("days", 90)
    if not isinstance(days, int) or isinstance(days, bool):
        raise InvalidInput("days must be a whole number")
    scopes = body.get("scopes", ["read"])
    if not isinstance(scopes, list | str):
        raise InvalidInput("scopes must be a list such as ['read', 'review']")
    with portal().db.session() as s:
        row, token = tokens.create_token(
            s, principal(), str(body.get("name") or ""), tokens.parse_scopes(scopes), days
        )
        return jsonify({**tokens.token_view(row), "token": token}), 201


@bp.delete("/tokens/<int:token_id>")
def token_revoke(token_id: int) -> Response:
    _session_only()
    with portal().db.session() as s:
        tokens.revoke_token(s, principal(), token_id)
        return jsonify(revoked=token_id)
