"""Personal access tokens for scripts and other applications (`Authorization: Bearer`).

A token is `ptk_` plus 32 random bytes (URL-safe base64). Only its SHA-256 is stored, so
a leaked catalog does not leak tokens; the token is shown once, when created. Tokens are
scoped (`read`: GET requests; `review`: also writes such as reads, comments, imports;
`admin`: also the administrator routes), expire, and can be revoked; a deactivated
user's tokens stop working with them.
"""

from __future__ import annotations

import enum
import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.db.models import ApiToken, User
from portal.services import audit
from portal.services.auth import Principal
from portal.services.errors import InvalidInput, NotFound

PREFIX = "ptk_"
MAX_DAYS = 365
MAX_TOKENS_PER_USER = 50


class Scope(enum.StrEnum):
    READ = "read"
    REVIEW = "review"
    ADMIN = "admin"


# Routes that only administrators may use: a token needs the admin scope for them too.
ADMIN_PATHS = ("/api/v1/audit", "/api/v1/users", "/api/v1/admin")
# Acting on another user's tabs (the live channel) is an administrator's operation too.
ON_BEHALF_PATH = re.compile(r"^/api/v1/sessions/\d+/")


def required_scope(method: str, path: str) -> Scope:
    """The scope a request needs: admin routes `admin`, other reads `read`, writes `review`."""
    if path.startswith(ADMIN_PATHS) or ON_BEHALF_PATH.match(path):
        return Scope.ADMIN
    if method in ("GET", "HEAD", "OPTIONS"):
        return Scope.READ
    return Scope.REVIEW


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)  # SQLite drops the zone


def parse_scopes(raw: list[str] | str) -> list[Scope]:
    """`["read", "review"]` or `"read review"` -> scopes; `admin` implies the others."""
    names = raw.replace(",", " ").split() if isinstance(raw, str) else list(raw)
    try:
        scopes = {Scope(n.strip()) for n in names if n.strip()}
    except ValueError as exc:
        raise InvalidInput("scopes are read, review and admin") from exc
    if not scopes:
        raise InvalidInput("choose at least one scope: read, review, admin")
    if Scope.ADMIN in scopes:
        scopes |= {Scope.READ, Scope.REVIEW}
    if Scope.REVIEW in scopes:
        scopes.add(Scope.READ)
    return sorted(scopes, key=list(Scope).index)


def create_token(
    session: Session, principal: Principal, name: str, scopes: list[Scope], days: int = 90
) -> tuple[ApiToken, str]:
    """Create a token for `principal` and return its row and the token (shown once).

    Raises
    ------
    InvalidInput
        For an empty or long name, a lifetime outside 1-365 days, too many tokens, or
        the admin scope asked by a non-administrator.
    """
    name = (name or "").strip()
    if not name or len(name) > 64:
        raise InvalidInput("name the token (1-64 characters), e.g. the script that uses it")
    if not 1 <= days <= MAX_DAYS:
        raise InvalidInput(f"a token lives 1-{MAX_DAYS} days")
    if Scope.ADMIN in scopes and not principal.is_admin:
        raise InvalidInput("only administrators can create admin tokens")
    live = session.scalars(
        select(ApiToken.id).where(
            ApiToken.user_id == principal.user_id, ApiToken.revoked_at.is_(None)
        )
    ).all()
    if len(live) >= MAX_TOKENS_PER_USER:
        raise InvalidInput(f"you have {len(live)} tokens: revoke some first")
    token = PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(
        user_id=principal.user_id,
        name=name,
        token_hash=_hash(token),
        prefix=token[:10],
        scopes=" ".join(s.value for s in scopes),
        expires_at=datetime.now(UTC) + timedelta(days=days),
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        principal.user_id,
        "token.create",
        f"token:{row.id}",
        f"scopes={row.scopes} days={days}",
        role=principal.role.value,
    )
    return row, token


def token_view(row: ApiToken) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "id": row.id,
        "name": row.name,
        "prefix": row.prefix,
        "scopes": row.scopes.split(),
        "created_at": _aware(row.created_at).isoformat(),
        "expires_at": _aware(row.expires_at).isoformat(),
        "last_used_at": _aware(row.last_used_at).isoformat() if row.last_used_at else None,
        "revoked": row.revoked_at is not None,
        "expired": _aware(row.expires_at) <= now,
    }


def list_tokens(session: Session, principal: Principal) -> list[dict[str, Any]]:
    """`principal`'s own tokens, newest first (never the tokens themselves)."""
    rows = session.scalars(
        select(ApiToken).where(ApiToken.user_id == principal.user_id).order_by(ApiToken.id.desc())
    )
    return [token_view(r) for r in rows]


def revoke_token(session: Session, principal: Principal, token_id: int) -> None:
    """Revoke one of `principal`'s tokens (an administrator may revoke anyone's)."""
    row = session.get(ApiToken, token_id)
    if row is None or (row.user_id != principal.user_id and not principal.is_admin):
        raise NotFound(f"token {token_id} not found")
    if row.revoked_at is None:
        row.revoked_at = datetime.now(UTC)
        audit.record(
            session,
            principal.user_id,
            "token.revoke",
            f"token:{row.id}",
            f"owner={row.user_id}",
            role=principal.role.value,
        )


@dataclass(frozen=True)
class TokenUse:
    """Who a valid token speaks for, and what it may do."""

    user: User
    token_id: int
    scopes: frozenset[Scope]


def resolve_token(session: Session, token: str) -> TokenUse | None:
    """The user and scopes of a live token; None if unknown, expired, revoked or the
    user is deactivated. Marks the token used (at most once a minute)."""
    if not token.startswith(PREFIX) or len(token) > 100:
        return None
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == _hash(token)))
    now = datetime.now(UTC)
    if row is None or row.revoked_at is not None or _aware(row.expires_at) <= now:
        return None
    if not row.user.is_active:
        return None
    if row.last_used_at is None or now - _aware(row.last_used_at) > timedelta(minutes=1):
        row.last_used_at = now
    return TokenUse(
        user=row.user,
        token_id=row.id,
        scopes=frozenset(Scope(s) for s in row.scopes.split()),
    )
