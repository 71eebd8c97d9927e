"""Audit trail. Entries carry ids and coded values only, never patient data.

Entries are added to the caller's transaction, so an action and its audit row land or
fail together. Rows are never updated or deleted by the application.
"""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session

from portal.db.models import AuditEntry

log = logging.getLogger(__name__)


def record(
    session: Session,
    user_id: int | None,
    action: str,
    target: str = "",
    detail: str = "",
    *,
    role: str = "",
    study_uid: str = "",
    outcome: str = "ok",
    address: str = "",
) -> None:
    """Add an audit entry to the caller's transaction (it lands only if that commits).

    Parameters
    ----------
    user_id, role
        Who acted (None for the system or an anonymous client) and their role then.
    action
        Dotted verb, e.g. ``review.read``, ``auth.login``, ``study.view``.
    target
        What was acted on, as ``kind:id``.
    study_uid
        The portal's study UID when a study is involved (not a DICOM identifier).
    outcome
        ``ok``, ``denied`` or ``failed``.
    address
        The client's address as the web layer saw it.
    """
    session.add(
        AuditEntry(
            user_id=user_id,
            role=role[:16],
            action=action[:32],
            target=target[:64],
            study_uid=study_uid[:32],
            outcome=outcome[:16],
            address=address[:64],
            detail=detail,
        )
    )
    log.info("audit %s user=%s target=%s outcome=%s %s", action, user_id, target, outcome, detail)
