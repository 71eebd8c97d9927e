"""Personal access tokens: scoped, expiring, revocable, hashed at rest, header only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from portal.cli import main
from portal.config import Settings
from portal.db.models import ApiToken, AuditEntry, Role, User
from portal.db.session import Database
from portal.services.importer import import_paths
from tests.conftest import csrf_headers, login, make_user
from tests.integration.test_importer import _case, _import_settings


def _make(client: FlaskClient, scopes: list[str], days: int = 30) -> dict:
    r = client.post(
        "/api/v1/tokens",
        json={"name": "pipeline", "scopes": scopes, "days": days},
        headers=csrf_headers(client),
    )
    assert r.status_code == 201, r.get_data(as_text=True)
    return r.get_json()


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def study(app: Flask, settings: Settings, tmp_path: Path) -> int:
    db: Database = app.extensions["portal"].db
    [study_id] = import_paths(db, _import_settings(settings), "trial", [_case(tmp_path)]).imported
    make_user(db, "rita", Role.REVIEWER, ["trial"])
    make_user(db, "root", Role.ADMIN)
    return study_id


def test_token_reads_and_writes_within_its_scopes(app: Flask, study: int) -> None:
    browser = app.test_client()
    login(browser, "rita")
    read = _make(browser, ["read"])
    review = _make(browser, ["review"])
    assert read["token"].startswith("ptk_") and review["scopes"] == ["read", "review"]
    script = app.test_client()  # no cookies at all
    ok = script.get(f"/api/v1/studies/{study}", headers=_bearer(read["token"]))
    assert ok.status_code == 200 and ok.get_json()["id"] == study
    assert "Set-Cookie" not in ok.headers  # stateless: no session handed out
    item = script.get(f"/api/v1/studies/{study}/review", headers=_bearer(read["token"]))
    seg_item = next(i for i in item.get_json()["items"] if i["key"].startswith("seg:"))
    body = {"verdict": "approved", "version": seg_item["version"]}
    url = f"/api/v1/review-items/{seg_item['id']}/reads"
    denied = script.post(url, json=body, headers=_bearer(read["token"]))
    assert denied.status_code == 403 and "'review' scope" in denied.get_json()["error"]
    done = script.post(url, json=body, headers=_bearer(review["token"]))  # no CSRF needed
    assert done.status_code == 200, done.get_data(as_text=True)
    # admin routes need an admin token; a reviewer cannot even make one
    assert script.get("/api/v1/audit", headers=_bearer(review["token"])).status_code == 403
    r = browser.post(
        "/api/v1/tokens", json={"name": "x", "scopes": ["admin"]}, headers=csrf_headers(browser)
    )
    assert r.status_code == 400
    # tokens work on the API only, and cannot manage tokens
    assert script.get("/", headers=_bearer(review["token"])).status_code == 401
    assert script.get("/api/v1/tokens", headers=_bearer(review["token"])).status_code == 403


def test_refused_tokens(app: Flask, study: int) -> None:
    db: Database = app.extensions["portal"].db
    browser = app.test_client()
    login(browser, "rita")
    made = _make(browser, ["read"])
    token, url = made["token"], f"/api/v1/studies/{study}"
    script = app.test_client()
    assert script.get(url, headers=_bearer(token)).status_code == 200
    # in the query string: refused, whatever its validity
    for name in ("access_token", "token", "api_key"):
        r = script.get(f"{url}?{name}={token}")
        assert r.status_code == 400 and "query string" in r.get_json()["error"]
    assert script.get(f"{url}?access_token={token}", headers=_bearer(token)).status_code == 400
    # malformed, unknown, wrong scheme
    for header in (f"Basic {token}", "Bearer", "Bearer ptk_nope", f"Bearer {token}x"):
        assert script.get(url, headers={"Authorization": header}).status_code == 401
    # expired
    with db.session() as s:
        s.execute(
            update(ApiToken)
            .where(ApiToken.id == made["id"])
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    assert script.get(url, headers=_bearer(token)).status_code == 401
    # revoked
    fresh = _make(browser, ["read"])
    assert script.get(url, headers=_bearer(fresh["token"])).status_code == 200
    gone = browser.delete(f"/api/v1/tokens/{fresh['id']}", headers=csrf_headers(browser))
    assert gone.status_code == 200
    assert script.get(url, headers=_bearer(fresh["token"])).status_code == 401
    # the user deactivated
    third = _make(browser, ["read"])
    with db.session() as s:
        s.execute(update(User).where(User.username == "rita").values(is_active=False))
    assert script.get(url, headers=_bearer(third["token"])).status_code == 401
    # hashed at rest, listed without the secret, creation and revocation audited
    with db.session() as s:
        stored = " ".join(h for (h,) in s.execute(select(ApiToken.token_hash)))
        actions = s.scalars(select(AuditEntry.action)).all()
    assert token not in stored and token[4:] not in stored
    assert actions.count("token.create") == 3 and actions.count("token.revoke") == 1


def test_access_rule_applies_to_tokens(app: Flask, study: int) -> None:
    db: Database = app.extensions["portal"].db
    make_user(db, "out", Role.REVIEWER)
    browser = app.test_client()
    login(browser, "out")
    token = _make(browser, ["review"])["token"]
    script = app.test_client()
    assert script.get(f"/api/v1/studies/{study}", headers=_bearer(token)).status_code == 404
    listed = script.get("/api/v1/studies", headers=_bearer(token)).get_json()
    assert listed["total"] == 0


def test_cli_creates_a_working_token(app: Flask, settings: Settings, study: int) -> None:
    runner = CliRunner()
    env = {k: str(v) for k, v in settings.to_env().items()}
    result = runner.invoke(
        main, ["token", "create", "rita", "--name", "notebook", "--scope", "read"], env=env
    )
    assert result.exit_code == 0, result.output
    token = result.stdout.strip().splitlines()[0]
    script = app.test_client()
    assert script.get(f"/api/v1/studies/{study}", headers=_bearer(token)).status_code == 200
    listed = runner.invoke(main, ["token", "list", "rita"], env=env)
    assert "notebook" in listed.stdout and token not in listed.stdout
    token_id = listed.stdout.split("\t")[0]
    assert runner.invoke(main, ["token", "revoke", "rita", token_id], env=env).exit_code == 0
    assert script.get(f"/api/v1/studies/{study}", headers=_bearer(token)).status_code == 401
