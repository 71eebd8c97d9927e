"""Ending sessions through the web app: a copied session cookie dies with its session.

Also: the admin Dash callbacks refuse non-admins and forged (cross-site) calls, since
`/_dash-update-component` is reachable directly by anyone signed in.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from portal.app import create_app
from portal.config import Settings
from portal.db.models import AuditEntry, Project, ProjectMember, ProjectRole, Role, User
from portal.db.session import Database
from portal.services import auth
from portal.ui.callbacks import account as account_callbacks
from portal.ui.callbacks import admin as admin_callbacks
from portal.ui.ids import Account, Admin, Shell
from portal.web.security import CSRF_COOKIE
from tests.conftest import PASSWORD, dash_post, login, make_user

Pairs = list[tuple[Any, str]]


@pytest.fixture()
def app(settings: Settings, db: Database) -> Iterator[Flask]:
    with db.session() as s:
        s.add(Project(name="trial"))
    make_user(db, "root", Role.ADMIN)
    make_user(db, "ann", Role.REVIEWER, ["trial"])
    flask_app = create_app(settings)
    flask_app.config["TESTING"] = True
    yield flask_app
    flask_app.extensions["portal"].db.dispose()


def _payload(
    outputs: Pairs, inputs: Pairs, state: Pairs, pressed: Any, values: dict[Any, Any]
) -> dict[str, object]:
    """The body Dash's renderer posts when the button `pressed` is clicked."""
    return {
        "output": ".." + "...".join(f"{c}.{p}" for c, p in outputs) + "..",
        "outputs": [{"id": str(c), "property": p} for c, p in outputs],
        "inputs": [
            {"id": str(c), "property": p, "value": 1 if c == pressed else None} for c, p in inputs
        ],
        "changedPropIds": [f"{pressed}.n_clicks"],
        "state": [{"id": str(c), "property": p, "value": values.get(c)} for c, p in state],
    }


def _users_call(pressed: Admin, **values: Any) -> dict[str, object]:
    return _payload(
        admin_callbacks.USER_OUTPUTS,
        admin_callbacks.USER_INPUTS,
        admin_callbacks.USER_STATE,
        pressed,
        {Admin(k): v for k, v in values.items()},
    )


def _projects_call(pressed: Admin, **values: Any) -> dict[str, object]:
    return _payload(
        admin_callbacks.PROJECT_OUTPUTS,
        admin_callbacks.PROJECT_INPUTS,
        admin_callbacks.PROJECT_STATE,
        pressed,
        {Admin(k): v for k, v in values.items()},
    )


def _own_password_call(current: str, new: str, repeat: str) -> dict[str, object]:
    return _payload(
        account_callbacks.OUTPUTS,
        account_callbacks.INPUTS,
        account_callbacks.STATE,
        Account.CHANGE,
        {Account.CURRENT: current, Account.NEW: new, Account.REPEAT: repeat},
    )


def _route(pathname: str) -> dict[str, object]:
    return {
        "output": f"..{Shell.PAGE}.children...{Shell.NAV}.children..",
        "outputs": [
            {"id": str(Shell.PAGE), "property": "children"},
            {"id": str(Shell.NAV), "property": "children"},
        ],
        "inputs": [
            {"id": str(Shell.URL), "property": "pathname", "value": pathname},
            {"id": str(Shell.URL), "property": "search", "value": ""},
        ],
        "changedPropIds": [f"{Shell.URL}.pathname"],
        "state": [],
    }


def _message(response: Any, component: str) -> str:
    assert response.status_code == 200, response.get_data(as_text=True)
    return str(response.get_json()["response"][component]["children"])


def _text(response: Any) -> str:
    """The callback's response as text, with Dash's escaping of "/" undone."""
    assert response.status_code == 200, response.get_data(as_text=True)
    return json.dumps(response.get_json())


def _signed_in(app: Flask, name: str, password: str = PASSWORD) -> tuple[FlaskClient, str]:
    """A signed-in client and a copy of its session cookie, as a thief would take it."""
    client = app.test_client()
    login(client, name, password)
    cookie = client.get_cookie("portal_session")
    assert cookie is not None
    return client, cookie.value


def _replay(app: Flask, cookie: str) -> FlaskClient:
    client = app.test_client()
    client.set_cookie("portal_session", cookie)
    return client


def _assert_dead(app: Flask, cookie: str) -> None:
    client = _replay(app, cookie)
    assert client.get("/api/v1/studies").status_code == 401
    page = client.get("/")
    assert page.status_code == 302 and page.headers["Location"].startswith("/login")


def _assert_alive(app: Flask, cookie: str) -> None:
    assert _replay(app, cookie).get("/api/v1/studies").status_code == 200


def _user_id(app: Flask, name: str) -> int:
    with app.extensions["portal"].db.session() as s:
        user_id = s.scalar(select(User.id).where(User.username == name))
        assert user_id is not None
        return user_id


def _authenticates(app: Flask, name: str, password: str) -> bool:
    with app.extensions["portal"].db.session() as s:
        return auth.authenticate(s, name, password) is not None


def test_logout_kills_a_copied_cookie(app: Flask) -> None:
    client, cookie = _signed_in(app, "ann")
    _assert_alive(app, cookie)
    with client.session_transaction() as sess:
        token = sess["csrf"]
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    _assert_dead(app, cookie)


@pytest.mark.parametrize(
    ("button", "extra", "said"),
    [
        (Admin.DEACTIVATE, {}, "Deactivated; 2 sessions ended."),
        (Admin.RESET, {"admin-reset-password": "a brand new one"}, "Password reset; 2 sessions"),
        (Admin.FORCE_LOGOUT, {}, "Logged out; 2 sessions ended."),
    ],
)
def test_admin_actions_kill_every_session_of_the_user(
    app: Flask, button: Admin, extra: dict[str, str], said: str
) -> None:
    _, first = _signed_in(app, "ann")
    _, second = _signed_in(app, "ann")
    root, root_cookie = _signed_in(app, "root")
    ann = _user_id(app, "ann")
    response = dash_post(root, _users_call(button, **{Admin.USER: ann}, **extra))
    assert said in _message(response, Admin.USER_MESSAGE)
    _assert_dead(app, first)
    _assert_dead(app, second)
    _assert_alive(app, root_cookie)
    if button is Admin.DEACTIVATE:
        assert not _authenticates(app, "ann", PASSWORD)
        assert "deactivated" in _message(response, Admin.USER_TABLE)
    elif button is Admin.RESET:
        assert not _authenticates(app, "ann", PASSWORD)
        _signed_in(app, "ann", "a brand new one")
    else:
        _assert_alive(app, _signed_in(app, "ann")[1])


def test_own_password_change_kills_copied_cookies_but_keeps_this_window(app: Flask) -> None:
    client, cookie = _signed_in(app, "ann")
    _, elsewhere = _signed_in(app, "ann")

    wrong = dash_post(client, _own_password_call("not mine at all", "new secret!", "new secret!"))
    assert "current password is wrong" in _message(wrong, Account.MESSAGE)
    differ = dash_post(client, _own_password_call(PASSWORD, "new secret!", "new secret?"))
    assert "differ" in _message(differ, Account.MESSAGE)
    _assert_alive(app, cookie)

    done = dash_post(client, _own_password_call(PASSWORD, "new secret!", "new secret!"))
    assert "Password changed" in _message(done, Account.MESSAGE)
    _assert_dead(app, cookie)
    _assert_dead(app, elsewhere)
    # This window got a fresh session in the callback's response.
    assert client.get("/api/v1/studies").status_code == 200
    assert not _authenticates(app, "ann", PASSWORD)
    assert _authenticates(app, "ann", "new secret!")


def _state(app: Flask) -> tuple[object, ...]:
    """Everything the admin callbacks could change."""
    with app.extensions["portal"].db.session() as s:
        users = s.execute(
            select(User.username, User.role, User.is_active, User.password_hash).order_by(User.id)
        ).all()
        projects = s.execute(select(Project.name, Project.required_reads)).all()
        members = s.execute(select(ProjectMember.user_id, ProjectMember.role)).all()
        audited = s.scalar(
            select(func.count())
            .select_from(AuditEntry)
            .where(AuditEntry.action.like("admin.%"), AuditEntry.outcome == "ok")
        )
        return tuple(map(tuple, users)), tuple(projects), tuple(members), audited


def test_non_admins_calling_admin_callbacks_directly_are_refused(app: Flask) -> None:
    ann_client, ann_cookie = _signed_in(app, "ann")
    root_client, root_cookie = _signed_in(app, "root")
    root, ann = _user_id(app, "root"), _user_id(app, "ann")
    with app.extensions["portal"].db.session() as s:
        trial = s.scalar(select(Project.id))
    before = _state(app)

    forged = [
        _users_call(
            Admin.CREATE_USER,
            **{
                Admin.NEW_USERNAME: "mallory",
                Admin.NEW_PASSWORD: PASSWORD,
                Admin.NEW_ROLE: "admin",
                Admin.NEW_PROJECTS: [trial],
            },
        ),
        _users_call(Admin.SET_ROLE, **{Admin.USER: ann, Admin.ROLE: "admin"}),
        _users_call(Admin.DEACTIVATE, **{Admin.USER: root}),
        _users_call(Admin.REACTIVATE, **{Admin.USER: root}),
        _users_call(Admin.RESET, **{Admin.USER: root, Admin.RESET_PASSWORD: "owned owned"}),
        _users_call(Admin.FORCE_LOGOUT, **{Admin.USER: root}),
    ]
    for pressed in (Admin.ADD_MEMBER, Admin.SET_MEMBER_ROLE, Admin.REMOVE_MEMBER):
        values = {Admin.PROJECT: trial, Admin.MEMBER: ann, Admin.MEMBER_ROLE: "lead"}
        forged.append(_projects_call(pressed, **values))
    forged.append(_projects_call(Admin.SET_READS, **{Admin.PROJECT: trial, Admin.READS: 5}))
    forged.append(
        _projects_call(
            Admin.CREATE_PROJECT,
            **{Admin.NEW_PROJECT_NAME: "mine", Admin.NEW_PROJECT_READS: 1},
        )
    )
    for body in forged:
        response = dash_post(ann_client, body)
        assert response.status_code == 200
        data = response.get_json()["response"]
        # Only the refusal comes back: no user or project list.
        assert len(data) == 1, data
        [(_, props)] = data.items()
        assert props["children"] == admin_callbacks.REFUSED
        assert "root" not in json.dumps(data)

    assert _state(app) == before
    _assert_alive(app, root_cookie)
    _assert_alive(app, ann_cookie)
    # Each forged call left a trace.
    with app.extensions["portal"].db.session() as s:
        refusals = s.scalars(
            select(AuditEntry.target).where(
                AuditEntry.action == "admin.refused", AuditEntry.user_id == ann
            )
        ).all()
    assert len(refusals) == len(forged) and "callback:admin-deactivate" in refusals
    # Prefilling the role field tells a non-admin nothing: no update at all.
    prefill = {
        "output": f"{Admin.ROLE}.value",
        "outputs": {"id": str(Admin.ROLE), "property": "value"},
        "inputs": [{"id": str(Admin.USER), "property": "value", "value": root}],
        "changedPropIds": [f"{Admin.USER}.value"],
        "state": [],
    }
    assert dash_post(ann_client, prefill).get_json()["response"] == {}
    assert dash_post(root_client, prefill).get_json()["response"][Admin.ROLE]["value"] == "admin"

    # The pages themselves say no too, and the nav offers no admin link.
    for path in ("/admin/users", "/admin/projects"):
        page = _text(dash_post(ann_client, _route(path)))
        assert "Not allowed" in page and "root" not in page
        assert "/admin/users" not in page


def test_admin_callbacks_without_the_csrf_header_are_refused(app: Flask) -> None:
    root, _ = _signed_in(app, "root")
    ann = _user_id(app, "ann")
    before = _state(app)
    # A cross-site page cannot read the token, so it cannot send the header.
    for headers in ({}, {"X-CSRF-Token": "guessed"}):
        response = root.post(
            "/_dash-update-component",
            json=_users_call(Admin.DEACTIVATE, **{Admin.USER: ann}),
            headers=headers,
        )
        assert response.status_code == 403
    assert _state(app) == before


def test_the_csrf_cookie_carries_the_sessions_token_for_dashs_renderer(app: Flask) -> None:
    client, _ = _signed_in(app, "root")
    client.get("/")
    cookie = client.get_cookie(CSRF_COOKIE)
    assert cookie is not None
    with client.session_transaction() as sess:
        assert cookie.value == sess["csrf"]
    # Dash is told where to find it and which header to send it in.
    config = client.get("/").get_data(as_text=True)
    assert '"csrf_token_name": "portal_csrf"' in config.replace('":"', '": "')


def test_admin_pages_and_actions_work_for_an_admin(app: Flask) -> None:
    root, _ = _signed_in(app, "root")
    nav = _text(dash_post(root, _route("/admin/users")))
    assert "/admin/users" in nav and "ann" in nav and "trial (reviewer)" in nav

    created = dash_post(
        root,
        _users_call(
            Admin.CREATE_USER,
            **{
                Admin.NEW_USERNAME: "bob",
                Admin.NEW_PASSWORD: "short",
                Admin.NEW_ROLE: "expert",
            },
        ),
    )
    assert "at least 8 characters" in _message(created, Admin.USER_MESSAGE)
    created = dash_post(
        root,
        _users_call(
            Admin.CREATE_USER,
            **{
                Admin.NEW_USERNAME: "bob",
                Admin.NEW_PASSWORD: PASSWORD,
                Admin.NEW_ROLE: "expert",
            },
        ),
    )
    assert _message(created, Admin.USER_MESSAGE) == "Created bob."
    bob = _user_id(app, "bob")
    changed = dash_post(
        root, _users_call(Admin.SET_ROLE, **{Admin.USER: bob, Admin.ROLE: "viewer"})
    )
    assert _message(changed, Admin.USER_MESSAGE) == "Role changed."

    made = dash_post(
        root,
        _projects_call(
            Admin.CREATE_PROJECT,
            **{
                Admin.NEW_PROJECT_NAME: "brain",
                Admin.NEW_PROJECT_DESCRIPTION: "T1",
                Admin.NEW_PROJECT_READS: 2,
            },
        ),
    )
    assert _message(made, Admin.PROJECT_MESSAGE) == "Created brain."
    with app.extensions["portal"].db.session() as s:
        brain = s.scalar(select(Project.id).where(Project.name == "brain"))
    added = dash_post(
        root,
        _projects_call(
            Admin.ADD_MEMBER, **{Admin.PROJECT: brain, Admin.MEMBER: bob, Admin.MEMBER_ROLE: "lead"}
        ),
    )
    assert _message(added, Admin.PROJECT_MESSAGE) == "Member added."
    assert "bob (lead)" in _message(added, Admin.PROJECT_TABLE)
    reads = dash_post(
        root, _projects_call(Admin.SET_READS, **{Admin.PROJECT: brain, Admin.READS: 9})
    )
    assert "between 1 and 5" in _message(reads, Admin.PROJECT_MESSAGE)
    with app.extensions["portal"].db.session() as s:
        member = s.get(ProjectMember, (brain, bob))
        assert member is not None and member.role == ProjectRole.LEAD.value
        user = s.get(User, bob)
        assert user is not None and user.role == Role.VIEWER.value
