"""The web side of the audit trail: who and from where for each request, and refusals.

`install` binds an `audit.RequestContext` for every request past the guard, so every
audit row written while handling it (by any service) carries the client address, the
user's role and the login session. `record_refusal` writes the ``access.denied`` row of
a refused route or callback in a transaction of its own, because the refused action's
transaction rolls back.
"""

from __future__ import annotations

from flask import Flask, g, request
from flask_login import current_user

from portal.services import audit
from portal.services.auth import session_key
from portal.services.errors import NotFound, PermissionDenied
from portal.web.context import portal
from portal.web.security import ALLOWED_PREFIXES

# Route arguments that name what a request is about, and the kind written in `target`.
_TARGET_ARGS = {
    "study_id": "study",
    "item_id": "review-item",
    "comment_id": "comment",
    "job_id": "job",
}


def install(app: Flask) -> None:
    """Bind the audit context for each request; call after `security.install`."""

    @app.before_request
    def bind_audit_context() -> None:
        if request.path.startswith(ALLOWED_PREFIXES):
            return  # static bundles: nothing is audited, and no session lookup is wanted
        # request.remote_addr is the peer: behind a reverse proxy that is the proxy,
        # unless the deployer wraps the app in werkzeug's ProxyFix for their proxy.
        address = request.remote_addr or ""
        if current_user.is_authenticated:
            context = audit.RequestContext(
                address=address,
                role=current_user.principal.role.value,
                # Token requests have no login session: each of their fetches is audited.
                session_key=session_key(current_user.token) if current_user.token else "",
            )
        else:
            context = audit.RequestContext(address=address, role=audit.ANONYMOUS)
        g.audit_token = audit.bind(context)

    @app.teardown_request
    def unbind_audit_context(_exc: BaseException | None) -> None:
        # Worker threads serve many requests: never let one request's context leak on.
        token = g.pop("audit_token", None)
        if token is not None:
            audit.unbind(token)


def request_target() -> str:
    """What the current API request is about, as ``kind:id`` from its route arguments."""
    args = request.view_args or {}
    for name, kind in _TARGET_ARGS.items():
        if name in args:
            return f"{kind}:{args[name]}"
    return f"route:{request.endpoint or request.path}"[:64]


def record_refusal(exc: NotFound | PermissionDenied, target: str, where: str = "") -> None:
    """Write ``access.denied`` for a refused request on `target`, in its own transaction.

    Parameters
    ----------
    exc
        The refusal; ``NotFound`` (missing or not visible) or ``PermissionDenied``.
    target
        What was asked for, as requested, e.g. ``study:12``.
    where
        The route or callback that refused; defaults to the Flask endpoint.
    """
    user_id = current_user.principal.user_id if current_user.is_authenticated else None
    reason = "not-found" if isinstance(exc, NotFound) else "forbidden"
    with portal().db.session() as s:
        audit.record_denial(s, user_id, target, f"at={where or request.endpoint} {reason}")
