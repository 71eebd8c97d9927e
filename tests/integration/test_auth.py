from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from portal.db.models import Role, User
from portal.db.session import Database
from portal.services import auth
from portal.services.errors import InvalidInput
from tests.conftest import PASSWORD, make_user


def test_passwords_are_argon2id_and_verify(db: Database) -> None:
    make_user(db, "alice", Role.REVIEWER)
    with db.session() as s:
        user = s.scalar(select(User).where(User.username == "alice"))
        assert user is not None
        assert user.password_hash.startswith("$argon2id$")
        assert PASSWORD not in user.password_hash
        assert auth.authenticate(s, "alice", PASSWORD) is not None
        assert auth.authenticate(s, "alice", PASSWORD + "x") is None
        assert auth.authenticate(s, "nobody", PASSWORD) is None


def test_duplicate_and_weak_users_are_refused(db: Database) -> None:
    make_user(db, "bob", Role.EXPERT)
    with db.session() as s, pytest.raises(InvalidInput, match="already exists"):
        auth.create_user(s, "bob", PASSWORD, Role.EXPERT)
    with db.session() as s, pytest.raises(InvalidInput, match="at least 8"):
        auth.create_user(s, "carol", "short", Role.EXPERT)
    with db.session() as s, pytest.raises(InvalidInput, match="does not exist"):
        auth.create_user(s, "dave", PASSWORD, Role.EXPERT, ["no-such-project"])


def test_ended_and_expired_sessions_are_dead(db: Database) -> None:
    make_user(db, "erin", Role.REVIEWER)
    life = timedelta(hours=1)
    with db.session() as s:
        user = s.scalar(select(User).where(User.username == "erin"))
        assert user is not None
        live = auth.start_session(s, user, life)
        expired = auth.start_session(s, user, timedelta(seconds=-1))
    with db.session() as s:
        resolved = auth.resolve_session(s, live, life)
        assert resolved is not None and resolved.username == "erin"
        assert auth.resolve_session(s, expired, life) is None
        assert auth.resolve_session(s, "forged-token", life) is None
        auth.end_session(s, live)
    with db.session() as s:
        assert auth.resolve_session(s, live, life) is None
