"""Users, passwords (argon2id) and server-side login sessions."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from portal.db.models import (
    LoginFailure,
    Project,
    ProjectMember,
    ProjectRole,
    Role,
    User,
    UserSession,
)
from portal.services import audit
from portal.services.errors import InvalidInput

# argon2-cffi's defaults are RFC 9106's "low memory" argon2id profile.
_hasher = PasswordHasher()
# Verifying against a fixed hash when the user does not exist keeps the response time the
# same, so timing does not reveal which usernames exist.
_DUMMY_HASH = _hasher.hash("not-a-password")

MIN_PASSWORD_LENGTH = 8


@dataclass(frozen=True)
class Principal:
    """Who is asking: what services need to decide access, without any web framework."""

    user_id: int
    username: str
    role: Role

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    @classmethod
    def of(cls, user: User) -> Principal:
        return cls(user_id=user.id, username=user.username, role=Role(user.role))


def hash_password(password: str) -> str:
    """Return an argon2id PHC string for `password`."""
    return _hasher.hash(password)


def create_user(
    session: Session,
    username: str,
    password: str,
    role: Role,
    projects: list[str] | None = None,
) -> User:
    """Create a user, optionally as a member of existing projects.

    Raises
    ------
    InvalidInput
        If the name is taken or malformed, the password too short or a project unknown.
    """
    username = username.strip()
    if (
        not username
        or len(username) > 64
        or not username.replace("-", "").replace("_", "").replace(".", "").isalnum()
    ):
        raise InvalidInput("username must be 1-64 letters, digits, '.', '-' or '_'")
    check_password_length(password)
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise InvalidInput(f"user {username!r} already exists")
    user = User(username=username, password_hash=hash_password(password), role=role.value)
    found = []
    for name in projects or []:
        project = session.scalar(select(Project).where(Project.name == name))
        if project is None:
            raise InvalidInput(f"project {name!r} does not exist")
        found.append(project)
    session.add(user)
    session.flush()
    for project in found:
        session.add(
            ProjectMember(project_id=project.id, user_id=user.id, role=default_project_role(role))
        )
    session.flush()
    audit.record(session, None, "user.create", f"user:{user.id}", f"role={role.value}")
    return user


def default_project_role(role: Role) -> str:
    """The project role a user gets when added to a project without one being chosen."""
    return {
        Role.ADMIN: ProjectRole.LEAD,
        Role.EXPERT: ProjectRole.EXPERT,
        Role.REVIEWER: ProjectRole.REVIEWER,
        Role.VIEWER: ProjectRole.VIEWER,
    }[role].value


def authenticate(session: Session, username: str, password: str) -> User | None:
    """Return the active user with these credentials, or None. Rehashes outdated hashes."""
    user = session.scalar(select(User).where(User.username == username))
    if user is None or not user.is_active:
        try:
            _hasher.verify(_DUMMY_HASH, password)
        except VerificationError:
            pass
        return None
    try:
        _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return user


THROTTLE_WINDOW = timedelta(minutes=15)
# One address (a proxy, a shared workstation) may fail this many times more than one account.
ADDRESS_FACTOR = 4


def throttled(session: Session, username: str, address: str, max_failures: int) -> bool:
    """True while `username` or `address` has failed too often in the last 15 minutes.

    Kept in the catalog, so every worker and every machine applies the same count.
    Checked before the password is: a locked account stays locked even for the right
    one, so guessing cannot go on at a slower pace.
    """
    since = datetime.now(UTC) - THROTTLE_WINDOW
    count = select(func.count()).select_from(LoginFailure).where(LoginFailure.at >= since)
    by_user = session.scalar(count.where(LoginFailure.username == username[:64])) or 0
    by_address = session.scalar(count.where(LoginFailure.address == address[:64])) or 0
    return by_user >= max_failures or by_address >= max_failures * ADDRESS_FACTOR


def record_failure(session: Session, username: str, address: str) -> None:
    """Count a failed sign-in; failures older than the window are dropped here."""
    now = datetime.now(UTC)
    session.execute(delete(LoginFailure).where(LoginFailure.at < now - THROTTLE_WINDOW))
    session.add(LoginFailure(at=now, username=username[:64], address=address[:64]))


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def session_key(token: str) -> str:
    """The stored, non-secret name of a login session (the hash of its token)."""
    return _token_hash(token)


def audit_refused_login(session: Session, username: str, *, throttled: bool) -> None:
    """Audit a refused sign-in: ``failed`` for bad credentials, ``denied`` when throttled.

    The attempted name is not written: people type passwords or other personal data
    into that field. An existing account is named by its id.
    """
    user_id = session.scalar(select(User.id).where(User.username == username[:64]))
    reason = "throttled" if throttled else "wrong password or inactive account"
    audit.record(
        session,
        None,
        "auth.login",
        f"user:{user_id}" if user_id is not None else "",
        reason if user_id is not None else f"{reason}; unknown user",
        outcome=audit.Outcome.DENIED if throttled else audit.Outcome.FAILED,
    )


def start_session(session: Session, user: User, lifetime: timedelta) -> str:
    """Create a login session and return its token (only its hash is stored)."""
    token = secrets.token_urlsafe(32)
    session.add(
        UserSession(
            token_hash=_token_hash(token),
            user_id=user.id,
            expires_at=datetime.now(UTC) + lifetime,
        )
    )
    audit.record(session, user.id, "auth.login", f"user:{user.id}", role=user.role)
    return token


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)  # SQLite drops the zone


def resolve_session(
    session: Session,
    token: str,
    lifetime: timedelta,
    max_lifetime: timedelta | None = None,
    *,
    slide: bool = True,
) -> User | None:
    """Return the user of a live session token, sliding its expiry; None if dead.

    `lifetime` is the idle timeout (each use extends it); `max_lifetime`, when given,
    the absolute one counted from sign-in, which no activity extends. With `slide`
    False the use does not count as activity (a tab's background polling), so an
    unattended screen still signs out when idle.
    """
    row = session.scalar(select(UserSession).where(UserSession.token_hash == _token_hash(token)))
    if row is None:
        return None
    now = datetime.now(UTC)
    expires = _aware(row.expires_at)
    too_old = max_lifetime is not None and _aware(row.created_at) + max_lifetime <= now
    if expires <= now or too_old or not row.user.is_active:
        session.delete(row)
        return None
    # Slide the expiry at most once a minute to avoid a write per request.
    if slide and expires - now < lifetime - timedelta(minutes=1):
        row.expires_at = now + lifetime
    return row.user


def end_all_sessions(session: Session, user_id: int) -> int:
    """Delete every login session of a user and return how many there were.

    Sessions are rows resolved on every request, so this signs the user out on every
    worker and machine at once; their cookies can never be replayed.
    """
    result = session.execute(delete(UserSession).where(UserSession.user_id == user_id))
    return int(getattr(result, "rowcount", 0) or 0)


def check_password_length(password: str) -> None:
    """Raise InvalidInput unless `password` is long enough."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"password must have at least {MIN_PASSWORD_LENGTH} characters")


def set_password(session: Session, user: User, password: str) -> int:
    """Store a new password for `user` and end all their sessions; return how many ended.

    Raises
    ------
    InvalidInput
        If the password is too short.
    """
    check_password_length(password)
    user.password_hash = hash_password(password)
    return end_all_sessions(session, user.id)


def change_own_password(session: Session, user_id: int, current: str, new: str) -> User:
    """A signed-in user's own password change; ends all of their sessions, this one too.

    The caller starts a fresh session afterwards if the user should stay signed in, so a
    copy of the old cookie is worthless either way.

    Raises
    ------
    InvalidInput
        If `current` is wrong, `new` too short or equal to `current`.
    """
    user = session.get(User, user_id)
    if user is None or not user.is_active:
        raise InvalidInput("unknown user")
    try:
        _hasher.verify(user.password_hash, current)
    except (VerificationError, InvalidHashError):
        raise InvalidInput("the current password is wrong") from None
    if new == current:
        raise InvalidInput("the new password must differ from the current one")
    ended = set_password(session, user, new)
    audit.record(
        session,
        user.id,
        "auth.password",
        f"user:{user.id}",
        f"sessions_ended={ended}",
        role=user.role,
    )
    return user


def end_session(session: Session, token: str) -> None:
    """Delete the session so its cookie can never be replayed."""
    row = session.scalar(select(UserSession).where(UserSession.token_hash == _token_hash(token)))
    if row is not None:
        audit.record(session, row.user_id, "auth.logout", f"user:{row.user_id}")
        session.execute(delete(UserSession).where(UserSession.id == row.id))
