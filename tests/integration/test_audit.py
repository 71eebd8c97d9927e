"""The audit trail on each database kind: append-only, complete for a scripted session,
readable and exportable by admins only, and free of patient data."""

from __future__ import annotations

import ast
import csv
import io
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import delete, select, text, update
from sqlalchemy.exc import DatabaseError

from portal.app import create_app
from portal.config import Settings
from portal.db.models import AuditEntry, Role, Study, StudyView, User
from portal.db.session import Database
from portal.services import audit
from portal.services.auth import Principal
from portal.services.errors import InvalidInput, PermissionDenied
from portal.services.importer import import_paths
from tests.conftest import dash_post, login, make_user
from tests.integration.test_importer import _case, _import_settings

PACKAGE = Path(__file__).resolve().parents[2] / "portal"


@pytest.fixture()
def studies(db: Database, settings: Settings, tmp_path: Path) -> tuple[int, int]:
    """One study in `trial` (rev is a reader there) and one in `other` (rev is not)."""
    ours = import_paths(db, _import_settings(settings), "trial", [_case(tmp_path / "a")])
    theirs = import_paths(db, _import_settings(settings), "other", [_case(tmp_path / "b")])
    make_user(db, "rev", Role.REVIEWER, ["trial"])
    make_user(db, "root", Role.ADMIN)
    return ours.imported[0], theirs.imported[0]


@pytest.fixture()
def app(settings: Settings, studies: tuple[int, int]) -> Iterator[Flask]:
    app = create_app(settings)
    app.config["TESTING"] = True
    yield app
    app.extensions["portal"].db.dispose()


def _csrf(client: FlaskClient) -> str:
    with client.session_transaction() as sess:
        return str(sess["csrf"])


def _last_id(db: Database) -> int:
    with db.session() as s:
        return s.scalar(select(AuditEntry.id).order_by(AuditEntry.id.desc()).limit(1)) or 0


def _entries_after(db: Database, after: int) -> list[AuditEntry]:
    with db.session() as s:
        return list(s.scalars(select(AuditEntry).where(AuditEntry.id > after).order_by("id")))


def _user_id(db: Database, name: str) -> int:
    with db.session() as s:
        found = s.scalar(select(User.id).where(User.username == name))
        assert found is not None
        return found


def _uid(db: Database, study_id: int) -> str:
    with db.session() as s:
        study = s.get(Study, study_id)
        assert study is not None
        return study.uid


def test_audit_rows_cannot_be_changed_or_removed(db: Database) -> None:
    with db.session() as s:
        audit.record(s, None, "user.create", "user:1", "role=admin", role="", address="")
    statements = [update(AuditEntry).values(outcome="ok2"), delete(AuditEntry)]
    if db.engine.dialect.name == "postgresql":
        statements.append(text("TRUNCATE audit_log"))
    for statement in statements:
        with pytest.raises(DatabaseError, match="append-only"), db.session() as s:
            s.execute(statement)
    with db.session() as s:
        assert [e.outcome for e in s.scalars(select(AuditEntry))] == ["ok"]


def test_a_scripted_session_leaves_exactly_its_trail(
    app: Flask, db: Database, studies: tuple[int, int]
) -> None:
    ours, theirs = studies
    rev, root = _user_id(db, "rev"), _user_id(db, "root")
    start = _last_id(db)

    client = app.test_client()
    client.get("/login")
    failed = client.post(
        "/login", data={"username": "rev", "password": "wrong-guess", "csrf_token": _csrf(client)}
    )
    assert failed.status_code == 401
    login(client, "rev")
    assert client.get(f"/api/v1/studies/{ours}").status_code == 200
    assert client.get(f"/api/v1/studies/{ours}").status_code == 200
    preview = client.get(f"/api/v1/studies/{ours}/preview/image.vti", buffered=True)
    assert preview.status_code == 200
    assert client.get(f"/api/v1/studies/{theirs}").status_code == 404
    review = client.get(f"/api/v1/studies/{ours}/review").get_json()
    item = next(i for i in review["items"] if i["key"].startswith("seg:"))
    headers = {"X-CSRF-Token": _csrf(client)}
    read = client.post(
        f"/api/v1/review-items/{item['id']}/reads",
        json={"verdict": "approved", "version": item["version"]},
        headers=headers,
    )
    assert read.status_code == 200, read.get_data(as_text=True)
    comment = client.post(
        f"/api/v1/review-items/{item['id']}/comments", json={"body": "ok"}, headers=headers
    )
    assert comment.status_code == 201

    admin = app.test_client()
    login(admin, "root")
    exported = admin.get("/api/v1/audit.csv?action=review.read")
    assert exported.status_code == 200 and exported.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(exported.get_data(as_text=True))))
    assert [(r["action"], r["username"], r["study_uid"]) for r in rows] == [
        ("review.read", "rev", _uid(db, ours))
    ]

    logout = client.post("/logout", data={"csrf_token": _csrf(client)})
    assert logout.status_code == 302

    entries = _entries_after(db, start)
    assert [(e.action, e.outcome, e.user_id, e.study_uid) for e in entries] == [
        ("auth.login", "failed", None, ""),
        ("auth.login", "ok", rev, ""),
        ("study.view", "ok", rev, _uid(db, ours)),
        ("access.denied", "denied", rev, _uid(db, theirs)),
        ("review.read", "ok", rev, _uid(db, ours)),
        ("review.comment", "ok", rev, _uid(db, ours)),
        ("auth.login", "ok", root, ""),
        ("audit.export", "ok", root, ""),
        ("auth.logout", "ok", rev, ""),
    ]
    assert all(e.address == "127.0.0.1" for e in entries)
    assert [e.role for e in entries] == ["anonymous"] + ["reviewer"] * 5 + ["admin"] * 2 + [
        "reviewer"
    ]
    assert entries[0].target == f"user:{rev}"
    assert entries[2].target == f"study:{ours}" and entries[2].detail == "via=detail"
    assert entries[3].target == f"study:{theirs}"
    assert entries[7].detail == "action=review.read"
    with db.session() as s:  # logging out forgets which studies that session opened
        assert s.scalars(select(StudyView)).all() == []


def test_refusals_are_recorded_and_unknown_users_not_named(
    app: Flask, db: Database, studies: tuple[int, int], settings: Settings
) -> None:
    ours, theirs = studies
    start = _last_id(db)
    client = app.test_client()
    client.get("/login")
    for _ in range(settings.login_max_failures + 1):
        client.post(
            "/login",
            data={"username": "Jane.Doe-1957", "password": "x" * 9, "csrf_token": _csrf(client)},
        )
    login(client, "rev")
    assert client.get(f"/api/v1/studies/{theirs}/preview/thumb.png").status_code == 404
    assert client.get("/api/v1/studies/999999").status_code == 404
    no_token = client.post("/api/v1/review-items/1/reads", json={"verdict": "approved"})
    assert no_token.status_code == 403
    entries = _entries_after(db, start)
    logins = [(e.outcome, e.target, e.detail) for e in entries if e.action == "auth.login"]
    failures = settings.login_max_failures
    assert (
        logins[:failures]
        == [("failed", "", "wrong password or inactive account; unknown user")] * failures
    )
    assert logins[failures] == ("denied", "", "throttled; unknown user")
    denials = [(e.target, e.study_uid, e.detail) for e in entries if e.action == "access.denied"]
    assert denials == [
        (f"study:{theirs}", _uid(db, theirs), "at=api.preview not-found"),
        ("study:999999", "", "at=api.study not-found"),
        ("review-item:1", "", "at=api.submit_read forbidden"),
    ]
    assert all("Jane" not in f"{e.target} {e.detail}" for e in entries)
    # A refused fetch is no view, and nothing of rev's own study was fetched.
    assert not any(e.action == "study.view" for e in entries) and ours != theirs


def test_a_study_is_viewed_once_per_login_session_also_through_dash(
    app: Flask, db: Database, studies: tuple[int, int]
) -> None:
    ours, theirs = studies
    start = _last_id(db)
    first, second = app.test_client(), app.test_client()
    login(first, "rev")
    login(second, "rev")
    # Another worker (its own app and connection pool) serving the first login session.
    worker = create_app(app.extensions["portal"].settings)
    again = worker.test_client()
    cookie = first.get_cookie("portal_session")
    assert cookie is not None
    again.set_cookie("portal_session", cookie.value)
    for client in (first, second, again):
        response = dash_post(client, _route(f"?studies={ours},{theirs}"))
        assert response.status_code == 200
    first.get(f"/api/v1/studies/{ours}/review")
    worker.extensions["portal"].db.dispose()
    views = [
        (e.action, e.outcome, e.target, e.detail)
        for e in _entries_after(db, start)
        if e.action in ("study.view", "access.denied")
    ]
    seen = ("study.view", "ok", f"study:{ours}", "via=pane")
    refused = ("access.denied", "denied", f"study:{theirs}", "at=dash:review-page not-found")
    assert views == [seen, refused, seen, refused, refused]


def _route(search: str) -> dict[str, object]:
    return {
        "output": "..shell-page.children...shell-nav.children..",
        "outputs": [
            {"id": "shell-page", "property": "children"},
            {"id": "shell-nav", "property": "children"},
        ],
        "inputs": [
            {"id": "shell-url", "property": "pathname", "value": "/review"},
            {"id": "shell-url", "property": "search", "value": search},
        ],
        "changedPropIds": ["shell-url.pathname"],
        "state": [],
    }


def test_only_admins_read_the_audit_log(app: Flask, db: Database) -> None:
    client = app.test_client()
    login(client, "rev")
    assert client.get("/api/v1/audit").status_code == 403
    assert client.get("/api/v1/audit.csv").status_code == 403
    start = _last_id(db)
    admin = app.test_client()
    login(admin, "root")
    page = admin.get("/api/v1/audit?limit=2").get_json()
    assert [i["action"] for i in page["items"]] == ["auth.login", "access.denied"]
    older = admin.get(f"/api/v1/audit?limit=2&before={page['next_before']}").get_json()
    assert older["items"][0]["id"] < page["items"][-1]["id"]
    assert admin.get("/api/v1/audit?outcome=maybe").status_code == 400
    assert admin.get("/api/v1/audit?from=yesterday").status_code == 400
    assert _entries_after(db, start)[0].action == "auth.login"


def test_query_filters_and_pages_newest_first(db: Database, studies: tuple[int, int]) -> None:
    ours, _ = studies
    day = datetime.now(UTC).date().isoformat()  # before recording: `to` includes the day
    with db.session() as s:
        root = Principal.of(s.scalars(select(User).where(User.username == "root")).one())
        rev = Principal.of(s.scalars(select(User).where(User.username == "rev")).one())
        for n in range(5):
            audit.record(s, rev.user_id, "study.export", f"study:{ours}", f"n={n}")
    with db.session() as s, pytest.raises(PermissionDenied):
        audit.query_audit(s, rev, audit.AuditFilter())
    with pytest.raises(InvalidInput, match="action"):
        audit.AuditFilter.from_params({"action": "study.delete"})
    filters = audit.AuditFilter.from_params({"user": "rev", "action": "study.export", "limit": "2"})
    seen: list[str] = []
    with db.session() as s:
        while True:
            page = audit.query_audit(s, root, filters)
            seen += [i["detail"] for i in page.items]
            if page.next_before is None:
                break
            filters = replace(filters, before_id=page.next_before)
        long_ago = audit.AuditFilter.from_params({"from": "2000-01-01", "to": "2000-01-02"})
        assert audit.query_audit(s, root, long_ago).items == []
        until = datetime.now(UTC).date().isoformat()  # the same day unless midnight passed
        today = audit.AuditFilter.from_params({"from": day, "to": until, "action": "study.export"})
        assert len(audit.query_audit(s, root, today).items) == 5
    assert seen == [f"n={n}" for n in (4, 3, 2, 1, 0)]


def test_unknown_actions_are_refused(db: Database) -> None:
    with db.session() as s, pytest.raises(ValueError, match="ACTIONS"):
        audit.record(s, None, "study.delete")


def _recorded_actions() -> set[tuple[str, str]]:
    """(file, action) for every string literal passed as an action to the audit helpers."""
    found = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "attr", getattr(node.func, "id", ""))
            # record(session, user, ACTION, ...) and review's audit_study(session, who, study,
            # ACTION)
            position = {"record": 2, "audit_study": 3}.get(name)
            if position is None or len(node.args) <= position:
                continue
            arg = node.args[position]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                found.add((path.name, arg.value))
    return found


def test_every_recorded_action_is_documented() -> None:
    found = _recorded_actions()
    assert {action for _, action in found} >= {"auth.login", "review.read", "audit.export"}
    assert sorted(a for a in found if a[1] not in audit.ACTIONS) == []


def test_audit_details_hold_ids_and_coded_values_only(
    app: Flask, db: Database, studies: tuple[int, int], tmp_path: Path
) -> None:
    ours, theirs = studies
    client = app.test_client()
    login(client, "rev")
    client.get(f"/api/v1/studies/{ours}")
    client.get(f"/api/v1/studies/{theirs}/preview/image.vti")
    with db.session() as s:
        names = {s.get(Study, i).name for i in studies}  # type: ignore[union-attr]
        entries = s.scalars(select(AuditEntry)).all()
    assert {e.action for e in entries} >= {"study.import", "study.view", "access.denied"}
    for entry in entries:
        text_ = f"{entry.target} {entry.detail}"
        # No names of studies or their files, no folders of the server or the source.
        assert not any(name in text_ for name in names), text_
        assert "/" not in text_ and str(tmp_path) not in text_, text_


def _audit_page(pathname: str) -> dict[str, object]:
    payload = _route("")
    payload["inputs"][0]["value"] = pathname  # type: ignore[index]
    return payload


def _audit_table(action: str | None, *, older: bool = False, cursors: object = None) -> dict:
    outputs = [
        ("audit-table", "children"),
        ("audit-csv", "href"),
        ("audit-cursors", "data"),
        ("audit-page-text", "children"),
        ("audit-older", "disabled"),
        ("audit-newer", "disabled"),
        ("audit-message", "children"),
    ]
    inputs = [
        ("audit-from-to", "start_date", None),
        ("audit-from-to", "end_date", None),
        ("audit-user", "value", None),
        ("audit-action", "value", action),
        ("audit-outcome", "value", None),
        ("audit-study-uid", "value", None),
        ("audit-older", "n_clicks", 1 if older else None),
        ("audit-newer", "n_clicks", None),
    ]
    return {
        "output": ".." + "...".join(f"{i}.{p}" for i, p in outputs) + "..",
        "outputs": [{"id": i, "property": p} for i, p in outputs],
        "inputs": [{"id": i, "property": p, "value": v} for i, p, v in inputs],
        "state": [{"id": "audit-cursors", "property": "data", "value": cursors}],
        "changedPropIds": ["audit-older.n_clicks" if older else "audit-action.value"],
    }


def test_the_audit_page_is_for_admins_only(app: Flask, db: Database) -> None:
    start = _last_id(db)
    client = app.test_client()
    login(client, "rev")
    page = dash_post(client, _audit_page("/admin/audit"))
    assert "Page not found" in str(page.get_json())
    assert "/admin/audit" not in str(page.get_json())  # no nav link either
    forged = dash_post(client, _audit_table(None))
    assert forged.status_code == 200
    text_ = forged.get_data(as_text=True)
    assert "only administrators" in text_ and "auth.login" not in text_
    denials = [
        (e.target, e.detail) for e in _entries_after(db, start) if e.action == "access.denied"
    ]
    assert denials == [
        ("page:/admin/audit", "at=dash:router forbidden"),
        ("audit", "at=dash:audit.show forbidden"),
    ]

    admin = app.test_client()
    login(admin, "root")
    page = dash_post(admin, _audit_page("/admin/audit"))
    body = str(page.get_json())
    assert "audit-table" in body and "audit-csv" in body and "/admin/audit" in body
    first = dash_post(admin, _audit_table("auth.login")).get_json()
    response = first["response"]
    assert response["audit-csv"]["href"] == "/api/v1/audit.csv?action=auth.login"
    assert response["audit-newer"]["disabled"] is True
    shown = str(response["audit-table"]["children"])
    assert shown.count("'auth.login'") == 2 and "access.denied" not in shown
    assert shown.index("'root'") < shown.index("'rev'")  # newest first
    assert response["audit-cursors"]["data"] == {"stack": [None], "next": None}
