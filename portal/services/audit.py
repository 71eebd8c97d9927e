"""Audit trail. Entries carry ids and coded values only, never patient data.

Entries are added to the caller's transaction, so an action and its audit row land or
fail together. Rows are never updated or deleted by the application (migration 0006
adds triggers that refuse it on both database kinds).

Who and from where: the web layer binds a `RequestContext` (client address, the
signed-in user's role, the login session) for the length of each request, and `record`
fills those columns from it unless the caller says otherwise. This module stays free
of Flask: outside a request (CLI, import worker) the context is empty.
"""

from __future__ import annotations

import csv
import enum
import io
import logging
from collections.abc import Iterable, Mapping
from contextvars import ContextVar, Token
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from portal.db.models import AuditEntry, Role, Study, StudyView, User
from portal.services.errors import InvalidInput, PermissionDenied

if TYPE_CHECKING:  # auth imports this module to record sign-ins
    from portal.services.auth import Principal

log = logging.getLogger(__name__)

# Every action the application records, and what an entry of it means. `record` refuses
# names missing here, so the table stays the complete reference for auditors.
ACTIONS: dict[str, str] = {
    "auth.login": "sign-in: ok; failed (unknown user or wrong password); denied (throttled)",
    "auth.logout": "sign-out (the login session is deleted)",
    "token.create": "a personal access token was created (detail: scopes, lifetime)",
    "token.revoke": "a personal access token was revoked",
    "export.review": "review results exported (detail: format and row count)",
    "report.view": "a study's printable review report was opened",
    "auth.password": "a user changed their own password (their other sessions end)",
    "admin.create_user": "an administrator created a user (detail: role)",
    "admin.set_role": "an administrator changed a user's global role",
    "admin.deactivate": "an administrator deactivated a user (their sessions end)",
    "admin.reactivate": "an administrator reactivated a user",
    "admin.reset_password": "an administrator set a user's password (their sessions end)",
    "admin.force_logout": "an administrator ended all of a user's sessions",
    "admin.create_project": "an administrator created a project",
    "admin.set_reads": "an administrator changed a project's required reads",
    "admin.add_member": "an administrator added a member to a project (detail: role)",
    "admin.set_member_role": "an administrator changed a member's project role",
    "admin.remove_member": "an administrator removed a member from a project",
    "admin.refused": "a non-administrator attempted an administrator operation",
    "pacs.search": "a remote archive was searched (detail: which fields, never values)",
    "import.pacs": "an import from a remote archive was queued (detail: source, count)",
    "access.denied": "a route or callback refused: the target does not exist, is not "
    "visible to the user, or the user may not do this (detail says which endpoint)",
    "study.view": "first fetch of a study's data (detail, previews, volumes, review, "
    "viewer pane) in a login session; detail says through what",
    "study.import": "a study was imported (or a new version of it)",
    "segmentation.add": "a segmentation was added to an existing study (detail: its id and "
    "label count)",
    "import.queued": "an import job was queued",
    "import.finished": "an import job ended (detail has its status)",
    "review.transition": "a review item changed state outside a reading round",
    "review.read": "a reader's verdict on a review item",
    "review.comment": "a comment or reply on a review item",
    "review.resolve": "a comment thread was resolved",
    "review.assign": "a study was assigned to a reader",
    "review.unassign": "a study's assignment was ended",
    "user.create": "a user account was created (detail has the role)",
    "user.update": "an admin changed a user's role, active flag or projects",
    "user.password": "a user's password was set or reset",
    "project.create": "a project was created",
    "project.update": "an admin changed a project's settings or members",
    "study.export": "study data (images, segmentations or reads) was exported",
    "study.download": "a study's original files were downloaded",
    "report.export": "a review report was exported",
    "live.open": "studies were pushed to a user's open tabs (detail: count; for_user and "
    "by_user when an administrator acted for another user)",
    "audit.export": "the audit log was exported as CSV (detail has the filter)",
}


class Outcome(enum.StrEnum):
    OK = "ok"
    DENIED = "denied"
    FAILED = "failed"


# The role written for requests without a signed-in user (e.g. a failed sign-in).
ANONYMOUS = "anonymous"


@dataclass(frozen=True)
class RequestContext:
    """Who is asking and from where, for the length of one request.

    `session_key` identifies the login session (the stored hash of its token), so that
    "first view per session" holds across workers; empty outside a login session.
    """

    address: str = ""
    role: str = ""
    session_key: str = ""


_NO_REQUEST = RequestContext()  # frozen, so safe to share as the default
_context: ContextVar[RequestContext] = ContextVar("portal_audit_context", default=_NO_REQUEST)


def bind(context: RequestContext) -> Token[RequestContext]:
    """Make `context` the default for audit rows until `unbind` is called with the token."""
    return _context.set(context)


def unbind(token: Token[RequestContext]) -> None:
    _context.reset(token)


def current_context() -> RequestContext:
    return _context.get()


def record(
    session: Session,
    user_id: int | None,
    action: str,
    target: str = "",
    detail: str = "",
    *,
    role: str | None = None,
    study_uid: str = "",
    outcome: str = Outcome.OK,
    address: str | None = None,
) -> None:
    """Add an audit entry to the caller's transaction (it lands only if that commits).

    Parameters
    ----------
    user_id, role
        Who acted (None for the system or an anonymous client) and their role then;
        `role` defaults to the request's.
    action
        A name from `ACTIONS`, e.g. ``review.read``, ``auth.login``, ``study.view``.
    target
        What was acted on, as ``kind:id``.
    detail
        Ids and coded values only, never patient data (names, DICOM identifiers, paths).
    study_uid
        The portal's study UID when a study is involved (not a DICOM identifier).
    outcome
        ``ok``, ``denied`` or ``failed``.
    address
        The client's address; defaults to the request's.

    Raises
    ------
    ValueError
        If `action` is not in `ACTIONS` or `outcome` is not an `Outcome`: a programming
        error, refused so that no undocumented action reaches the log.
    """
    if action not in ACTIONS:
        raise ValueError(f"audit action {action!r} is not in portal.services.audit.ACTIONS")
    outcome = Outcome(outcome).value
    context = _context.get()
    session.add(
        AuditEntry(
            user_id=user_id,
            role=(context.role if role is None else role)[:16],
            action=action[:32],
            target=target[:64],
            study_uid=study_uid[:32],
            outcome=outcome[:16],
            address=(context.address if address is None else address)[:64],
            detail=detail,
        )
    )
    log.info("audit %s user=%s target=%s outcome=%s %s", action, user_id, target, outcome, detail)


def _insert_view(session: Session, session_key: str, study_id: int) -> bool:
    """Insert (session, study) unless present; True if this call inserted it."""
    seen = select(StudyView.id).where(
        StudyView.session_key == session_key, StudyView.study_id == study_id
    )
    if session.scalar(seen) is not None:
        # The usual case (every further fetch) stays a read: on SQLite a write would
        # queue behind every other worker's, once per thumbnail of the case list.
        return False
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = (
        insert(StudyView)
        .values(session_key=session_key, study_id=study_id, at=datetime.now(UTC))
        .on_conflict_do_nothing(index_elements=["session_key", "study_id"])
        .returning(StudyView.id)
    )
    # A racing request blocks on the unique key until this one commits, then does nothing.
    # (RETURNING, not rowcount: drivers do not all report rowcount for this statement.)
    return session.execute(statement).first() is not None


def study_viewed(session: Session, user_id: int, role: str, study: Study, via: str) -> bool:
    """Record ``study.view`` if this is the login session's first fetch of `study`'s data.

    Outside a login session (CLI, scripts) every fetch is recorded: there is nothing to
    remember it by. Returns whether an entry was added.

    Parameters
    ----------
    via
        What fetched it, e.g. ``detail``, ``preview:image.vti``, ``review``, ``pane``.
    """
    key = _context.get().session_key
    if key and not _insert_view(session, key, study.id):
        return False
    record(
        session,
        user_id,
        "study.view",
        f"study:{study.id}",
        f"via={via}",
        role=role,
        study_uid=study.uid,
    )
    return True


def record_denial(session: Session, user_id: int | None, target: str, detail: str) -> None:
    """Record an ``access.denied`` entry for a refused request on `target` (``kind:id``).

    Use a transaction of its own when the refused action's transaction rolls back. When
    the target is a study that exists, its UID is filled in, so that an auditor finds
    every attempt on a study (also by users who may not see it).
    """
    study_uid = ""
    kind, _, raw_id = target.partition(":")
    if kind == "study" and raw_id.isdigit():
        study_uid = session.scalar(select(Study.uid).where(Study.id == int(raw_id))) or ""
    record(
        session,
        user_id,
        "access.denied",
        target,
        detail,
        study_uid=study_uid,
        outcome=Outcome.DENIED,
    )


# --- reading the log (admins) -----------------------------------------------------------

MAX_PAGE = 1000
MAX_ID = 2**31 - 1  # ids are INTEGER columns on PostgreSQL


@dataclass(frozen=True)
class AuditFilter:
    """Which entries to list, newest first; all fields optional.

    `since` is inclusive and `until` exclusive (UTC). Paging is by id: `before_id` asks
    for entries older than that id (the previous page's `next_before`).
    """

    since: datetime | None = None
    until: datetime | None = None
    user: str = ""
    action: str = ""
    outcome: str = ""
    study_uid: str = ""
    before_id: int | None = None
    limit: int = 50

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> AuditFilter:
        """Build from request-style strings: ``from``/``to`` (dates ``YYYY-MM-DD``, both
        inclusive, or ISO datetimes), ``user`` (username), ``action``, ``outcome``,
        ``study_uid``, ``before`` and ``limit``.

        Raises
        ------
        InvalidInput
            If a value cannot be read, naming the parameter.
        """

        def text(name: str) -> str:
            return str(params.get(name) or "").strip()

        def integer(name: str, default: int | None) -> int | None:
            raw = text(name)
            if not raw:
                return default
            # Bounded by the id column's range: a larger number would be a database error.
            if not raw.isdigit() or int(raw) > MAX_ID:
                raise InvalidInput(f"{name} must be a whole number up to {MAX_ID}")
            return int(raw)

        action, outcome = text("action"), text("outcome")
        if action and action not in ACTIONS:
            raise InvalidInput(f"action must be one of {', '.join(sorted(ACTIONS))}")
        if outcome and outcome not in set(Outcome):
            raise InvalidInput(f"outcome must be one of {', '.join(Outcome)}")
        limit = integer("limit", 50) or 50
        return cls(
            since=_instant(text("from"), "from", end_of_day=False),
            until=_instant(text("to"), "to", end_of_day=True),
            user=text("user"),
            action=action,
            outcome=outcome,
            study_uid=text("study_uid"),
            before_id=integer("before", None),
            limit=min(limit, MAX_PAGE),
        )

    def describe(self) -> str:
        """The filter as ``name=value`` pairs (ids and coded values), for the audit row."""
        parts = [
            f"{name}={value.isoformat() if isinstance(value, datetime) else value}"
            for name, value in (
                ("from", self.since),
                ("to", self.until),
                ("user", self.user),
                ("action", self.action),
                ("outcome", self.outcome),
                ("study_uid", self.study_uid),
            )
            if value
        ]
        return " ".join(parts) or "all"


def _instant(raw: str, name: str, *, end_of_day: bool) -> datetime | None:
    """A date (the day's start, or the next day's start for an inclusive end) or datetime."""
    if not raw:
        return None
    try:
        if len(raw) == 10:
            day = date.fromisoformat(raw)
            if end_of_day:
                day += timedelta(days=1)
            return datetime.combine(day, time(), tzinfo=UTC)
        value = datetime.fromisoformat(raw)
    except ValueError as exc:
        raise InvalidInput(f"{name} must be a date (YYYY-MM-DD) or an ISO datetime") from exc
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@dataclass(frozen=True)
class AuditPage:
    items: list[dict[str, Any]]
    # Pass as `before_id` for the next, older page; None when this page is the last.
    next_before: int | None


def require_admin(principal: Principal) -> None:
    """Only admins read the audit log.

    Raises
    ------
    PermissionDenied
        For everyone else.
    """
    if principal.role is not Role.ADMIN:
        raise PermissionDenied("only administrators may read the audit log")


def query_audit(session: Session, principal: Principal, filters: AuditFilter) -> AuditPage:
    """One page of audit entries matching `filters`, newest first (admins only).

    Raises
    ------
    PermissionDenied
        If `principal` is not an admin.
    """
    require_admin(principal)
    stmt = (
        select(AuditEntry, User.username)
        .outerjoin(User, User.id == AuditEntry.user_id)
        .order_by(AuditEntry.id.desc())
        .limit(max(1, min(filters.limit, MAX_PAGE)) + 1)
    )
    if filters.since is not None:
        stmt = stmt.where(AuditEntry.at >= filters.since)
    if filters.until is not None:
        stmt = stmt.where(AuditEntry.at < filters.until)
    if filters.user:
        stmt = stmt.where(User.username == filters.user)
    if filters.action:
        stmt = stmt.where(AuditEntry.action == filters.action)
    if filters.outcome:
        stmt = stmt.where(AuditEntry.outcome == filters.outcome)
    if filters.study_uid:
        stmt = stmt.where(AuditEntry.study_uid == filters.study_uid)
    if filters.before_id is not None:
        stmt = stmt.where(AuditEntry.id < filters.before_id)
    rows = session.execute(stmt).all()
    limit = max(1, min(filters.limit, MAX_PAGE))
    more = len(rows) > limit
    items = [_entry(entry, username) for entry, username in rows[:limit]]
    return AuditPage(items=items, next_before=items[-1]["id"] if more else None)


def _entry(entry: AuditEntry, username: str | None) -> dict[str, Any]:
    at = entry.at if entry.at.tzinfo else entry.at.replace(tzinfo=UTC)  # SQLite drops it
    return {
        "id": entry.id,
        "at": at.astimezone(UTC).isoformat(timespec="seconds"),
        "user_id": entry.user_id,
        "username": username or "",
        "role": entry.role,
        "action": entry.action,
        "target": entry.target,
        "study_uid": entry.study_uid,
        "outcome": entry.outcome,
        "address": entry.address,
        "detail": entry.detail,
    }


CSV_COLUMNS = (
    "id",
    "at",
    "user_id",
    "username",
    "role",
    "action",
    "target",
    "study_uid",
    "outcome",
    "address",
    "detail",
)


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    # A leading = + - @ makes spreadsheets evaluate the cell; a quote keeps it text.
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def to_csv(items: Iterable[dict[str, Any]], *, header: bool) -> str:
    """CSV text of audit entries (from `query_audit`), with the header row if asked."""
    out = io.StringIO()
    writer = csv.writer(out)
    if header:
        writer.writerow(CSV_COLUMNS)
    for item in items:
        writer.writerow([_cell(item[column]) for column in CSV_COLUMNS])
    return out.getvalue()
