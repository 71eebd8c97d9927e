"""The server-side guard: every request needs a live login unless it is on ALLOWLIST.

ALLOWLIST (anonymous access), and nothing else:
- `GET`/`POST /login` – the sign-in form;
- `GET /api/v1/health` – liveness probe, no data;
- `GET /assets/...` – our CSS and client-side JavaScript, no data;
- `GET /_dash-component-suites/...` – the JavaScript bundles of Dash and its components.
Everything else – Dash's `/_dash-layout`, `/_dash-dependencies`, `/_dash-update-component`,
every page and every API route – answers 401 (JSON routes) or redirects to `/login`.

Cross-site request forgery. The session cookie is `SameSite=Lax`, so browsers do not send
it with cross-site POSTs. On top of that every write needs the session's CSRF token back:
forms in a hidden field, the REST API in the `X-CSRF-Token` header, and Dash callbacks
(POSTs to `/_dash-update-component`, which change data: flags, admin actions) in the same
header. Dash's renderer copies the `portal_csrf` cookie, which only same-origin script can
read, into that header on every callback; the guard answers 403 without it.
"""

from __future__ import annotations

import hmac
import secrets
from datetime import timedelta
from urllib.parse import urlsplit

from flask import Flask, Response, g, redirect, request, session, url_for
from flask.sessions import SecureCookieSessionInterface
from flask_login import LoginManager, current_user

from portal.api.errors import error_response
from portal.services import tokens
from portal.services.auth import Principal, resolve_session
from portal.web.context import LoginUser, portal

ALLOWED_EXACT = {("GET", "/login"), ("POST", "/login"), ("GET", "/api/v1/health")}
ALLOWED_PREFIXES = ("/assets/", "/_dash-component-suites/")
JSON_PREFIXES = ("/api/", "/_dash-", "/_reload-hash")
# Dash's renderer sends the value of this cookie in this header with every callback.
CSRF_COOKIE = "portal_csrf"
CSRF_HEADER = "X-CSRF-Token"
# Query parameters under which clients commonly put tokens; refused outright, because
# URLs end up in logs, browser history and Referer headers.
QUERY_TOKEN_NAMES = frozenset({"access_token", "token", "api_key", "apikey", "private_token"})
# Requests a tab makes on its own (the live channel's poll): they must not count as
# activity, or an open tab would keep an unattended session alive past its idle timeout.
BACKGROUND_REQUESTS = frozenset({("GET", "/api/v1/sessions/me/commands")})


def is_allowlisted(method: str, path: str) -> bool:
    method = "GET" if method == "HEAD" else method
    if (method, path) in ALLOWED_EXACT:
        return True
    return method == "GET" and path.startswith(ALLOWED_PREFIXES) and ".." not in path


def safe_next(target: str | None) -> str:
    """Only local absolute paths are followed after login (no open redirects)."""
    if not target:
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    if "\\" in target:
        return "/"
    return target


def csrf_token() -> str:
    token = session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return str(token)


def rotate_csrf() -> None:
    """New token at sign-in, so a token seen before login is useless after it."""
    session["csrf"] = secrets.token_urlsafe(32)


def via_token() -> bool:
    """True when this request authenticated with `Authorization: Bearer` (no cookies)."""
    return g.get("api_token_id") is not None


def csrf_valid(submitted: str | None) -> bool:
    # A bearer token is not sent by browsers on their own, so it cannot be forged
    # cross-site: token requests need no CSRF token.
    if via_token():
        return True
    expected = session.get("csrf")
    return bool(expected and submitted and hmac.compare_digest(str(expected), submitted))


class _SessionCookies(SecureCookieSessionInterface):
    """Flask's signed session cookie, marked Secure whenever the request came over https.

    Behind a TLS-terminating proxy, `request.is_secure` needs the proxy's
    X-Forwarded-Proto to be trusted (werkzeug's ProxyFix) to see https.
    """

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(request.is_secure or super().get_cookie_secure(app))

    def should_set_cookie(self, app: Flask, session: object) -> bool:
        # Token requests are stateless: never hand a script a session cookie.
        return not via_token() and super().should_set_cookie(app, session)  # type: ignore[arg-type]


def _json_error(status: int, message: str, code: str | None = None) -> Response:
    return error_response(status, message, code)


def _bearer(header: str) -> Response | None:
    """Authenticate this request by its bearer token; a response if refused."""
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return _json_error(401, "Authorization must be 'Bearer <token>'", "invalid_token")
    if not request.path.startswith("/api/"):
        return _json_error(401, "tokens are accepted on /api/ routes only", "invalid_token")
    with portal().db.session() as s:
        use = tokens.resolve_token(s, value.strip())
        if use is None:
            return _json_error(401, "invalid, expired or revoked token", "invalid_token")
        who = Principal.of(use.user)
    needed = tokens.required_scope(request.method, request.path)
    if needed not in use.scopes:
        return _json_error(403, f"this token lacks the {needed.value!r} scope")
    g.api_token_id = use.token_id
    g._login_user = LoginUser(who, "")  # Flask-Login's current_user, for this request only
    return None


def install(app: Flask) -> None:
    """Wire Flask-Login and the guard into `app`."""
    app.session_interface = _SessionCookies()
    manager = LoginManager()
    manager.session_protection = "basic"
    manager.init_app(app)

    @manager.user_loader
    def load_user(token: str) -> LoginUser | None:
        p = portal()
        lifetime = timedelta(hours=p.settings.session_hours)
        max_lifetime = timedelta(hours=p.settings.session_max_hours)
        with p.db.session() as s:
            background = (request.method, request.path) in BACKGROUND_REQUESTS
            user = resolve_session(s, token, lifetime, max_lifetime, slide=not background)
            if user is None:
                return None
            return LoginUser(Principal.of(user), token)

    @app.before_request
    def guard() -> Response | None:
        if request.path.startswith("/api/") and QUERY_TOKEN_NAMES & set(request.args):
            return _json_error(
                400, "tokens are never accepted in the query string: send Authorization: Bearer"
            )
        if is_allowlisted(request.method, request.path):
            return None
        if header := request.headers.get("Authorization"):
            return _bearer(header)
        if current_user.is_authenticated:
            if request.method == "POST" and request.path.startswith("/_dash-"):
                if not csrf_valid(request.headers.get(CSRF_HEADER)):
                    return _json_error(403, f"missing or wrong {CSRF_HEADER} header")
            return None
        if request.path.startswith(JSON_PREFIXES):
            return _json_error(401, "login required")
        target = request.full_path if request.query_string else request.path
        return redirect(url_for("web.login", next=target))  # type: ignore[return-value]

    @app.after_request
    def headers(response: Response) -> Response:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if (
            not request.path.startswith(ALLOWED_PREFIXES)
            and "Cache-Control" not in response.headers
        ):
            response.headers["Cache-Control"] = "no-store"
        if (
            not is_allowlisted(request.method, request.path)
            and current_user.is_authenticated
            and not via_token()
        ):
            token = csrf_token()
            if request.cookies.get(CSRF_COOKIE) != token:
                # Readable by the page's script (not HttpOnly): that is how Dash sends it back.
                response.set_cookie(
                    CSRF_COOKIE, token, secure=request.is_secure, httponly=False, samesite="Lax"
                )
        return response
