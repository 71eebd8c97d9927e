"""Every route refuses anonymous requests unless allowlisted; access is re-checked per study."""

from __future__ import annotations

import json

import pytest
from flask import Flask
from werkzeug.routing import Rule

from portal.db.models import Role
from portal.web.context import Portal
from portal.web.security import is_allowlisted, safe_next
from tests.conftest import PASSWORD, dash_post, login, make_user

ARG_VALUES = {"int": "1", "path": "deps/x.js", "default": "x"}


def _url(rule: Rule) -> str:
    url = rule.rule
    for arg in rule.arguments:
        converter = rule._converters[arg].__class__.__name__.lower()  # noqa: SLF001
        value = (
            "1"
            if "integer" in converter
            else ARG_VALUES["path" if "path" in converter else "default"]
        )
        url = url.replace(f"<{arg}>", value)
        for prefix in ("int", "path", "string"):
            url = url.replace(f"<{prefix}:{arg}>", value)
    return url


def test_every_rule_refuses_anonymous_requests(demo_app: Flask) -> None:
    client = demo_app.test_client()
    checked = 0
    for rule in demo_app.url_map.iter_rules():
        url = _url(rule)
        for method in sorted((rule.methods or set()) - {"OPTIONS", "HEAD"}):
            if is_allowlisted(method, url):
                continue
            response = client.open(url, method=method)
            checked += 1
            body = response.get_data(as_text=True)
            if response.status_code == 401:
                expected = {"error": "login required", "code": "login_required"}
                assert json.loads(body) == expected, url
            else:
                assert response.status_code == 302, (method, url, response.status_code)
                assert response.headers["Location"].startswith("/login"), url
    assert checked >= 10


@pytest.mark.parametrize(
    "path",
    [
        "/_dash-layout",
        "/_dash-dependencies",
        "/_dash-update-component",
        "/api/v1/studies",
        "/api/v1/studies/1",
        "/api/v1/studies/1/preview/image.vti",
    ],
)
def test_dash_and_api_endpoints_are_closed(demo_app: Flask, path: str) -> None:
    client = demo_app.test_client()
    method = "POST" if path == "/_dash-update-component" else "GET"
    response = client.open(path, method=method, json={} if method == "POST" else None)
    assert response.status_code == 401
    assert b"MNI" not in response.data and b"CT" not in response.data


def test_allowlisted_routes_reveal_no_case_data(demo_app: Flask) -> None:
    client = demo_app.test_client()
    assert client.get("/api/v1/health").get_json() == {"status": "ok"}
    page = client.get("/login").get_data(as_text=True)
    assert "csrf_token" in page and "MNI" not in page


def test_safe_next_only_allows_local_paths() -> None:
    assert safe_next("/review?studies=1,2") == "/review?studies=1,2"
    for bad in ["//evil.example/x", "https://evil.example/", "javascript:alert(1)", "/\\evil", ""]:
        assert safe_next(bad) == "/"


def test_login_requires_csrf_and_right_password(demo_app: Flask) -> None:
    client = demo_app.test_client()
    no_token = client.post("/login", data={"username": "admin", "password": PASSWORD})
    assert no_token.status_code == 400
    client.get("/login")
    with client.session_transaction() as sess:
        token = sess["csrf"]
    wrong = client.post(
        "/login", data={"username": "admin", "password": "nope-nope", "csrf_token": token}
    )
    assert wrong.status_code == 401
    ok = client.post(
        "/login",
        data={
            "username": "admin",
            "password": PASSWORD,
            "csrf_token": token,
            "next": "/review?studies=1",
        },
    )
    assert ok.status_code == 302 and ok.headers["Location"] == "/review?studies=1"
    evil = client.get("/login?next=//evil.example/")
    assert evil.status_code == 302 and evil.headers["Location"] == "/"


def test_logout_kills_the_session_for_a_replayed_cookie(demo_app: Flask) -> None:
    client = demo_app.test_client()
    login(client, "admin")
    assert client.get("/api/v1/studies").status_code == 200
    cookie = client.get_cookie("portal_session")
    assert cookie is not None
    stolen = cookie.value
    with client.session_transaction() as sess:
        token = sess["csrf"]
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    replay = demo_app.test_client()
    replay.set_cookie("portal_session", stolen)
    assert replay.get("/api/v1/studies").status_code == 401
    page = replay.get("/")
    assert page.status_code == 302 and page.headers["Location"].startswith("/login")


def test_reviewer_outside_the_project_sees_nothing(demo_app: Flask) -> None:
    portal: Portal = demo_app.extensions["portal"]
    make_user(portal.db, "outsider", Role.REVIEWER)
    client = demo_app.test_client()
    login(client, "outsider")
    assert client.get("/api/v1/studies").get_json()["total"] == 0
    assert client.get("/api/v1/studies/1").status_code == 404
    assert client.get("/api/v1/studies/1/preview/image.vti").status_code == 404
    # The Dash router callback re-checks access too.
    payload = {
        "output": "..shell-page.children...shell-nav.children..",
        "outputs": [
            {"id": "shell-page", "property": "children"},
            {"id": "shell-nav", "property": "children"},
        ],
        "inputs": [
            {"id": "shell-url", "property": "pathname", "value": "/review"},
            {"id": "shell-url", "property": "search", "value": "?studies=1,2"},
        ],
        "changedPropIds": ["shell-url.pathname"],
        "state": [],
    }
    response = dash_post(client, payload)
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    assert "not available to you" in text
    assert "MNI" not in text and "preview/image.vti" not in text


def test_member_reviewer_sees_the_demo_project(demo_app: Flask) -> None:
    portal: Portal = demo_app.extensions["portal"]
    make_user(portal.db, "member", Role.REVIEWER, ["demo"])
    client = demo_app.test_client()
    login(client, "member")
    listing = client.get("/api/v1/studies?limit=3&offset=0").get_json()
    assert listing["total"] >= 6 and len(listing["items"]) == 3
    assert client.get("/api/v1/studies?limit=0").status_code == 400
