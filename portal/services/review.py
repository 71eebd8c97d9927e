"""The review workflow: items, reads and transitions (the state machine).

Comments live in `services.comments`, assignments in `services.assignments`, and what a
user sees of a study's review in `services.review_view`.

Every change to a review item is a compare-and-set on its `version` (the version the
client saw travels with the request), plus an appended `ReviewEvent` and an audit row,
all in the caller's transaction. Nothing is overwritten: the history is the events.

States (`ReviewStatus`)::

    unreviewed -> in-review -> approved | needs-edit | flagged-for-expert
    flagged-for-expert -> approved | needs-edit | rejected      (expert, with a note)

A reader's verdict is a *read*. A project that needs N reads keeps the item `in-review`
until N readers have submitted; readers do not see each other's verdicts before they
submit their own. N agreeing reads decide the state; disagreeing ones go to the expert
queue with the agreement figures.
"""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import combinations
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from portal.db.models import (
    Assignment,
    LabelVerdict,
    ProjectRole,
    ReviewAction,
    ReviewEvent,
    ReviewItem,
    ReviewRead,
    ReviewStatus,
    Study,
)
from portal.services import audit
from portal.services.auth import Principal
from portal.services.catalog import get_study, project_role
from portal.services.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from portal.services.segmentations import dice_between

MAX_REASON = 2000
IMAGE_KEY = "image"

OPEN = {ReviewStatus.UNREVIEWED, ReviewStatus.IN_REVIEW}
_READ_VERDICTS = {
    ReviewStatus.APPROVED,
    ReviewStatus.NEEDS_EDIT,
    ReviewStatus.FLAGGED_FOR_EXPERT,
}
_RESOLUTIONS = {ReviewStatus.APPROVED, ReviewStatus.NEEDS_EDIT, ReviewStatus.REJECTED}
READERS = {ProjectRole.REVIEWER, ProjectRole.EXPERT, ProjectRole.LEAD}
EXPERTS = {ProjectRole.EXPERT, ProjectRole.LEAD}


def now() -> datetime:
    return datetime.now(UTC)


def seg_key(segmentation_id: int) -> str:
    return f"seg:{segmentation_id}"


def ensure_items(session: Session, study: Study) -> list[ReviewItem]:
    """Create the study's missing review items: one per segmentation, one for the image.

    Called at import; also on first use, for studies imported before items existed.
    """
    have = {item.key for item in study.review_items}
    wanted = [(IMAGE_KEY, None)] + [(seg_key(seg.id), seg.id) for seg in study.segmentations]
    for key, seg_id in wanted:
        if key not in have:
            study.review_items.append(ReviewItem(key=key, segmentation_id=seg_id))
    session.flush()
    return list(study.review_items)


def primary_item(study: Study) -> ReviewItem:
    """The item the study's overall status follows: its first segmentation, else the image."""
    items = {item.key: item for item in study.review_items}
    for seg in study.segmentations:
        if seg_key(seg.id) in items:
            return items[seg_key(seg.id)]
    return items[IMAGE_KEY]


def summary_status(study: Study) -> ReviewStatus:
    """The study's status in the case list, from its segmentations' items (or the image's).

    The most urgent state wins: a flag anywhere flags the study; it is approved only when
    every segmentation is.
    """
    keys = {seg_key(seg.id) for seg in study.segmentations} or {IMAGE_KEY}
    states = {ReviewStatus(i.state) for i in study.review_items if i.key in keys}
    for urgent in (
        ReviewStatus.FLAGGED_FOR_EXPERT,
        ReviewStatus.NEEDS_EDIT,
        ReviewStatus.REJECTED,
    ):
        if urgent in states:
            return urgent
    if states == {ReviewStatus.APPROVED}:
        return ReviewStatus.APPROVED
    if states <= {ReviewStatus.UNREVIEWED}:
        return ReviewStatus.UNREVIEWED
    return ReviewStatus.IN_REVIEW


def role_in(session: Session, principal: Principal, study: Study) -> ProjectRole:
    role = project_role(session, principal, study.project_id)
    if role is None:  # visible_studies already refused non-members; be explicit anyway
        raise NotFound(f"study {study.id} not found")
    return role


def item_for(session: Session, principal: Principal, item_id: int) -> tuple[ReviewItem, Study]:
    """The item and its study, if `principal` may see the study (else NotFound)."""
    item = session.get(ReviewItem, item_id)
    if item is None:
        raise NotFound(f"review item {item_id} not found")
    study = get_study(session, principal, item.study_id)  # the access rule
    return item, study


def _check_reason(reason: str, required: str = "") -> str:
    reason = (reason or "").strip()
    if required and not reason:
        raise InvalidInput(required)
    if len(reason) > MAX_REASON:
        raise InvalidInput(f"reason is longer than {MAX_REASON} characters")
    return reason


def _compare_and_set(
    session: Session,
    principal: Principal,
    item: ReviewItem,
    expected_version: int | None,
    **values: Any,
) -> None:
    """Bump the item's version if it is still `expected_version`; else raise Conflict.

    The WHERE clause is evaluated by the database at write time, so of two racing
    writers exactly one succeeds, on SQLite and on PostgreSQL alike.
    """
    expected = item.version if expected_version is None else int(expected_version)
    result = session.execute(
        update(ReviewItem)
        .where(ReviewItem.id == item.id, ReviewItem.version == expected)
        .values(
            version=ReviewItem.version + 1,
            updated_at=now(),
            updated_by_id=principal.user_id,
            **values,
        )
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        session.refresh(item)
        who = item.updated_by.username if item.updated_by else "someone"
        raise Conflict(
            f"this item was changed by {who} (now {item.state}, version {item.version}; "
            f"you had version {expected}): reload and decide again"
        )
    session.refresh(item)


def record_event(
    session: Session,
    principal: Principal,
    item: ReviewItem,
    action: ReviewAction,
    from_status: str,
    reason: str = "",
) -> None:
    session.add(
        ReviewEvent(
            study_id=item.study_id,
            item_id=item.id,
            user_id=principal.user_id,
            action=action.value,
            from_status=from_status,
            status=item.state,
            reason=reason,
            created_at=now(),
        )
    )


def _sync_study(session: Session, principal: Principal, study: Study, reason: str) -> None:
    """Keep the study's denormalised status (the case list filters on it) in step."""
    session.refresh(study, ["review_items"])
    study.review_status = summary_status(study).value
    study.review_reason = reason
    study.reviewed_by_id = principal.user_id
    study.reviewed_at = now()


def audit_study(
    session: Session, principal: Principal, study: Study, action: str, detail: str
) -> None:
    audit.record(
        session,
        principal.user_id,
        action,
        f"study:{study.id}",
        detail,
        role=principal.role.value,
        study_uid=study.uid,
    )


def transition(
    session: Session,
    principal: Principal,
    item_id: int,
    to: ReviewStatus,
    reason: str = "",
    expected_version: int | None = None,
) -> ReviewItem:
    """Move an item to another state outside the reading rounds.

    Allowed moves:

    - anyone who reads (reviewer, expert, lead): `unreviewed -> in-review` (start);
      `approved | needs-edit -> flagged-for-expert` (escalate, with a reason);
    - experts and leads: `flagged-for-expert -> approved | needs-edit | rejected` (resolve,
      with a note); any decided state `-> in-review` (reopen, with a reason), which starts
      a new round of reads.

    Raises
    ------
    NotFound
        If the item's study is not visible to `principal`.
    PermissionDenied
        If their role in the project does not allow this move.
    InvalidInput
        If the move is not allowed from the current state or a reason is missing.
    Conflict
        If the item changed since `expected_version`.
    """
    item, study = item_for(session, principal, item_id)
    role = role_in(session, principal, study)
    if role not in READERS:
        raise PermissionDenied("viewers cannot change a review")
    current = ReviewStatus(item.state)
    if expected_version is not None and int(expected_version) != item.version:
        _compare_and_set(session, principal, item, expected_version)  # raises Conflict
    new_round = item.round
    if current is ReviewStatus.UNREVIEWED and to is ReviewStatus.IN_REVIEW:
        reason = _check_reason(reason)
    elif to is ReviewStatus.FLAGGED_FOR_EXPERT and current in {
        ReviewStatus.APPROVED,
        ReviewStatus.NEEDS_EDIT,
        ReviewStatus.IN_REVIEW,
        ReviewStatus.UNREVIEWED,
    }:
        reason = _check_reason(reason, "say why the segmentation needs an expert")
    elif current is ReviewStatus.FLAGGED_FOR_EXPERT and to in _RESOLUTIONS:
        if role not in EXPERTS:
            raise PermissionDenied("only an expert or the project lead resolves a flag")
        reason = _check_reason(reason, "add a note saying how the flag was resolved")
    elif to is ReviewStatus.IN_REVIEW and current not in OPEN:
        if role not in EXPERTS:
            raise PermissionDenied("only an expert or the project lead reopens a review")
        reason = _check_reason(reason, "say why the review is reopened")
        new_round = item.round + 1
    else:
        raise InvalidInput(f"cannot go from {current.value} to {to.value}")
    _compare_and_set(session, principal, item, expected_version, state=to.value, round=new_round)
    record_event(session, principal, item, ReviewAction.TRANSITION, current.value, reason)
    _sync_study(session, principal, study, reason)
    audit_study(session, principal, study, "review.transition", f"item={item.id} {current}->{to}")
    session.flush()
    return item


def _label_verdicts(study: Study, item: ReviewItem, raw: dict[Any, Any] | None) -> dict[str, str]:
    if not raw:
        return {}
    if item.segmentation is None:
        raise InvalidInput("label verdicts need a segmentation, not the image item")
    values = {lab.value for lab in item.segmentation.labels}
    out: dict[str, str] = {}
    for key, verdict in raw.items():
        try:
            value = int(key)
            out[str(value)] = LabelVerdict(verdict).value
        except ValueError as exc:
            raise InvalidInput(
                f"label verdict {key!r}: {verdict!r} is not one of "
                + ", ".join(v.value for v in LabelVerdict)
            ) from exc
        if value not in values:
            raise InvalidInput(f"label {value} is not in segmentation {item.segmentation.name!r}")
    return out


def submit_read(
    session: Session,
    principal: Principal,
    item_id: int,
    verdict: ReviewStatus,
    note: str = "",
    label_verdicts: dict[Any, Any] | None = None,
    expected_version: int | None = None,
    segmentation_id: int | None = None,
    store_dir: Path | None = None,
) -> ReviewItem:
    """Record `principal`'s read of an open item and decide it once enough reads are in.

    With `required_reads` = 1 the read decides the state at once. With more, the item
    stays `in-review` until that many readers have read it in this round; then agreeing
    verdicts decide it and any disagreement sends it to the expert queue.

    Raises
    ------
    NotFound, PermissionDenied, InvalidInput, Conflict
        As for `transition`; InvalidInput also when this reader already read this round.
    """
    item, study = item_for(session, principal, item_id)
    role = role_in(session, principal, study)
    if role not in READERS:
        raise PermissionDenied("viewers cannot submit a read")
    if verdict not in _READ_VERDICTS:
        raise InvalidInput("choose approved, needs-edit or flagged-for-expert")
    current = ReviewStatus(item.state)
    if current not in OPEN:
        if expected_version is not None and int(expected_version) != item.version:
            _compare_and_set(session, principal, item, expected_version)  # raises Conflict
        raise InvalidInput(f"this item is already {current.value}; an expert can reopen it")
    note = _check_reason(
        note,
        "say why the segmentation needs an expert"
        if verdict is ReviewStatus.FLAGGED_FOR_EXPERT
        else "",
    )
    verdicts = _label_verdicts(study, item, label_verdicts)
    if segmentation_id is not None and not any(
        seg.id == segmentation_id for seg in study.segmentations
    ):
        raise InvalidInput(f"segmentation {segmentation_id} is not one of this study's")
    already = session.scalar(
        select(ReviewRead.id).where(
            ReviewRead.item_id == item.id,
            ReviewRead.reader_id == principal.user_id,
            ReviewRead.round == item.round,
        )
    )
    if already is not None:
        raise InvalidInput("you already submitted your read of this item in this round")
    required = max(1, study.project.required_reads)
    reads = list(
        session.scalars(
            select(ReviewRead).where(ReviewRead.item_id == item.id, ReviewRead.round == item.round)
        )
    )
    new = ReviewRead(
        item_id=item.id,
        reader_id=principal.user_id,
        round=item.round,
        verdict=verdict.value,
        note=note,
        label_verdicts=verdicts,
        segmentation_id=segmentation_id,
        submitted_at=now(),
    )
    reads.append(new)
    reason = note
    if len(reads) < required:
        to = ReviewStatus.IN_REVIEW
    else:
        found = {r.verdict for r in reads}
        if len(found) == 1:
            to = verdict
        else:
            to = ReviewStatus.FLAGGED_FOR_EXPERT
            figures = agreement_of(session, reads, store_dir)
            reason = (
                f"readers disagree ({', '.join(sorted(found))}); "
                f"verdict agreement {figures['verdict_agreement']:.0%}"
            )
            if figures["dice"] is not None:
                reason += f", Dice {figures['dice']:.3f}"
    _compare_and_set(session, principal, item, expected_version, state=to.value)
    session.add(new)
    record_event(session, principal, item, ReviewAction.READ, current.value, note)
    if to is ReviewStatus.FLAGGED_FOR_EXPERT and reason != note:
        record_event(session, principal, item, ReviewAction.TRANSITION, to.value, reason)
    _end_assignment_if_read(session, principal, study)
    _sync_study(session, principal, study, reason)
    audit_study(session, principal, study, "review.read", f"item={item.id} verdict={verdict}")
    session.flush()
    return item


def _end_assignment_if_read(session: Session, principal: Principal, study: Study) -> None:
    """A reader's assignment ends once they have read every open item of the study."""
    session.flush()
    keys = {seg_key(seg.id) for seg in study.segmentations} or {IMAGE_KEY}
    for item in study.review_items:
        if item.key not in keys or ReviewStatus(item.state) not in OPEN:
            continue
        read = session.scalar(
            select(ReviewRead.id).where(
                ReviewRead.item_id == item.id,
                ReviewRead.reader_id == principal.user_id,
                ReviewRead.round == item.round,
            )
        )
        if read is None:
            return
    for a in session.scalars(
        select(Assignment).where(
            Assignment.study_id == study.id,
            Assignment.assignee_id == principal.user_id,
            Assignment.ended_at.is_(None),
        )
    ):
        a.ended_at = now()


def agreement_of(
    session: Session, reads: list[ReviewRead], store_dir: Path | None = None
) -> dict[str, Any]:
    """Pairwise verdict agreement of reads, and mean Dice between the readers' edits.

    `verdict_agreement` is the fraction of reader pairs with the same verdict (1.0 for
    a single read). `dice` is the mean over pairs of readers who both attached an edited
    segmentation, of the Dice coefficient of their label maps over all labels (None when
    fewer than two did).
    """
    pairs = list(combinations(reads, 2))
    agree = sum(a.verdict == b.verdict for a, b in pairs) / len(pairs) if pairs else 1.0
    edited = [r.segmentation_id for r in reads if r.segmentation_id is not None]
    dice: float | None = None
    if len(edited) >= 2 and store_dir is not None:
        scores = [dice_between(session, store_dir, a, b) for a, b in combinations(edited, 2)]
        dice = sum(scores) / len(scores)
    return {"reads": len(reads), "verdict_agreement": agree, "dice": dice}


def set_flag(
    session: Session,
    principal: Principal,
    study_id: int,
    status: ReviewStatus,
    reason: str = "",
    expected_version: int | None = None,
) -> Study:
    """Decide the study's primary item (first segmentation, else image) in one step.

    A read while the item is open; an escalation or resolution after. The pane's quick
    review form and API clients that think in studies use this.
    """
    study = get_study(session, principal, study_id)
    ensure_items(session, study)
    item = primary_item(study)
    if status is ReviewStatus.UNREVIEWED:
        raise InvalidInput("choose approved, needs-edit or flagged-for-expert")
    if ReviewStatus(item.state) in OPEN and status in _READ_VERDICTS:
        submit_read(session, principal, item.id, status, reason, None, expected_version)
    else:
        transition(session, principal, item.id, status, reason, expected_version)
    session.refresh(study, ["reviewed_by"])
    return study


def decide(
    session: Session,
    principal: Principal,
    item_id: int,
    to: ReviewStatus,
    note: str = "",
    label_verdicts: dict[Any, Any] | None = None,
    expected_version: int | None = None,
) -> ReviewItem:
    """Record a decision on one item: a read while it is open, a transition after.

    This is what a reviewer's Approve / Needs edit / Flag (or an expert's Resolve)
    button means, whatever the item's state: while the item is `unreviewed` or
    `in-review` the choice is `principal`'s read (with its per-label verdicts); once
    decided, it is an escalation or an expert's resolution. `expected_version` is the
    version the client showed, so a stale choice raises Conflict instead of overwriting.

    Raises
    ------
    NotFound, PermissionDenied, InvalidInput, Conflict
        As for `submit_read` and `transition`.
    """
    item, _study = item_for(session, principal, item_id)
    if ReviewStatus(item.state) in OPEN and to in _READ_VERDICTS:
        return submit_read(session, principal, item.id, to, note, label_verdicts, expected_version)
    if label_verdicts and any(label_verdicts.values()):
        raise InvalidInput("per-label verdicts go with a read, and this item is already decided")
    return transition(session, principal, item.id, to, note, expected_version)
