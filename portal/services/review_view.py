"""What a user sees of a study's review: items, blinded reads, agreement, history,
threads, assignments and earlier versions (JSON-ready)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from portal.db.models import (
    Assignment,
    Comment,
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
from portal.services.auth import Principal
from portal.services.catalog import get_study, open_study, visible_studies
from portal.services.review import EXPERTS, OPEN, READERS, agreement_of, ensure_items, now, role_in


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
    role = role_in(session, principal, study)
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
        blind = ReviewStatus(item.state) in OPEN and role not in EXPERTS and not mine

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
            "read": role in READERS,
            "resolve": role in EXPERTS,
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
                and (a.due_at if a.due_at.tzinfo else a.due_at.replace(tzinfo=UTC)) < now(),
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
            .where(ReviewItem.study_id.in_(sub), ReviewItem.state.in_([s.value for s in OPEN]))
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
