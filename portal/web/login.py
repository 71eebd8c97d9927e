"""Server-rendered sign-in and sign-out (plain Flask forms, not Dash callbacks)."""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, Response, redirect, render_template_string, request, session
from flask_login import current_user, login_user, logout_user
from sqlalchemy.orm import Session

from portal.db.models import User
from portal.services.auth import (
    Principal,
    audit_refused_login,
    authenticate,
    end_session,
    record_failure,
    start_session,
    throttled,
)
from portal.web.context import LoginUser, portal
from portal.web.security import CSRF_COOKIE, csrf_token, csrf_valid, rotate_csrf, safe_next

bp = Blueprint("web", __name__)

LOGIN_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in · portal</title>
<link rel="stylesheet" href="/assets/portal.css">
</head><body class="login-body">
<main class="login-card">
  <h1>portal</h1>
  <p class="login-sub">Image review for research teams</p>
  {% if error %}<p class="login-error" role="alert">{{ error }}</p>{% endif %}
  <form method="post" action="/login">
    <input type="hidden" name="csrf_token" value="{{ csrf }}">
    <input type="hidden" name="next" value="{{ next }}">
    <label>Username <input name="username" autocomplete="username" required autofocus
      value="{{ username }}"></label>
    <label>Password <input name="password" type="password" autocomplete="current-password"
      required></label>
    <button type="submit">Sign in</button>
  </form>
</main></body></html>
"""


def _page(error: str = "", status: int = 200, username: str = "") -> Response:
    html = render_template_string(
        LOGIN_PAGE,
        error=error,
        csrf=csrf_token(),
        next=safe_next(request.values.get("next")),
        username=username,
    )
    return Response(html, status=status, mimetype="text/html")


def renew_login(s: Session, user: User) -> None:
    """Start a new server-side session for `user` and put its token in this request's cookie."""
    token = start_session(s, user, timedelta(hours=portal().settings.session_hours))
    login_user(LoginUser(Principal.of(user), token))


@bp.get("/login")
def login() -> Response:
    if current_user.is_authenticated:
        return redirect(safe_next(request.args.get("next")))  # type: ignore[return-value]
    return _page()


@bp.post("/login")
def login_post() -> Response:
    if not csrf_valid(request.form.get("csrf_token")):
        return _page("Your form expired; please sign in again.", status=400)
    username = request.form.get("username", "").strip()
    password = request.form.get("password", "")
    p = portal()
    address = request.remote_addr or ""
    with p.db.session() as s:
        if throttled(s, username, address, p.settings.login_max_failures):
            audit_refused_login(s, username, throttled=True)
            return _page(
                "Too many failed sign-ins. Wait 15 minutes, or ask an administrator.",
                status=429,
                username=username,
            )
        user = authenticate(s, username, password)
        if user is None:
            record_failure(s, username, address)
            audit_refused_login(s, username, throttled=False)
            return _page("Unknown username or wrong password.", status=401, username=username)
        renew_login(s, user)
    rotate_csrf()
    return redirect(safe_next(request.form.get("next")))  # type: ignore[return-value]


@bp.post("/logout")
def logout() -> Response:
    if not csrf_valid(request.form.get("csrf_token")):
        return Response("Invalid form token", status=400)
    with portal().db.session() as s:
        end_session(s, current_user.token)
    logout_user()
    session.clear()
    response = redirect("/login")
    response.delete_cookie(CSRF_COOKIE)
    return response  # type: ignore[return-value]
