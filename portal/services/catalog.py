"""Reading the catalog: who may see which study, the case list query, study details."""

from __future__ import annotations

import base64
import binascii
import enum
import json
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, or_, select
from sqlalchemy.orm import Session, object_session, selectinload

from portal.db.models import (
    Assignment,
    Project,
    ProjectMember,
    ProjectRole,
    ReviewStatus,
    Segmentation,
    Study,
    User,
)
from portal.services import audit
from portal.services.auth import Principal
from portal.services.errors import InvalidInput, NotFound

MAX_PAGE = 500


class Queue(enum.StrEnum):
    """Saved views of the case list."""

    ALL = ""
    MINE = "mine"  # studies assigned to me that I have not finished reading
    EXPERT = "expert"  # everything flagged for an expert (sort oldest first)
    OVERDUE = "overdue"  # open assignments past their due date


class SortKey(enum.StrEnum):
    ID = "id"
    NAME = "name"
    PATIENT = "patient_name"
    MODALITY = "modality"
    PROJECT = "project"
    STATUS = "review_status"
    SEGMENTATIONS = "segmentation_count"
    CREATED = "created_at"
    REVIEWED = "reviewed_at"


@dataclass(frozen=True)
class StudyQuery:
    """A page of the case list. Text filters are case-insensitive substrings."""

    search: str = ""
    modality: str = ""
    status: str = ""
    project: str = ""
    sort: SortKey = SortKey.ID
    descending: bool = False
    offset: int = 0
    limit: int = 50
    ids: tuple[int, ...] = field(default_factory=tuple)
    # Older versions of re-imported studies are hidden unless asked for (or named by id).
    include_superseded: bool = False
    queue: Queue = Queue.ALL
    # Keyset paging: the `next_cursor` of the previous page (replaces `offset`).
    after: str = ""


@dataclass(frozen=True)
class StudyPage:
    items: list[dict[str, Any]]
    total: int
    # Opaque position after the last item, or None on the last page.
    next_cursor: str | None = None


INT_KEYS = frozenset({SortKey.ID, SortKey.SEGMENTATIONS})
TIME_KEYS = frozenset({SortKey.CREATED, SortKey.REVIEWED})


@dataclass(frozen=True)
class Cursor:
    """A position in a sorted case list: the last row's sort value and its id.

    Encoded as URL-safe base64 of JSON; it names its sort key and direction, so it
    cannot be reused with another order (that would silently skip or repeat rows).
    """

    sort: SortKey
    descending: bool
    value: Any
    study_id: int

    def encode(self) -> str:
        value = self.value.isoformat() if isinstance(self.value, datetime) else self.value
        raw = json.dumps([self.sort.value, self.descending, value, self.study_id])
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str, sort: SortKey, descending: bool) -> Cursor:
        """The cursor in `text`, checked against the list's order.

        Raises
        ------
        InvalidInput
            When `text` is not a cursor of this sort key and direction.
        """
        wrong = InvalidInput("after must be the next_cursor of a page with the same sort and desc")
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            key, desc, value, study_id = json.loads(raw)
        except (ValueError, TypeError, binascii.Error) as exc:
            raise wrong from exc
        if key != sort.value or desc is not descending or not _is_int(study_id):
            raise wrong
        if value is not None or sort is not SortKey.REVIEWED:
            value = _cursor_value(sort, value, wrong)
        return cls(sort, descending, value, study_id)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _cursor_value(sort: SortKey, value: Any, wrong: InvalidInput) -> Any:
    """The cursor's sort value as the column's Python type (or `wrong` is raised)."""
    if sort in INT_KEYS:
        if not _is_int(value):
            raise wrong
        return value
    if not isinstance(value, str):
        raise wrong
    if sort in TIME_KEYS:
        try:
            return datetime.fromisoformat(value)
        except ValueError as exc:
            raise wrong from exc
    return value


def _after(column: Any, cursor: Cursor) -> ColumnElement[bool]:
    """Rows strictly after `cursor` in the order of `_order_by` (NULLs last ascending)."""
    later = Study.id < cursor.study_id if cursor.descending else Study.id > cursor.study_id
    if cursor.value is None:
        if cursor.descending:  # NULLs come first: then the other NULLs, then every value
            return or_(and_(column.is_(None), later), column.is_not(None))
        return and_(column.is_(None), later)
    beyond = column < cursor.value if cursor.descending else column > cursor.value
    tied = and_(column == cursor.value, later)
    if cursor.descending:
        return and_(column.is_not(None), or_(beyond, tied))
    return or_(beyond, tied, column.is_(None))


def visible_studies(principal: Principal) -> Select[Study]:
    """SELECT of the studies `principal` may see: admins all, others their projects'."""
    stmt = select(Study)
    if not principal.is_admin:
        member_projects = select(ProjectMember.project_id).where(
            ProjectMember.user_id == principal.user_id
        )
        stmt = stmt.where(Study.project_id.in_(member_projects))
    return stmt


def project_role(session: Session, principal: Principal, project_id: int) -> ProjectRole | None:
    """`principal`'s role in a project: admins lead every project; None for non-members."""
    if principal.is_admin:
        return ProjectRole.LEAD
    role = session.scalar(
        select(ProjectMember.role).where(
            ProjectMember.project_id == project_id, ProjectMember.user_id == principal.user_id
        )
    )
    return ProjectRole(role) if role is not None else None


def get_study(session: Session, principal: Principal, study_id: int) -> Study:
    """Return the study if `principal` may see it.

    Raises
    ------
    NotFound
        If it does not exist or is not visible; the two are indistinguishable on purpose.
    """
    study = session.scalar(
        visible_studies(principal)
        .where(Study.id == study_id)
        .options(
            selectinload(Study.segmentations).selectinload(Segmentation.labels),
            selectinload(Study.project),
            selectinload(Study.reviewed_by),
        )
    )
    if study is None:
        raise NotFound(f"study {study_id} not found")
    return study


def open_study(session: Session, principal: Principal, study_id: int, via: str) -> Study:
    """`get_study` for a fetch of the study's data; the login session's first is audited.

    Parameters
    ----------
    via
        What is being fetched, for the ``study.view`` entry (e.g. ``detail``).

    Raises
    ------
    NotFound
        If it does not exist or is not visible.
    """
    study = get_study(session, principal, study_id)
    audit.study_viewed(session, principal.user_id, principal.role.value, study, via)
    return study


def _queue_filter(stmt: Select[Any], principal: Principal, queue: Queue) -> Select[Any]:
    open_assignments = select(Assignment.study_id).where(Assignment.ended_at.is_(None))
    if queue is Queue.MINE:
        return stmt.where(
            Study.id.in_(open_assignments.where(Assignment.assignee_id == principal.user_id))
        )
    if queue is Queue.EXPERT:
        return stmt.where(Study.review_status == ReviewStatus.FLAGGED_FOR_EXPERT.value)
    if queue is Queue.OVERDUE:
        return stmt.where(
            Study.id.in_(
                open_assignments.where(
                    Assignment.due_at.is_not(None), Assignment.due_at < datetime.now(UTC)
                )
            )
        )
    return stmt


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def list_studies(session: Session, principal: Principal, query: StudyQuery) -> StudyPage:
    """One page of visible studies matching `query`, with the total match count."""
    if not 0 < query.limit <= MAX_PAGE or query.offset < 0:
        raise InvalidInput(f"limit must be 1-{MAX_PAGE} and offset >= 0")
    if query.after and query.offset:
        raise InvalidInput("send either after (a cursor) or offset, not both")
    cursor = Cursor.decode(query.after, query.sort, query.descending) if query.after else None
    stmt = visible_studies(principal).join(Study.project)
    if query.search.strip():
        pattern = f"%{_escape_like(query.search.strip().lower())}%"
        stmt = stmt.where(
            or_(
                func.lower(Study.name).like(pattern, escape="\\"),
                func.lower(Study.patient_name).like(pattern, escape="\\"),
            )
        )
    if query.modality:
        stmt = stmt.where(func.upper(Study.modality) == query.modality.strip().upper())
    if query.status:
        try:
            status = ReviewStatus(query.status)
        except ValueError as exc:
            raise InvalidInput(f"unknown review status {query.status!r}") from exc
        stmt = stmt.where(Study.review_status == status.value)
    if query.project:
        stmt = stmt.where(Project.name == query.project)
    stmt = _queue_filter(stmt, principal, query.queue)
    if query.ids:
        stmt = stmt.where(Study.id.in_(query.ids))
    elif not query.include_superseded:
        stmt = stmt.where(Study.superseded_at.is_(None))

    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    column = Project.name if query.sort is SortKey.PROJECT else getattr(Study, query.sort.value)
    if cursor is not None:
        stmt = stmt.where(_after(column, cursor))
    # NULLs sort last ascending and first descending on every database (SQLite's own
    # default differs from PostgreSQL's), so a cursor means the same row order everywhere.
    nulls = column.is_(None)
    order = [nulls.desc(), column.desc()] if query.descending else [nulls.asc(), column.asc()]
    # Study.id breaks ties so paging is stable when many rows share a sort value.
    tie = Study.id.desc() if query.descending else Study.id.asc()
    rows = session.scalars(
        stmt.options(selectinload(Study.project), selectinload(Study.reviewed_by))
        .order_by(*order, tie)
        .offset(query.offset)
        .limit(query.limit + 1)  # one more tells whether there is a next page
    ).all()
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    next_cursor = None
    if more and rows:
        last = rows[-1]
        value = last.project.name if query.sort is SortKey.PROJECT else getattr(last, query.sort)
        next_cursor = Cursor(query.sort, query.descending, value, last.id).encode()
    assigned = open_assignments_of(session, [s.id for s in rows])
    items = [
        {**study_summary(s), **assigned.get(s.id, {"assignees": [], "due_at": None})} for s in rows
    ]
    return StudyPage(items=items, total=total, next_cursor=next_cursor)


def in_case_list_order(
    session: Session,
    principal: Principal,
    study_ids: list[int],
    sort: SortKey,
    descending: bool = False,
) -> list[int]:
    """`study_ids` in the case list's order for `sort`: the visible ones ordered exactly as
    `list_studies` orders them, then the rest (missing or not visible) as given, so the
    caller still shows those as unavailable.
    """
    ordered: list[int] = []
    query = StudyQuery(sort=sort, descending=descending, ids=tuple(study_ids), limit=MAX_PAGE)
    while True:
        page = list_studies(session, principal, replace(query, offset=len(ordered)))
        ordered += [int(item["id"]) for item in page.items]
        if len(page.items) < MAX_PAGE:
            break
    seen = set(ordered)
    return ordered + [i for i in study_ids if i not in seen]


def open_assignments_of(session: Session, study_ids: list[int]) -> dict[int, dict[str, Any]]:
    """Each study's open assignees (usernames) and earliest due date, for the case list."""
    if not study_ids:
        return {}
    rows = session.execute(
        select(Assignment.study_id, User.username, Assignment.due_at)
        .join(User, User.id == Assignment.assignee_id)
        .where(Assignment.study_id.in_(study_ids), Assignment.ended_at.is_(None))
        .order_by(Assignment.study_id, User.username)
    ).all()
    out: dict[int, dict[str, Any]] = {}
    for study_id, username, due_at in rows:
        entry = out.setdefault(study_id, {"assignees": [], "due_at": None})
        entry["assignees"].append(username)
        if due_at is not None:
            due = (due_at if due_at.tzinfo else due_at.replace(tzinfo=UTC)).isoformat()
            if entry["due_at"] is None or due < entry["due_at"]:
                entry["due_at"] = due
    return out


def _iso(value: datetime | None) -> str | None:
    """ISO 8601 with its zone: SQLite gives naive datetimes back, which are UTC."""
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()


def study_summary(study: Study) -> dict[str, Any]:
    """The case-list row of a study (JSON-ready)."""
    return {
        "id": study.id,
        "name": study.name,
        "patient_name": study.patient_name,
        "project": study.project.name,
        "modality": study.modality,
        "shape": list(study.shape),
        "dimensions": "×".join(str(n) for n in study.shape),
        "segmentation_count": study.segmentation_count,
        "review_status": study.review_status,
        "review_reason": study.review_reason,
        "reviewed_by": study.reviewed_by.username if study.reviewed_by else None,
        "reviewed_at": _iso(study.reviewed_at),
        "created_at": _iso(study.created_at),
        "version": study.version,
        "current": study.superseded_at is None,
    }


def study_detail(study: Study) -> dict[str, Any]:
    """Everything the API tells about one study: geometry, segmentations, current flag."""
    detail = study_summary(study)
    detail.update(
        {
            "spacing_mm": list(study.spacing_mm),
            "affine_ras": [list(row) for row in study.affine_ras],
            "orientation": study.orientation,
            "dtype": study.dtype,
            "volume_count": study.volume_count,
            "value_range": [study.value_min, study.value_max],
            "window": {"level": study.window_level, "width": study.window_width},
            "notes": list(study.notes or []),
            "versions": _versions(study),
            "segmentations": [
                {
                    "id": seg.id,
                    "name": seg.name,
                    "labels": [
                        {
                            "value": lab.value,
                            "name": lab.name,
                            "color": lab.color,
                            "voxel_count": lab.voxel_count,
                            "volume_ml": lab.volume_ml,
                        }
                        for lab in seg.labels
                    ],
                }
                for seg in study.segmentations
            ],
            "flag": {
                "status": study.review_status,
                "reason": study.review_reason,
                "by": study.reviewed_by.username if study.reviewed_by else None,
                "at": _iso(study.reviewed_at),
            },
        }
    )
    return detail


def _versions(study: Study) -> list[dict[str, Any]]:
    """Every version of the study's source in its project, oldest first."""
    session = object_session(study)
    if session is None or not study.lineage:
        return []
    rows = session.execute(
        select(Study.id, Study.version, Study.created_at, Study.superseded_at)
        .where(Study.project_id == study.project_id, Study.lineage == study.lineage)
        .order_by(Study.version)
    ).all()
    return [
        {
            "id": r.id,
            "version": r.version,
            "imported_at": _iso(r.created_at),
            "current": r.superseded_at is None,
        }
        for r in rows
    ]


def visible_project_names(session: Session, principal: Principal) -> list[str]:
    stmt = select(Project.name).order_by(Project.name)
    if not principal.is_admin:
        stmt = stmt.join(ProjectMember).where(ProjectMember.user_id == principal.user_id)
    return list(session.scalars(stmt))


def visible_modalities(session: Session, principal: Principal) -> list[str]:
    sub = visible_studies(principal).subquery()
    return list(session.scalars(select(sub.c.modality).distinct().order_by(sub.c.modality)))


def ensure_project(session: Session, name: str, description: str = "") -> Project:
    """Return the project called `name`, creating it if needed."""
    project = session.scalar(select(Project).where(Project.name == name))
    if project is None:
        project = Project(name=name, description=description)
        session.add(project)
        session.flush()
    return project


def visible_projects(session: Session, principal: Principal) -> list[dict[str, Any]]:
    """The projects `principal` belongs to (admins: all), with their role there and how
    many current studies each holds."""
    stmt = select(Project).order_by(Project.name)
    if not principal.is_admin:
        stmt = stmt.join(ProjectMember).where(ProjectMember.user_id == principal.user_id)
    counts = dict(
        session.execute(
            select(Study.project_id, func.count())
            .where(Study.superseded_at.is_(None))
            .group_by(Study.project_id)
        ).all()
    )
    out = []
    for project in session.scalars(stmt):
        role = project_role(session, principal, project.id)
        out.append(
            {
                "id": project.id,
                "name": project.name,
                "description": project.description,
                "required_reads": project.required_reads,
                "role": role.value if role else None,
                "study_count": int(counts.get(project.id, 0)),
            }
        )
    return out
