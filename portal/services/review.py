"""The review workflow: items, reads, transitions, comments and assignments.

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

from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import combinations
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, selectinload

from portal.db.models import (
    Assignment,
    Comment,
    LabelVerdict,
    ProjectMember,
    ProjectRole,
    ReviewAction,
    ReviewEvent,
    ReviewItem,
    ReviewRead,
    ReviewStatus,
    Segmentation,
    Study,
    User,
)
from portal.services import audit
from portal.services.auth import Principal
from portal.services.catalog import get_study, open_study, project_role, visible_studies
from portal.services.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from portal.services.segmentations import dice_between

MAX_REASON = 2000
MAX_COMMENT = 4000
IMAGE_KEY = "image"

_OPEN = {ReviewStatus.UNREVIEWED, ReviewStatus.IN_REVIEW}
_READ_VERDICTS = {
    ReviewStatus.APPROVED,
    ReviewStatus.NEEDS_EDIT,
    ReviewStatus.FLAGGED_FOR_EXPERT,
}
_RESOLUTIONS = {ReviewStatus.APPROVED, ReviewStatus.NEEDS_EDIT, ReviewStatus.REJECTED}
_READERS = {ProjectRole.REVIEWER, ProjectRole.EXPERT, ProjectRole.LEAD}
_EXPERTS = {ProjectRole.EXPERT, ProjectRole.LEAD}


def _now() -> datetime:
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


def _role(session: Session, principal: Principal, study: Study) -> ProjectRole:
    role = project_role(session, principal, study.project_id)
    if role is None:  # visible_studies already refused non-members; be explicit anyway
        raise NotFound(f"study {study.id} not found")
    return role


def _item(session: Session, principal: Principal, item_id: int) -> tuple[ReviewItem, Study]:
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
            updated_at=_now(),
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


def _event(
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
            created_at=_now(),
        )
    )


def _sync_study(session: Session, principal: Principal, study: Study, reason: str) -> None:
    """Keep the study's denormalised status (the case list filters on it) in step."""
    session.refresh(study, ["review_items"])
    study.review_status = summary_status(study).value
    study.review_reason = reason
    study.reviewed_by_id = principal.user_id
    study.reviewed_at = _now()


def _audit(session: Session, principal: Principal, study: Study, action: str, detail: str) -> None:
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
    item, study = _item(session, principal, item_id)
    role = _role(session, principal, study)
    if role not in _READERS:
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
        if role not in _EXPERTS:
            raise PermissionDenied("only an expert or the project lead resolves a flag")
        reason = _check_reason(reason, "add a note saying how the flag was resolved")
    elif to is ReviewStatus.IN_REVIEW and current not in _OPEN:
        if role not in _EXPERTS:
            raise PermissionDenied("only an expert or the project lead reopens a review")
        reason = _check_reason(reason, "say why the review is reopened")
        new_round = item.round + 1
    else:
        raise InvalidInput(f"cannot go from {current.value} to {to.value}")
    _compare_and_set(session, principal, item, expected_version, state=to.value, round=new_round)
    _event(session, principal, item, ReviewAction.TRANSITION, current.value, reason)
    _sync_study(session, principal, study, reason)
    _audit(session, principal, study, "review.transition", f"item={item.id} {current}->{to}")
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
    item, study = _item(session, principal, item_id)
    role = _role(session, principal, study)
    if role not in _READERS:
        raise PermissionDenied("viewers cannot submit a read")
    if verdict not in _READ_VERDICTS:
        raise InvalidInput("choose approved, needs-edit or flagged-for-expert")
    current = ReviewStatus(item.state)
    if current not in _OPEN:
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
        submitted_at=_now(),
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
    _event(session, principal, item, ReviewAction.READ, current.value, note)
    if to is ReviewStatus.FLAGGED_FOR_EXPERT and reason != note:
        _event(session, principal, item, ReviewAction.TRANSITION, to.value, reason)
    _end_assignment_if_read(session, principal, study)
    _sync_study(session, principal, study, reason)
    _audit(session, principal, study, "review.read", f"item={item.id} verdict={verdict}")
    session.flush()
    return item


def _end_assignment_if_read(session: Session, principal: Principal, study: Study) -> None:
    """A reader's assignment ends once they have read every open item of the study."""
    session.flush()
    keys = {seg_key(seg.id) for seg in study.segmentations} or {IMAGE_KEY}
    for item in study.review_items:
        if item.key not in keys or ReviewStatus(item.state) not in _OPEN:
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
        a.ended_at = _now()


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
    if ReviewStatus(item.state) in _OPEN and status in _READ_VERDICTS:
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
    item, _study = _item(session, principal, item_id)
    if ReviewStatus(item.state) in _OPEN and to in _READ_VERDICTS:
        return submit_read(session, principal, item.id, to, note, label_verdicts, expected_version)
    if label_verdicts and any(label_verdicts.values()):
        raise InvalidInput("per-label verdicts go with a read, and this item is already decided")
    return transition(session, principal, item.id, to, note, expected_version)


# --- comments -------------------------------------------------------------------------


@dataclass(frozen=True)
class Anchor:
    """Where a comment points: RAS world mm, the slice it was placed on, the label there."""

    world_mm: tuple[float, float, float]
    slice_index: int | None = None
    axis: str = "axial"
    label_value: int | None = None


def add_comment(
    session: Session,
    principal: Principal,
    item_id: int,
    body: str,
    anchor: Anchor | None = None,
    parent_id: int | None = None,
) -> Comment:
    """Start a thread on an item (optionally at a point) or reply to one.

    Raises
    ------
    NotFound
        If the item's study (or the parent comment) is not visible.
    PermissionDenied
        For viewers.
    InvalidInput
        For an empty or too long body, or a reply to a reply's thread on another item.
    """
    item, study = _item(session, principal, item_id)
    if _role(session, principal, study) not in _READERS:
        raise PermissionDenied("viewers cannot comment")
    body = (body or "").strip()
    if not body or len(body) > MAX_COMMENT:
        raise InvalidInput(f"a comment needs 1-{MAX_COMMENT} characters")
    if parent_id is not None:
        parent = session.get(Comment, parent_id)
        if parent is None or parent.item_id != item.id:
            raise NotFound(f"comment {parent_id} not found on this item")
        parent_id = parent.parent_id or parent.id  # threads are one level deep
    comment = Comment(item_id=item.id, parent_id=parent_id, author_id=principal.user_id, body=body)
    if anchor is not None and parent_id is None:
        comment.world_mm = [float(v) for v in anchor.world_mm]
        comment.slice_index = anchor.slice_index
        comment.axis = anchor.axis[:8]
        comment.label_value = anchor.label_value
    session.add(comment)
    session.flush()
    _audit(session, principal, study, "review.comment", f"item={item.id} comment={comment.id}")
    return comment


def resolve_comment(session: Session, principal: Principal, comment_id: int) -> Comment:
    """Mark a thread resolved (its author, an expert or the lead)."""
    comment = session.get(Comment, comment_id)
    if comment is None:
        raise NotFound(f"comment {comment_id} not found")
    item, study = _item(session, principal, comment.item_id)
    role = _role(session, principal, study)
    if comment.author_id != principal.user_id and role not in _EXPERTS:
        raise PermissionDenied("only the author, an expert or the lead resolves a thread")
    root = session.get(Comment, comment.parent_id) if comment.parent_id else comment
    assert root is not None
    if root.resolved_at is None:
        root.resolved_at = _now()
        root.resolved_by_id = principal.user_id
        _audit(session, principal, study, "review.resolve", f"item={item.id} comment={root.id}")
    session.flush()
    return root


# --- assignment -----------------------------------------------------------------------


def assign(
    session: Session,
    principal: Principal,
    study_ids: list[int],
    assignee_id: int,
    due_at: datetime | None = None,
    replace_id: int | None = None,
) -> list[Assignment]:
    """Give studies to a reviewer (the project lead's job), optionally with a due date.

    With `replace_id`, that reader's open assignment of each study ends first: a
    reassignment, recorded as an unassign and an assign event.

    Raises
    ------
    NotFound
        If a study is not visible.
    PermissionDenied
        If `principal` does not lead a study's project.
    InvalidInput
        If the assignee is not an active member who reads in that project.
    """
    assignee = session.get(User, assignee_id)
    if assignee is None or not assignee.is_active:
        raise InvalidInput(f"user {assignee_id} cannot be assigned work")
    made: list[Assignment] = []
    for study_id in dict.fromkeys(study_ids):
        study = get_study(session, principal, study_id)
        if _role(session, principal, study) is not ProjectRole.LEAD:
            raise PermissionDenied(f"only the lead of {study.project.name!r} assigns its studies")
        member = session.get(ProjectMember, (study.project_id, assignee.id))
        if member is None or ProjectRole(member.role) not in _READERS:
            raise InvalidInput(
                f"{assignee.username} does not read in project {study.project.name!r}"
            )
        ensure_items(session, study)
        item = primary_item(study)
        if replace_id is not None:
            for old in _open_assignments(session, study.id, replace_id):
                old.ended_at = _now()
                _event(
                    session,
                    principal,
                    item,
                    ReviewAction.UNASSIGN,
                    item.state,
                    f"from {old.assignee.username}",
                )
        existing = _open_assignments(session, study.id, assignee.id)
        if existing:
            existing[0].due_at = due_at
            made.append(existing[0])
            continue
        a = Assignment(
            study_id=study.id,
            assignee_id=assignee.id,
            assigned_by_id=principal.user_id,
            due_at=due_at,
        )
        session.add(a)
        due = f" due {due_at.date().isoformat()}" if due_at else ""
        _event(
            session,
            principal,
            item,
            ReviewAction.ASSIGN,
            item.state,
            f"to {assignee.username}{due}",
        )
        _audit(session, principal, study, "review.assign", f"assignee={assignee.id}")
        made.append(a)
    session.flush()
    return made


def unassign(session: Session, principal: Principal, study_id: int, assignee_id: int) -> int:
    """End a reader's open assignment of a study; returns how many ended."""
    study = get_study(session, principal, study_id)
    if _role(session, principal, study) is not ProjectRole.LEAD:
        raise PermissionDenied(f"only the lead of {study.project.name!r} assigns its studies")
    ensure_items(session, study)
    item = primary_item(study)
    ended = _open_assignments(session, study.id, assignee_id)
    for a in ended:
        a.ended_at = _now()
        _event(
            session,
            principal,
            item,
            ReviewAction.UNASSIGN,
            item.state,
            f"from {a.assignee.username}",
        )
        _audit(session, principal, study, "review.unassign", f"assignee={assignee_id}")
    session.flush()
    return len(ended)


def assignable_readers(
    session: Session, principal: Principal, study_ids: list[int]
) -> list[dict[str, Any]]:
    """The active users `principal` may assign all of `study_ids` to, by username.

    That is the members who read (reviewer, expert, lead) in every project the studies
    belong to, and only if `principal` leads each of those projects; otherwise (or for
    no studies) the list is empty. Studies that are not visible are ignored, as the
    assignment itself will refuse them.
    """
    if not study_ids:
        return []
    studies = session.scalars(
        visible_studies(principal).where(Study.id.in_(list(dict.fromkeys(study_ids))))
    ).all()
    project_ids = {study.project_id for study in studies}
    if not project_ids or any(
        project_role(session, principal, pid) is not ProjectRole.LEAD for pid in project_ids
    ):
        return []
    rows = session.execute(
        select(User.id, User.username, ProjectMember.project_id)
        .join(ProjectMember, ProjectMember.user_id == User.id)
        .where(
            User.is_active.is_(True),
            ProjectMember.project_id.in_(project_ids),
            ProjectMember.role.in_([r.value for r in _READERS]),
        )
        .order_by(User.username)
    ).all()
    names: dict[int, str] = {}
    reads_in: dict[int, set[int]] = {}
    for user_id, username, project_id in rows:
        names[user_id] = username
        reads_in.setdefault(user_id, set()).add(project_id)
    return [
        {"id": uid, "username": name} for uid, name in names.items() if reads_in[uid] == project_ids
    ]


def can_assign_any(session: Session, principal: Principal) -> bool:
    """Whether `principal` leads any project (admins lead all), so may assign work."""
    if principal.is_admin:
        return True
    return (
        session.scalar(
            select(ProjectMember.project_id)
            .where(
                ProjectMember.user_id == principal.user_id,
                ProjectMember.role == ProjectRole.LEAD.value,
            )
            .limit(1)
        )
        is not None
    )


def _open_assignments(session: Session, study_id: int, user_id: int) -> list[Assignment]:
    return list(
        session.scalars(
            select(Assignment).where(
                Assignment.study_id == study_id,
                Assignment.assignee_id == user_id,
                Assignment.ended_at.is_(None),
            )
        )
    )


# --- reading it back ------------------------------------------------------------------


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()


def study_review(
    session: Session, principal: Principal, study_id: int, store_dir: Path | None = None
) -> dict[str, Any]:
    """Everything about a study's review that `principal` may see, JSON-ready.

    Blind reads: while an item's round is open, a reader sees only their own read and
    the count of others' (their verdicts and notes are hidden, in the history too);
    experts and leads see all.
    """
    study = open_study(session, principal, study_id, "review")
    ensure_items(session, study)
    role = _role(session, principal, study)
    users = {u.id: u.username for u in session.scalars(select(User))}
    segs: dict[int, Segmentation] = {seg.id: seg for seg in study.segmentations}
    items = []
    for item in study.review_items:
        reads = list(
            session.scalars(
                select(ReviewRead).where(ReviewRead.item_id == item.id).order_by(ReviewRead.id)
            )
        )
        current = [r for r in reads if r.round == item.round]
        mine = any(r.reader_id == principal.user_id for r in current)
        blind = ReviewStatus(item.state) in _OPEN and role not in _EXPERTS and not mine

        def hidden(
            user_id: int, round_: int, *, _blind: bool = blind, _item: ReviewItem = item
        ) -> bool:
            return _blind and round_ == _item.round and user_id != principal.user_id

        events = session.scalars(
            select(ReviewEvent).where(ReviewEvent.item_id == item.id).order_by(ReviewEvent.id)
        ).all()
        history = []
        for e in events:
            masked = e.action == ReviewAction.READ.value and hidden(e.user_id, item.round)
            history.append(
                {
                    "at": _iso(e.created_at),
                    "by": users.get(e.user_id),
                    "action": e.action,
                    "from": e.from_status,
                    "to": "hidden" if masked else e.status,
                    "reason": "" if masked else e.reason,
                }
            )
        comments = session.scalars(
            select(Comment).where(Comment.item_id == item.id).order_by(Comment.id)
        ).all()
        threads: list[dict[str, Any]] = []
        by_id: dict[int, dict[str, Any]] = {}
        for c in comments:
            entry = {
                "id": c.id,
                "by": users.get(c.author_id),
                "at": _iso(c.created_at),
                "body": c.body,
                "world_mm": c.world_mm,
                "slice_index": c.slice_index,
                "axis": c.axis,
                "label_value": c.label_value,
                "resolved": c.resolved_at is not None,
                "resolved_by": users.get(c.resolved_by_id) if c.resolved_by_id else None,
                "replies": [],
            }
            if c.parent_id and c.parent_id in by_id:
                by_id[c.parent_id]["replies"].append(entry)
            else:
                by_id[c.id] = entry
                threads.append(entry)
        seg = segs.get(item.segmentation_id) if item.segmentation_id else None
        visible_reads = [
            {
                "reader": users.get(r.reader_id),
                "round": r.round,
                "verdict": r.verdict,
                "note": r.note,
                "label_verdicts": r.label_verdicts,
                "segmentation_id": r.segmentation_id,
                "at": _iso(r.submitted_at),
            }
            for r in reads
            if not hidden(r.reader_id, r.round)
        ]
        items.append(
            {
                "id": item.id,
                "key": item.key,
                "segmentation_id": item.segmentation_id,
                "name": seg.name if seg else "image quality",
                "labels": [
                    {"value": lab.value, "name": lab.name, "color": lab.color}
                    for lab in (seg.labels if seg else [])
                ],
                "state": item.state,
                "version": item.version,
                "round": item.round,
                "updated_at": _iso(item.updated_at),
                "updated_by": users.get(item.updated_by_id) if item.updated_by_id else None,
                "reads_required": max(1, study.project.required_reads),
                "reads_done": len(current),
                "my_read_done": mine,
                "reads": visible_reads,
                "agreement": None if blind else agreement_of(session, current, store_dir),
                "history": history,
                "comments": threads,
            }
        )
    assignments = session.scalars(
        select(Assignment)
        .where(Assignment.study_id == study.id)
        .order_by(Assignment.id)
        .options(selectinload(Assignment.assignee))
    ).all()
    return {
        "study_id": study.id,
        "status": study.review_status,
        "role": role.value,
        "can": {
            "read": role in _READERS,
            "resolve": role in _EXPERTS,
            "assign": role is ProjectRole.LEAD,
        },
        "items": items,
        "earlier_versions": earlier_versions(session, principal, study_id),
        "assignments": [
            {
                "assignee": a.assignee.username,
                "assignee_id": a.assignee_id,
                "assigned_by": users.get(a.assigned_by_id),
                "due_at": _iso(a.due_at),
                "created_at": _iso(a.created_at),
                "ended_at": _iso(a.ended_at),
                "overdue": a.ended_at is None
                and a.due_at is not None
                and (a.due_at if a.due_at.tzinfo else a.due_at.replace(tzinfo=UTC)) < _now(),
            }
            for a in assignments
        ],
    }


def open_item_count(session: Session, principal: Principal) -> int:
    """How many visible items still wait for a decision (for the dashboard header)."""
    sub = visible_studies(principal).with_only_columns(Study.id).scalar_subquery()
    return (
        session.scalar(
            select(func.count())
            .select_from(ReviewItem)
            .where(ReviewItem.study_id.in_(sub), ReviewItem.state.in_([s.value for s in _OPEN]))
        )
        or 0
    )


def earlier_versions(session: Session, principal: Principal, study_id: int) -> list[dict[str, Any]]:
    """How earlier versions of the study's source were reviewed, newest first.

    A re-imported source is a new study with fresh review items; its reviewers still
    need to know that version 1 was sent back for edits, by whom and why.
    """
    study = get_study(session, principal, study_id)
    if not study.lineage:
        return []
    older = session.scalars(
        visible_studies(principal)
        .where(
            Study.project_id == study.project_id,
            Study.lineage == study.lineage,
            Study.version < study.version,
        )
        .order_by(Study.version.desc())
    ).all()
    users = {u.id: u.username for u in session.scalars(select(User))}
    return [
        {
            "study_id": old.id,
            "version": old.version,
            "status": old.review_status,
            "reason": old.review_reason,
            "by": users.get(old.reviewed_by_id) if old.reviewed_by_id else None,
            "at": _iso(old.reviewed_at),
            "events": session.scalar(
                select(func.count()).select_from(ReviewEvent).where(ReviewEvent.study_id == old.id)
            )
            or 0,
        }
        for old in older
    ]
