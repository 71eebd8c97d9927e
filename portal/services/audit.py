"""Audit trail. Entries carry ids and coded values only, never patient data."""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session

from portal.db.models import AuditEntry

log = logging.getLogger(__name__)


def record(
    session: Session, user_id: int | None, action: str, target: str = "", detail: str = ""
) -> None:
    """Add an audit entry to the caller's transaction (it lands only if that commits)."""
    session.add(AuditEntry(user_id=user_id, action=action, target=target, detail=detail))
    log.info("audit %s user=%s target=%s %s", action, user_id, target, detail)
