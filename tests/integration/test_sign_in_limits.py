"""Sign-in throttling per account and per address, absolute session lifetime, Secure cookie."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from portal.app import create_app
from portal.config import Settings
from portal.db import migrate
from portal.db.models import LoginFailure, Role, User, UserSession
from portal.db.session import Database
from portal.services import auth
from tests.conftest import PASSWORD, make_user


@pytest.fixture
def app(settings: Settings) -> Iterator[Flask]:
    migrate.upgrade(settings.resolved_database_url)
    app = create_app(settings)
    app.config["TESTING"] = True
    yield app
    app.extensions["portal"].db.dispose()  # no connection left for the garbage collector


def _post_login(client: FlaskClient, username: str, password: str, address: str):  # type: ignore[no-untyped-def]
    client.get("/login", environ_base={"REMOTE_ADDR": address})
    with client.session_transaction() as sess:
        token = sess["csrf"]
    return client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": token},
        environ_base={"REMOTE_ADDR": address},
    )


def test_an_account_is_locked_after_repeated_failures_even_for_the_right_password(
    app: Flask, settings: Settings
) -> None:
    db: Database = app.extensions["portal"].db
    make_user(db, "alice", Role.REVIEWER)
    make_user(db, "bob", Role.REVIEWER)
    client = app.test_client()
    for _ in range(settings.login_max_failures):
        assert _post_login(client, "alice", "wrong-password", "10.0.0.1").status_code == 401
    locked = _post_login(client, "alice", PASSWORD, "10.0.0.2")  # another address too
    assert locked.status_code == 429 and b"Too many failed sign-ins" in locked.data
    # Another account from the first address still signs in.
    assert _post_login(app.test_client(), "bob", PASSWORD, "10.0.0.1").status_code == 302
    # Fifteen minutes later the lock is gone.
    with db.session() as s:
        s.execute(update(LoginFailure).values(at=datetime.now(UTC) - timedelta(minutes=16)))
    assert _post_login(app.test_client(), "alice", PASSWORD, "10.0.0.1").status_code == 302


def test_one_address_guessing_many_accounts_is_locked(app: Flask, settings: Settings) -> None:
    db: Database = app.extensions["portal"].db
    make_user(db, "carol", Role.REVIEWER)
    client = app.test_client()
    limit = settings.login_max_failures * auth.ADDRESS_FACTOR
    for n in range(limit):  # one failure per made-up account: no account lock
        assert _post_login(client, f"user{n}", "wrong-password", "10.9.9.9").status_code == 401
    assert _post_login(client, "carol", PASSWORD, "10.9.9.9").status_code == 429
    assert _post_login(app.test_client(), "carol", PASSWORD, "10.1.1.1").status_code == 302


def test_a_session_ends_at_its_absolute_lifetime_however_active(db: Database) -> None:
    make_user(db, "dave", Role.REVIEWER)
    idle, absolute = timedelta(hours=1), timedelta(hours=8)
    with db.session() as s:
        user = s.scalar(select(User).where(User.username == "dave"))
        assert user is not None
        token = auth.start_session(s, user, idle)
    with db.session() as s:
        assert auth.resolve_session(s, token, idle, absolute) is not None
        # Signed in nine hours ago and active all along (idle expiry still ahead).
        s.execute(update(UserSession).values(created_at=datetime.now(UTC) - timedelta(hours=9)))
    with db.session() as s:
        assert auth.resolve_session(s, token, idle, absolute) is None
    with db.session() as s:  # and the row is gone: the cookie can never come back
        assert s.scalar(select(UserSession.id)) is None


def test_session_cookie_is_secure_over_https_only(app: Flask) -> None:
    db: Database = app.extensions["portal"].db
    make_user(db, "erin", Role.REVIEWER)
    for base, secure in (("https://portal.example", True), ("http://127.0.0.1", False)):
        client = app.test_client()
        response = client.get("/login", base_url=base)
        cookie = response.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
        assert ("Secure" in cookie) is secure, cookie
