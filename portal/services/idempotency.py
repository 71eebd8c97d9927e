"""Idempotency keys: a create request retried with the same key is answered, not redone.

A client that did not get an answer (timeout, dropped connection) cannot tell whether its
import, comment or token was made. Sending the same `Idempotency-Key` again returns the
first response. The key is reserved before the work starts, so a retry racing the first
attempt is told to wait (`Conflict`) instead of doing the work a second time. Only
successful (2xx) responses are kept; a failed attempt frees its key for a retry.

>>> fingerprint("POST", "/api/v1/tokens", b"", [b'{"name": "ci"}'])[:12]
'5bb725df823f'
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from portal.db.models import IdempotencyKey
from portal.services.errors import Conflict, IdempotencyMismatch, InvalidInput

MAX_KEY_LENGTH = 128
KEEP_FOR = timedelta(hours=24)
# A reservation this old belongs to an attempt that died (server restart) and is retaken.
STALE_AFTER = timedelta(minutes=15)
RUNNING = 0


@dataclass(frozen=True)
class Stored:
    """The first response to a request: its status and JSON body."""

    status: int
    body: str


def fingerprint(method: str, path: str, query: bytes, parts: Iterable[bytes]) -> str:
    """SHA-256 (hex) of a request: method, path, query string and body parts in order."""
    digest = hashlib.sha256()
    for chunk in (method.encode(), path.encode(), query):
        digest.update(len(chunk).to_bytes(8, "big") + chunk)
    for part in parts:
        digest.update(len(part).to_bytes(8, "big") + part)
    return digest.hexdigest()


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)  # SQLite drops the zone


def check_key(key: str) -> str:
    """The key, stripped; InvalidInput if empty or longer than MAX_KEY_LENGTH."""
    key = key.strip()
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise InvalidInput(f"Idempotency-Key must be 1-{MAX_KEY_LENGTH} printable characters")
    return key


def seen(session: Session, user_id: int, key: str) -> bool:
    """True when `user_id` used `key` in the last day (its answer may be replayed)."""
    created = session.scalar(
        select(IdempotencyKey.created_at).where(
            IdempotencyKey.user_id == user_id, IdempotencyKey.key == key
        )
    )
    return created is not None and _aware(created) >= datetime.now(UTC) - KEEP_FOR


def begin(
    session: Session, user_id: int, key: str, request_line: str, print_: str
) -> Stored | None:
    """Reserve `key` for this request, or return the response stored for it.

    Parameters
    ----------
    session
        Committed by the caller right after, so other attempts see the reservation.
    user_id, key
        Keys are per user: two users may use the same key.
    request_line
        ``"POST /api/v1/imports"``.
    print_
        The request's `fingerprint`.

    Returns
    -------
    Stored or None
        The first response when the key was used before for the same request; None when
        the key is now reserved and the caller must do the work, then `finish` or `abandon`.

    Raises
    ------
    IdempotencyMismatch
        The key was used for another request (other route or other body).
    Conflict
        The first request with this key is still running.
    """
    now = datetime.now(UTC)
    row = session.scalar(
        select(IdempotencyKey).where(IdempotencyKey.user_id == user_id, IdempotencyKey.key == key)
    )
    if row is not None and _aware(row.created_at) < now - KEEP_FOR:
        session.delete(row)  # expired: the key is free again
        session.flush()
        row = None
    if row is not None:
        if row.request_line != request_line or row.fingerprint != print_:
            raise IdempotencyMismatch(
                "this Idempotency-Key was used for a different request; use a new key"
            )
        if row.status != RUNNING:
            return Stored(row.status, row.body)
        if _aware(row.created_at) > now - STALE_AFTER:
            raise Conflict("the first request with this Idempotency-Key is still running")
        row.created_at = now  # the first attempt died: this one takes over
        return None
    session.add(
        IdempotencyKey(
            user_id=user_id,
            key=key,
            request_line=request_line,
            fingerprint=print_,
            status=RUNNING,
            body="",
            created_at=now,
        )
    )
    try:
        session.flush()
    except IntegrityError as exc:
        # Another attempt reserved the key between our read and our insert.
        raise Conflict("the first request with this Idempotency-Key is still running") from exc
    return None


def finish(session: Session, user_id: int, key: str, status: int, body: str) -> None:
    """Store the response of the request that reserved `key`; drop keys older than a day."""
    row = session.scalar(
        select(IdempotencyKey).where(IdempotencyKey.user_id == user_id, IdempotencyKey.key == key)
    )
    if row is not None:
        row.status = status
        row.body = body
    purge(session)


def abandon(session: Session, user_id: int, key: str) -> None:
    """Free `key` after its request failed, so the client may retry with it."""
    session.execute(
        delete(IdempotencyKey)
        .where(
            IdempotencyKey.user_id == user_id,
            IdempotencyKey.key == key,
            IdempotencyKey.status == RUNNING,
        )
        .execution_options(synchronize_session=False)
    )


def purge(session: Session, now: datetime | None = None) -> int:
    """Delete stored responses older than `KEEP_FOR`; returns how many."""
    cutoff = (now or datetime.now(UTC)) - KEEP_FOR
    # No in-session sync: loaded rows' SQLite datetimes are naive, the cutoff is not.
    result = session.execute(
        delete(IdempotencyKey)
        .where(IdempotencyKey.created_at < cutoff)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)
