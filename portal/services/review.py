"""Review flags: the event history plus the study's current status, in one transaction."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.orm import Session

from portal.db.models import ReviewEvent, ReviewStatus, Study
from portal.services import audit
from portal.services.auth import Principal
from portal.services.catalog import get_study
from portal.services.errors import InvalidInput

MAX_REASON = 2000


def set_flag(
    session: Session, principal: Principal, study_id: int, status: ReviewStatus, reason: str = ""
) -> Study:
    """Record `principal`'s review decision on a study they may see.

    Raises
    ------
    NotFound
        If the study is not visible to `principal`.
    InvalidInput
        If `flagged-for-expert` comes without a reason, or the reason is too long.
    """
    study = get_study(session, principal, study_id)
    reason = reason.strip()
    if status is ReviewStatus.UNREVIEWED:
        raise InvalidInput("choose approved, needs-edit or flagged-for-expert")
    if status is ReviewStatus.FLAGGED_FOR_EXPERT and not reason:
        raise InvalidInput("say why the study needs an expert")
    if len(reason) > MAX_REASON:
        raise InvalidInput(f"reason is longer than {MAX_REASON} characters")
    now = datetime.now(UTC)
    session.add(
        ReviewEvent(
            study_id=study.id,
            user_id=principal.user_id,
            status=status.value,
            reason=reason,
            created_at=now,
        )
    )
    study.review_status = status.value
    study.review_reason = reason
    study.reviewed_by_id = principal.user_id
    study.reviewed_at = now
    audit.record(session, principal.user_id, "review.flag", f"study:{study.id}", status.value)
    session.flush()
    session.refresh(study, ["reviewed_by"])
    return study
