"""Discussion on review items: threads anchored at a point in the image, replies, resolve."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from portal.db.models import Comment
from portal.services.auth import Principal
from portal.services.errors import InvalidInput, NotFound, PermissionDenied
from portal.services.review import EXPERTS, READERS, audit_study, item_for, now, role_in

MAX_COMMENT = 4000


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
    item, study = item_for(session, principal, item_id)
    if role_in(session, principal, study) not in READERS:
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
    audit_study(session, principal, study, "review.comment", f"item={item.id} comment={comment.id}")
    return comment


def resolve_comment(session: Session, principal: Principal, comment_id: int) -> Comment:
    """Mark a thread resolved (its author, an expert or the lead)."""
    comment = session.get(Comment, comment_id)
    if comment is None:
        raise NotFound(f"comment {comment_id} not found")
    item, study = item_for(session, principal, comment.item_id)
    role = role_in(session, principal, study)
    if comment.author_id != principal.user_id and role not in EXPERTS:
        raise PermissionDenied("only the author, an expert or the lead resolves a thread")
    root = session.get(Comment, comment.parent_id) if comment.parent_id else comment
    assert root is not None
    if root.resolved_at is None:
        root.resolved_at = now()
        root.resolved_by_id = principal.user_id
        audit_study(
            session, principal, study, "review.resolve", f"item={item.id} comment={root.id}"
        )
    session.flush()
    return root
