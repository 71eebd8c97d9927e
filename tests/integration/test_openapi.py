"""The OpenAPI document: valid OpenAPI 3, exactly the app's `/api/v1` routes, served as
JSON and as a server-rendered page, both behind the login."""

from __future__ import annotations

import io
import logging
import re
from pathlib import Path

import pytest
from flask import Flask
from openapi_spec_validator import validate
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.test import encode_multipart

from portal.api.openapi import document
from portal.app import create_app
from portal.config import Settings
from portal.db import migrate
from portal.db.models import Role
from portal.db.session import Database
from tests.conftest import login, make_user

IGNORED_METHODS = {"HEAD", "OPTIONS"}


@pytest.fixture()
def app(tmp_path: Path) -> Flask:
    url = f"sqlite:///{tmp_path / 'catalog.db'}"
    migrate.upgrade(url)
    db = Database(url)
    make_user(db, "ann", Role.REVIEWER)
    db.dispose()
    return create_app(
        Settings(data_dir=tmp_path / "data", database_url=url, secret_key="t", max_upload_mb=1)
    )


def _openapi_path(rule: str) -> str:
    """`/api/v1/studies/<int:study_id>` -> `/api/v1/studies/{study_id}`."""
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


def test_document_is_valid_openapi() -> None:
    validate(document())


def test_document_lists_exactly_the_api_routes(app: Flask) -> None:
    routes = {
        (method.lower(), _openapi_path(rule.rule))
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/api/v1/")
        for method in (rule.methods or set()) - IGNORED_METHODS
    }
    documented = {(method, path) for path, item in document()["paths"].items() for method in item}
    missing = sorted(routes - documented)
    assert not missing, (
        "routes missing from the OpenAPI document: add an operation for each of these to "
        "`_paths()` in portal/api/openapi.py (summary, parameters, requestBody, responses): "
        + ", ".join(f"{m.upper()} {p}" for m, p in missing)
    )
    stale = sorted(documented - routes)
    assert not stale, "documented but not routes of the app (remove them from `_paths()`): " + (
        ", ".join(f"{m.upper()} {p}" for m, p in stale)
    )


def test_json_and_page_need_a_login_and_show_every_route(app: Flask) -> None:
    client = app.test_client()
    for url in ("/api/v1/openapi.json", "/api/docs"):
        refused = client.get(url)
        assert refused.status_code == 401 and refused.get_json()["code"] == "login_required"
    login(client, "ann")
    assert client.get("/api/v1/openapi.json").get_json() == document()
    page = client.get("/api/docs")
    assert page.status_code == 200 and page.mimetype == "text/html"
    text = page.get_data(as_text=True)
    assert "<script" not in text and "http://" not in text and "https://" not in text
    for path, item in document()["paths"].items():
        for method in item:
            assert f"{method.upper()} {path}" in text, (method, path)
    assert "Idempotency-Key" in text and "next_cursor" in text


def test_api_errors_are_json_with_a_code(app: Flask) -> None:
    client = app.test_client()
    login(client, "ann")
    cases = [
        ("GET", "/api/v1/nowhere", 404, "not_found"),
        ("DELETE", "/api/v1/studies", 405, "method_not_allowed"),
        ("GET", "/api/v1/studies/99", 404, "not_found"),
        ("GET", "/api/v1/studies/99999999999999999999", 404, "not_found"),
        ("GET", "/api/v1/studies?limit=x", 400, "invalid"),
        ("POST", "/api/v1/assignments", 403, "forbidden"),  # no X-CSRF-Token
    ]
    for method, url, status, code in cases:
        response = client.open(url, method=method)
        assert (response.status_code, response.get_json()) == (
            status,
            {"error": response.get_json()["error"], "code": code},
        ), url
    make_user(app.extensions["portal"].db, "root", Role.ADMIN)
    admin = app.test_client()
    login(admin, "root")
    huge = admin.get("/api/v1/audit?before=99999999999999999999")
    assert (huge.status_code, huge.get_json()["code"]) == (400, "invalid")
    bad_token = client.get("/api/v1/studies", headers={"Authorization": "Bearer ptk_nope"})
    assert (bad_token.status_code, bad_token.get_json()["code"]) == (401, "invalid_token")


def test_unexpected_failures_answer_json_500_without_traceback(
    app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    patient = "Doe^John"

    def boom() -> None:
        raise RuntimeError(f"secret detail {patient}")  # as a database error quotes data

    app.view_functions["api.health"] = boom
    with caplog.at_level(logging.ERROR):
        response = app.test_client().get("/api/v1/health?q=Roe")
    assert response.status_code == 500
    assert response.get_json()["code"] == "internal"
    assert "Doe" not in response.get_data(as_text=True)
    assert "Traceback" not in response.get_data(as_text=True)
    # Logged with its type and stack, without the message or the query.
    assert "RuntimeError" in caplog.text and "boom" in caplog.text
    assert "Doe" not in caplog.text and "Roe" not in caplog.text


def test_too_large_uploads_answer_413_json(app: Flask) -> None:
    client = app.test_client()
    login(client, "ann")
    with client.session_transaction() as sess:
        csrf = sess["csrf"]
    # Encoded here as bytes: the test client would spool a large file part to a temporary
    # file that stays open when the server refuses the body unread.
    boundary, body = encode_multipart(
        MultiDict({"project": "p", "files": FileStorage(io.BytesIO(b"x" * 2**21), "big.bin")})
    )
    for extra in ({}, {"Idempotency-Key": "big-1"}):
        response = client.post(
            "/api/v1/imports",
            data=body,
            content_type=f"multipart/form-data; boundary={boundary}",
            headers={"X-CSRF-Token": csrf, **extra},
        )
        assert response.status_code == 413, extra
        assert response.get_json()["code"] == "too_large"
