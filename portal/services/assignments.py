"""Who reads what: project leads give studies to readers, with due dates; reassignment
and withdrawal are review events, never deletions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.db.models import Assignment, ProjectMember, ProjectRole, ReviewAction, Study, User
from portal.services.auth import Principal
from portal.services.catalog import get_study, project_role, visible_studies
from portal.services.errors import InvalidInput, PermissionDenied
from portal.services.review import (
    READERS,
    audit_study,
    ensure_items,
    now,
    primary_item,
    record_event,
    role_in,
)


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
        if role_in(session, principal, study) is not ProjectRole.LEAD:
            raise PermissionDenied(f"only the lead of {study.project.name!r} assigns its studies")
        member = session.get(ProjectMember, (study.project_id, assignee.id))
        if member is None or ProjectRole(member.role) not in READERS:
            raise InvalidInput(
                f"{assignee.username} does not read in project {study.project.name!r}"
            )
        ensure_items(session, study)
        item = primary_item(study)
        if replace_id is not None:
            for old in _open_assignments(session, study.id, replace_id):
                old.ended_at = now()
                record_event(
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
        record_event(
            session,
            principal,
            item,
            ReviewAction.ASSIGN,
            item.state,
            f"to {assignee.username}{due}",
        )
        audit_study(session, principal, study, "review.assign", f"assignee={assignee.id}")
        made.append(a)
    session.flush()
    return made


def unassign(session: Session, principal: Principal, study_id: int, assignee_id: int) -> int:
    """End a reader's open assignment of a study; returns how many ended."""
    study = get_study(session, principal, study_id)
    if role_in(session, principal, study) is not ProjectRole.LEAD:
        raise PermissionDenied(f"only the lead of {study.project.name!r} assigns its studies")
    ensure_items(session, study)
    item = primary_item(study)
    ended = _open_assignments(session, study.id, assignee_id)
    for a in ended:
        a.ended_at = now()
        record_event(
            session,
            principal,
            item,
            ReviewAction.UNASSIGN,
            item.state,
            f"from {a.assignee.username}",
        )
        audit_study(session, principal, study, "review.unassign", f"assignee={assignee_id}")
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
            ProjectMember.role.in_([r.value for r in READERS]),
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
