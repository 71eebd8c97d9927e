"""One JSON shape for every API error: `{"error": "<message>", "code": "<stable_code>"}`.

The message is for people and may change; the code is for programs and does not. Every
status an `/api/` route can answer with maps to a code here, including Werkzeug's own
404/405/413 (no route, wrong method, body too large) and unexpected failures, which answer
500 `internal` without a traceback (the traceback goes to the server log only).
"""

from __future__ import annotations

import logging
import traceback
from types import TracebackType

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException, InternalServerError, MethodNotAllowed, NotFound
from werkzeug.routing import IntegerConverter

log = logging.getLogger(__name__)

API_PREFIX = "/api/"
# Ids are 32-bit INTEGER columns on PostgreSQL (and SQLite cannot bind more than 64 bits):
# a larger number cannot name anything, so it must be a 404/400, never a database error.
MAX_DB_INT = 2**31 - 1


class DbIntConverter(IntegerConverter):
    """`<int:...>` in URLs, limited to what an id column can hold (else no route: 404)."""

    def __init__(self, map: object, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("max", MAX_DB_INT)
        super().__init__(map, *args, **kwargs)  # type: ignore[arg-type]


# The stable code of each status; routes may pass a more specific one (invalid_token, ...).
CODES = {
    400: "invalid",
    401: "login_required",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    422: "idempotency_mismatch",
    429: "too_many_requests",
    500: "internal",
    502: "pacs_unavailable",
}


def error_response(status: int, message: str, code: str | None = None) -> Response:
    """The API's error body with `status`; `code` defaults to the status's stable code."""
    response = jsonify(error=message, code=code or CODES.get(status, "error"))
    response.status_code = status
    return response


def install_converters(app: Flask) -> None:
    """Bound `<int:...>` URL parts; call before any blueprint is registered."""
    app.url_map.converters["int"] = DbIntConverter


ExcInfo = tuple[type[BaseException], BaseException, TracebackType] | tuple[None, None, None]


def install(app: Flask) -> None:
    """Answer Werkzeug's HTTP errors and unexpected exceptions on `/api/` paths as JSON."""
    flask_log_exception = app.log_exception

    def log_exception(exc_info: ExcInfo) -> None:
        # Flask logs the exception's message, and messages can carry request data (a
        # database error quotes its parameters: a searched patient name). API failures
        # are logged with the type and the stack only.
        kind, _, tb = exc_info
        if kind is None or not request.path.startswith(API_PREFIX):
            flask_log_exception(exc_info)
            return
        log.error(
            "internal error on %s %s: %s (message withheld)\n%s",
            request.method,
            request.url_rule,
            kind.__name__,
            "".join(traceback.format_tb(tb)),
        )

    app.log_exception = log_exception  # type: ignore[method-assign]

    @app.before_request
    def _api_paths_are_api_routes() -> None:
        # Dash's catch-all page route would answer an unknown /api/ path with the app's
        # HTML and 200; a client must get the API's 404 instead.
        if not request.path.startswith(API_PREFIX) or (request.blueprint or "").startswith("api"):
            return
        adapter = app.url_map.bind_to_environ(request.environ)
        allowed = []
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
            try:
                rule, _ = adapter.match(method=method, return_rule=True)
            except HTTPException:
                continue
            if rule.endpoint.startswith("api"):
                allowed.append(method)
        if allowed:
            raise MethodNotAllowed(valid_methods=allowed)
        raise NotFound("no such API route")

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response | HTTPException:
        if not request.path.startswith(API_PREFIX):
            return exc  # pages keep Werkzeug's own HTML error pages
        status = exc.code or 500
        if isinstance(exc, InternalServerError):
            # Logged by `log_exception` above; the client learns nothing of the cause.
            return error_response(500, "internal error; the server log has the details")
        if status == 405:
            allowed = ", ".join(sorted(exc.valid_methods or []))  # type: ignore[attr-defined]
            return error_response(405, f"method not allowed here; use {allowed}")
        message = (exc.description or exc.name).strip()
        return error_response(status, message)
