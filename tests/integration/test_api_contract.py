"""Contract tests generated from the OpenAPI document, against the real app on 127.0.0.1.

Schemathesis makes requests for every documented operation (valid and invalid
parameters and bodies) with a reviewer's bearer token (an admin's on admin routes) on a
small imported world, and checks each answer: never a 5xx, a documented status code,
and a body that matches the documented schema.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)
from werkzeug.serving import make_server

from portal.api.openapi import document
from portal.app import create_app
from portal.config import Settings
from portal.db import migrate
from portal.db.models import ReviewStatus, Role, User
from portal.db.session import Database
from portal.services import assignments, comments, review, review_view, tokens
from portal.services.auth import Principal
from portal.services.importer import import_paths
from tests.conftest import PASSWORD, make_user
from tests.integration.test_importer import _case, _import_settings

schema = schemathesis.openapi.from_dict(document())
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]


@dataclass
class Live:
    url: str
    reviewer: str
    admin: str
    app: Flask


def _token(db: Database, username: str, scopes: list[str]) -> str:
    with db.session() as s:
        user = s.query(User).filter_by(username=username).one()
        _, token = tokens.create_token(
            s, Principal.of(user), "contract", tokens.parse_scopes(scopes), 1
        )
        return token


def _history(db: Database, config: Settings, study_id: int) -> None:
    """A read, an anchored comment thread and an assignment, so answers carry them."""
    with db.session() as s:
        ann = Principal.of(s.query(User).filter_by(username="ann").one())
        root = Principal.of(s.query(User).filter_by(username="root").one())
        assignments.assign(s, root, [study_id], ann.user_id, datetime(2030, 1, 1, tzinfo=UTC))
        items = review_view.study_review(s, ann, study_id)["items"]
    seg = next(i for i in items if i["segmentation_id"])
    with db.session() as s:
        review.submit_read(
            s, ann, seg["id"], ReviewStatus.NEEDS_EDIT, "leak", {"1": "missing"}, seg["version"]
        )
        first = comments.add_comment(
            s, ann, seg["id"], "here", comments.Anchor((1.0, 2.0, 3.0), 4, "axial", 1)
        )
        comments.add_comment(s, ann, seg["id"], "agreed", None, first.id)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """One imported study in project `trial`, a reviewer and an admin, served over HTTP."""
    root: Path = tmp_path_factory.mktemp("contract")
    url = f"sqlite:///{root / 'catalog.db'}"
    migrate.upgrade(url)
    config = Settings(data_dir=root / "data", database_url=url, secret_key="contract")
    db = Database(url)
    [study_id] = import_paths(db, _import_settings(config), "trial", [_case(root / "src")]).imported
    make_user(db, "ann", Role.REVIEWER, ["trial"])
    make_user(db, "root", Role.ADMIN)
    _history(db, config, study_id)
    reviewer, admin = _token(db, "ann", ["review"]), _token(db, "root", ["admin"])
    db.dispose()
    app = create_app(config)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Live(f"http://127.0.0.1:{server.server_port}", reviewer, admin, app)
    finally:
        server.shutdown()
        thread.join(timeout=10)
        app.extensions["portal"].db.dispose()


@schema.parametrize()
@settings(
    max_examples=10,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_keeps_its_contract(case: schemathesis.Case, live: Live) -> None:
    admin_route = case.path.startswith(tokens.ADMIN_PATHS)
    bearer = live.admin if admin_route else live.reviewer
    case.call_and_validate(
        base_url=live.url, headers={"Authorization": f"Bearer {bearer}"}, checks=CHECKS
    )


def _signed_in(live: Live, username: str) -> tuple[requests.Session, str]:
    """A browser-like client signed in with the session cookie, and its CSRF token."""
    http = requests.Session()
    form = http.get(f"{live.url}/login", timeout=30).text
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', form)
    assert match, form
    answer = http.post(
        f"{live.url}/login",
        data={"username": username, "password": PASSWORD, "csrf_token": match.group(1)},
        allow_redirects=False,
        timeout=30,
    )
    assert answer.status_code == 302, answer.text
    serializer = live.app.session_interface.get_signing_serializer(live.app)  # type: ignore[attr-defined]
    return http, str(serializer.loads(http.cookies["portal_session"])["csrf"])


@pytest.fixture(scope="module")
def browser(live: Live) -> tuple[requests.Session, str]:
    return _signed_in(live, "ann")


# Tokens are managed from a browser session only (a bearer token gets 403 there), so their
# answers are checked through the session cookie and its CSRF header.
@schema.include(path_regex="/tokens").parametrize()
@settings(
    max_examples=5,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_token_routes_keep_their_contract_in_a_session(case: schemathesis.Case, live: Live) -> None:
    http, csrf = _signed_in(live, "ann")
    headers = {"X-CSRF-Token": csrf} if case.method != "GET" else {}
    case.call_and_validate(base_url=live.url, session=http, headers=headers, checks=CHECKS)
