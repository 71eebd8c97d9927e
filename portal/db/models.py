"""Catalog tables. Coded values are stored as the string of their Enum."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.db.base import Base


def utcnow() -> datetime:
    return datetime.now(UTC)


class Role(enum.StrEnum):
    ADMIN = "admin"
    EXPERT = "expert"
    REVIEWER = "reviewer"
    VIEWER = "viewer"


class ProjectRole(enum.StrEnum):
    """What a member may do in one project; a user's roles differ between projects.

    `lead` assigns work and does everything an expert does; `expert` resolves flags;
    `reviewer` reads and flags; `viewer` only looks.
    """

    LEAD = "lead"
    EXPERT = "expert"
    REVIEWER = "reviewer"
    VIEWER = "viewer"


class ReviewStatus(enum.StrEnum):
    UNREVIEWED = "unreviewed"
    IN_REVIEW = "in-review"
    APPROVED = "approved"
    NEEDS_EDIT = "needs-edit"
    FLAGGED_FOR_EXPERT = "flagged-for-expert"
    REJECTED = "rejected"


class ReviewAction(enum.StrEnum):
    """What a review event records (the `action` column of `review_events`)."""

    TRANSITION = "transition"
    READ = "read"
    ASSIGN = "assign"
    UNASSIGN = "unassign"


class LabelVerdict(enum.StrEnum):
    """A reader's verdict on one label of a segmentation."""

    CORRECT = "correct"
    OVER_SEGMENTED = "over-segmented"
    UNDER_SEGMENTED = "under-segmented"
    MISSING = "missing"
    FALSE_POSITIVE = "false-positive"
    WRONG_LABEL = "wrong-label"


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), default=Role.REVIEWER.value)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    projects: Mapped[list[Project]] = relationship(
        secondary="project_members", back_populates="members"
    )


class LoginFailure(Base):
    """One failed sign-in, kept for throttling (per account and per client address)."""

    __tablename__ = "login_failures"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    username: Mapped[str] = mapped_column(String(64), index=True)
    address: Mapped[str] = mapped_column(String(64), index=True)


class UserSession(Base):
    """A server-side login session; the cookie holds only its random token.

    Deleting the row ends the session for good, so a replayed cookie is worthless.
    """

    __tablename__ = "user_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    user: Mapped[User] = relationship()


class ApiToken(Base):
    """A personal access token for scripts: only its SHA-256 is stored; the token itself
    is shown once at creation. `scopes` is a space-separated subset of read review admin.
    """

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The first characters of the token, so a user can tell their tokens apart.
    prefix: Mapped[str] = mapped_column(String(16))
    scopes: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)

    user: Mapped[User] = relationship()


class IdempotencyKey(Base):
    """The first response to a create request sent with an `Idempotency-Key` header.

    A retry with the same key (same user) and the same request gets this response back
    instead of creating the thing again. `status` 0 marks a request still running.
    Rows older than a day may be deleted.
    """

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("user_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(128))
    # "POST /api/v1/imports": the route the key was used on.
    request_line: Mapped[str] = mapped_column(String(300))
    # SHA-256 of the request's query, body and uploaded files.
    fingerprint: Mapped[str] = mapped_column(String(64))
    status: Mapped[int] = mapped_column(Integer, default=0)
    body: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, index=True
    )


class Project(Base):
    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    # Independent reads each review item needs before its state is decided.
    required_reads: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    members: Mapped[list[User]] = relationship(
        secondary="project_members", back_populates="projects"
    )
    studies: Mapped[list[Study]] = relationship(back_populates="project")


class ProjectMember(Base):
    __tablename__ = "project_members"

    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    role: Mapped[str] = mapped_column(String(16), default=ProjectRole.REVIEWER.value)


class Study(Base):
    """One reviewable image with its geometry, as displayed (RAS world, voxel (i, j, k))."""

    __tablename__ = "studies"
    __table_args__ = (UniqueConstraint("project_id", "source_hash"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    uid: Mapped[str] = mapped_column(String(32), unique=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id"), index=True)
    name: Mapped[str] = mapped_column(String(255), index=True)
    patient_name: Mapped[str] = mapped_column(String(255), default="")
    modality: Mapped[str] = mapped_column(String(16), index=True)
    dim_i: Mapped[int] = mapped_column(Integer)
    dim_j: Mapped[int] = mapped_column(Integer)
    dim_k: Mapped[int] = mapped_column(Integer)
    spacing_mm: Mapped[list[float]] = mapped_column(JSON)
    affine_ras: Mapped[list[list[float]]] = mapped_column(JSON)
    orientation: Mapped[str] = mapped_column(String(3))
    dtype: Mapped[str] = mapped_column(String(16))
    source_hash: Mapped[str] = mapped_column(String(64))
    segmentation_count: Mapped[int] = mapped_column(Integer, default=0)
    # 4-D sources (fMRI, DWI, perfusion): how many 3-D volumes; the first is shown.
    volume_count: Mapped[int] = mapped_column(Integer, default=1)
    # Value range of the full volume and the window the previews were made with, in the
    # stored units (HU for CT after the rescale).
    value_min: Mapped[float | None] = mapped_column(Float, nullable=True)
    value_max: Mapped[float | None] = mapped_column(Float, nullable=True)
    window_level: Mapped[float | None] = mapped_column(Float, nullable=True)
    window_width: Mapped[float | None] = mapped_column(Float, nullable=True)
    # What the reader noticed (gantry tilt, assumed geometry, overlapping segments).
    notes: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Versions: studies with the same lineage in a project are versions of one source
    # (same DICOM series, or the same file path under the import root) whose bytes
    # changed; the newest has superseded_at None and is the one listed.
    lineage: Mapped[str] = mapped_column(String(255), default="", index=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    superseded_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), nullable=True, index=True
    )
    # Latest review event, kept beside the history so the case list filters and sorts by
    # it without a subquery per row. Written in the same transaction as the event.
    review_status: Mapped[str] = mapped_column(
        String(24), default=ReviewStatus.UNREVIEWED.value, index=True
    )
    review_reason: Mapped[str] = mapped_column(Text, default="")
    reviewed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    reviewed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    project: Mapped[Project] = relationship(back_populates="studies")
    reviewed_by: Mapped[User | None] = relationship()
    volumes: Mapped[list[Volume]] = relationship(
        back_populates="study", cascade="all, delete-orphan", order_by="Volume.id"
    )
    segmentations: Mapped[list[Segmentation]] = relationship(
        back_populates="study", cascade="all, delete-orphan", order_by="Segmentation.id"
    )
    review_events: Mapped[list[ReviewEvent]] = relationship(
        back_populates="study", cascade="all, delete-orphan", order_by="ReviewEvent.id"
    )
    review_items: Mapped[list[ReviewItem]] = relationship(
        back_populates="study", cascade="all, delete-orphan", order_by="ReviewItem.id"
    )

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.dim_i, self.dim_j, self.dim_k)


class Volume(Base):
    """A source series (DICOM) or file (NIfTI) of a study, with where its files are stored."""

    __tablename__ = "volumes"

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    format: Mapped[str] = mapped_column(String(16))
    series_uid: Mapped[str] = mapped_column(String(64), default="")
    description: Mapped[str] = mapped_column(String(255), default="")
    files: Mapped[list[str]] = mapped_column(JSON)
    content_hash: Mapped[str] = mapped_column(String(64))

    study: Mapped[Study] = relationship(back_populates="volumes")


class Segmentation(Base):
    __tablename__ = "segmentations"

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    file: Mapped[str] = mapped_column(String(255))
    content_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    study: Mapped[Study] = relationship(back_populates="segmentations")
    labels: Mapped[list[Label]] = relationship(
        back_populates="segmentation", cascade="all, delete-orphan", order_by="Label.value"
    )


class Label(Base):
    __tablename__ = "labels"
    __table_args__ = (UniqueConstraint("segmentation_id", "value"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    segmentation_id: Mapped[int] = mapped_column(
        ForeignKey("segmentations.id", ondelete="CASCADE"), index=True
    )
    value: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(128))
    color: Mapped[str] = mapped_column(String(7))
    # Counted on the full-resolution label map at import; volume from the voxel size.
    # NULL for labels imported before these were counted.
    voxel_count: Mapped[int | None] = mapped_column(Integer, nullable=True)
    volume_ml: Mapped[float | None] = mapped_column(Float, nullable=True)

    segmentation: Mapped[Segmentation] = relationship(back_populates="labels")


class ReviewItem(Base):
    """What is reviewed: one segmentation of a study (`key` "seg:<id>"), or the image
    itself for image quality (`key` "image").

    `version` is bumped by every change; writers send the version they saw and a stale
    one is refused, so two people never silently overwrite each other. `round` counts
    review rounds: a segmentation sent back for edits starts a new round of reads.
    """

    __tablename__ = "review_items"
    __table_args__ = (UniqueConstraint("study_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(String(32))
    segmentation_id: Mapped[int | None] = mapped_column(
        ForeignKey("segmentations.id", ondelete="CASCADE"), nullable=True
    )
    state: Mapped[str] = mapped_column(
        String(24), default=ReviewStatus.UNREVIEWED.value, index=True
    )
    version: Mapped[int] = mapped_column(Integer, default=1)
    round: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)

    study: Mapped[Study] = relationship(back_populates="review_items")
    segmentation: Mapped[Segmentation | None] = relationship()
    updated_by: Mapped[User | None] = relationship()


class ReviewEvent(Base):
    """One thing that happened to a review item; rows are only ever added."""

    __tablename__ = "review_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    item_id: Mapped[int | None] = mapped_column(
        ForeignKey("review_items.id", ondelete="CASCADE"), nullable=True, index=True
    )
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    action: Mapped[str] = mapped_column(String(16), default=ReviewAction.TRANSITION.value)
    from_status: Mapped[str] = mapped_column(String(24), default="")
    # The state after the event (for assignments: the item's unchanged state).
    status: Mapped[str] = mapped_column(String(24))
    reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    study: Mapped[Study] = relationship(back_populates="review_events")
    user: Mapped[User] = relationship()


class ReviewRead(Base):
    """One reader's independent verdict on a review item in one round.

    `label_verdicts` maps a label value (as a string, JSON keys) to a `LabelVerdict`;
    `segmentation_id`, when set, is the reader's own edited segmentation of the study,
    used for Dice agreement between readers.
    """

    __tablename__ = "review_reads"
    __table_args__ = (UniqueConstraint("item_id", "reader_id", "round"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(
        ForeignKey("review_items.id", ondelete="CASCADE"), index=True
    )
    reader_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    round: Mapped[int] = mapped_column(Integer, default=1)
    verdict: Mapped[str] = mapped_column(String(24))
    note: Mapped[str] = mapped_column(Text, default="")
    label_verdicts: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    segmentation_id: Mapped[int | None] = mapped_column(
        ForeignKey("segmentations.id", ondelete="SET NULL"), nullable=True
    )
    submitted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    reader: Mapped[User] = relationship()


class Comment(Base):
    """A discussion message on a review item, optionally anchored to a point.

    The anchor is the point in RAS world millimetres, the slice index and view axis it
    was placed on, and the label under it. Replies point at their thread's first comment.
    """

    __tablename__ = "comments"

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(
        ForeignKey("review_items.id", ondelete="CASCADE"), index=True
    )
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("comments.id", ondelete="CASCADE"), nullable=True, index=True
    )
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    body: Mapped[str] = mapped_column(Text)
    world_mm: Mapped[list[float] | None] = mapped_column(JSON, nullable=True)
    slice_index: Mapped[int | None] = mapped_column(Integer, nullable=True)
    axis: Mapped[str] = mapped_column(String(8), default="")
    label_value: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    resolved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)

    author: Mapped[User] = relationship(foreign_keys=[author_id])


class Assignment(Base):
    """A study given to a reviewer; ended (not deleted) on reassignment or withdrawal."""

    __tablename__ = "assignments"

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    assignee_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    assigned_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), nullable=True, index=True
    )

    assignee: Mapped[User] = relationship(foreign_keys=[assignee_id])


class JobStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


class ImportJob(Base):
    """One import request (CLI, upload or API) and its per-study progress and report."""

    __tablename__ = "import_jobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    status: Mapped[str] = mapped_column(String(16), default=JobStatus.QUEUED.value, index=True)
    project: Mapped[str] = mapped_column(String(128))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    # Server-side paths to import; for uploads, the job's own staging folder.
    paths: Mapped[list[str]] = mapped_column(JSON)
    staging_dir: Mapped[str] = mapped_column(String(512), default="")
    total: Mapped[int] = mapped_column(Integer, default=0)
    done: Mapped[int] = mapped_column(Integer, default=0)
    imported: Mapped[list[int]] = mapped_column(JSON, default=list)
    skipped: Mapped[list[str]] = mapped_column(JSON, default=list)
    refused: Mapped[list[list[str]]] = mapped_column(JSON, default=list)
    # (path, note) for files skipped on purpose (SR, RTPLAN, presentation states) and
    # for imported studies with something the reviewer should know.
    notes: Mapped[list[list[str]]] = mapped_column(JSON, default=list)
    # What the user chose for this import, e.g. {"resample_labels": true}; for a PACS
    # import also {"pacs": {"source": name, "studies": [StudyInstanceUID, ...]}}.
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # Written by the running worker after every study: a job whose heartbeat stops is dead.
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class AuditEntry(Base):
    """Who did what. `detail` never holds patient data: ids and coded values only.

    Append-only: the application never updates or deletes a row (and on PostgreSQL a
    trigger refuses it). `study_uid` is the portal's own random study UID, not a DICOM
    identifier.
    """

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    role: Mapped[str] = mapped_column(String(16), default="")
    action: Mapped[str] = mapped_column(String(32), index=True)
    target: Mapped[str] = mapped_column(String(64), default="")
    study_uid: Mapped[str] = mapped_column(String(32), default="", index=True)
    outcome: Mapped[str] = mapped_column(String(16), default="ok")
    address: Mapped[str] = mapped_column(String(64), default="")
    detail: Mapped[str] = mapped_column(Text, default="")


class StudyView(Base):
    """That a login session has opened a study, so only its first data fetch is audited.

    Kept in the catalog (not in a worker's memory) so that every worker agrees; the
    unique pair makes "insert if absent" safe when two requests race. Rows go with
    their session.
    """

    __tablename__ = "study_views"
    __table_args__ = (UniqueConstraint("session_key", "study_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    session_key: Mapped[str] = mapped_column(
        String(64), ForeignKey("user_sessions.token_hash", ondelete="CASCADE")
    )
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class LiveCommand(Base):
    """ "Open these studies" for every open tab of `user_id`, queued by `issued_by_id`.

    Kept in the catalog so that every worker sees it: tabs poll for ids above the last
    they saw. `payload` holds study ids, layout and viewer state, never patient data.
    """

    __tablename__ = "live_commands"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    issued_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ViewerState(Base):
    """What a user's most recently reporting tab shows (path, studies, layout, slices)."""

    __tablename__ = "viewer_states"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    state: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


__all__ = [
    "ApiToken",
    "Assignment",
    "AuditEntry",
    "Comment",
    "ImportJob",
    "JobStatus",
    "Label",
    "LabelVerdict",
    "LiveCommand",
    "Project",
    "ProjectMember",
    "ProjectRole",
    "ReviewAction",
    "ReviewEvent",
    "ReviewItem",
    "ReviewRead",
    "ReviewStatus",
    "Role",
    "Segmentation",
    "Study",
    "StudyView",
    "User",
    "UserSession",
    "ViewerState",
    "Volume",
]
