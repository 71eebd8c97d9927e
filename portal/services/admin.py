"""Administration of users and projects. Every operation is for admins only.

Each operation checks the principal itself (callers cannot forget to) and adds an audit
row, ``admin.<verb>``, to the caller's transaction: the change and its record land or
fail together. Audit rows carry ids and coded values only, never a password.

Ending sessions: deactivating a user, resetting their password and forcing a logout
delete all their `UserSession` rows. Sessions are resolved from the database on every
request, so this signs the user out on every worker at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal.db.models import (
    AuditEntry,
    Project,
    ProjectMember,
    ProjectRole,
    Role,
    Study,
    User,
    UserSession,
)
from portal.services import audit, auth
from portal.services.auth import Principal
from portal.services.errors import InvalidInput, NotFound, PermissionDenied

MIN_REQUIRED_READS = 1
MAX_REQUIRED_READS = 5


@dataclass(frozen=True)
class Membership:
    """One user's role in one project."""

    project_id: int
    project: str
    user_id: int
    username: str
    role: ProjectRole


@dataclass(frozen=True)
class UserRow:
    """A user as the admin page lists them."""

    id: int
    username: str
    role: Role
    active: bool
    memberships: list[Membership]
    open_sessions: int
    last_login: datetime | None


@dataclass(frozen=True)
class ProjectRow:
    """A project as the admin page lists it."""

    id: int
    name: str
    description: str
    required_reads: int
    study_count: int
    members: list[Membership]


def _require_admin(principal: Principal) -> None:
    if not principal.is_admin:
        raise PermissionDenied("only administrators may do this")


def _record(
    session: Session, principal: Principal, verb: str, target: str, detail: str = ""
) -> None:
    audit.record(
        session, principal.user_id, f"admin.{verb}", target, detail, role=principal.role.value
    )


def _user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"user {user_id} does not exist")
    return user


def _project(session: Session, project_id: int) -> Project:
    project = session.get(Project, project_id)
    if project is None:
        raise NotFound(f"project {project_id} does not exist")
    return project


def _not_self(principal: Principal, user_id: int, why: str) -> None:
    if principal.user_id == user_id:
        raise InvalidInput(why)


# An admin locking themselves out could leave the portal without any admin.
_ASK_ANOTHER = "ask another administrator to change your own account"


def record_refusal(session: Session, principal: Principal, what: str, address: str = "") -> None:
    """Audit a non-admin's attempt at an admin operation (in its own, committed transaction).

    The refused operation's transaction is rolled back, so the web layer calls this
    separately: forged calls to the admin callbacks leave a trace.
    """
    audit.record(
        session,
        principal.user_id,
        "admin.refused",
        what[:64],
        role=principal.role.value,
        outcome="denied",
        address=address,
    )


def _memberships(session: Session) -> list[Membership]:
    rows = session.execute(
        select(ProjectMember.project_id, Project.name, ProjectMember.user_id, User.username)
        .add_columns(ProjectMember.role)
        .join(Project, Project.id == ProjectMember.project_id)
        .join(User, User.id == ProjectMember.user_id)
        .order_by(Project.name, User.username)
    ).all()
    return [
        Membership(
            project_id=pid, project=pname, user_id=uid, username=uname, role=ProjectRole(role)
        )
        for pid, pname, uid, uname, role in rows
    ]


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)  # SQLite drops the zone


def list_users(session: Session, principal: Principal) -> list[UserRow]:
    """All users by name, with their project roles, open sessions and last sign-in.

    Raises
    ------
    PermissionDenied
        If `principal` is not an admin.
    """
    _require_admin(principal)
    now = datetime.now(UTC)
    sessions: dict[int, int] = {
        uid: n
        for uid, n in session.execute(
            select(UserSession.user_id, func.count())
            .where(UserSession.expires_at > now)
            .group_by(UserSession.user_id)
        )
    }
    last_login: dict[int | None, datetime] = {
        uid: at
        for uid, at in session.execute(
            select(AuditEntry.user_id, func.max(AuditEntry.at))
            .where(AuditEntry.action == "auth.login", AuditEntry.user_id.is_not(None))
            .group_by(AuditEntry.user_id)
        )
    }
    by_user: dict[int, list[Membership]] = {}
    for m in _memberships(session):
        by_user.setdefault(m.user_id, []).append(m)
    users = session.scalars(select(User).order_by(User.username)).all()
    return [
        UserRow(
            id=u.id,
            username=u.username,
            role=Role(u.role),
            active=u.is_active,
            memberships=by_user.get(u.id, []),
            open_sessions=int(sessions.get(u.id, 0)),
            last_login=_aware(last_login.get(u.id)),
        )
        for u in users
    ]


def create_user(
    session: Session,
    principal: Principal,
    username: str,
    password: str,
    role: Role,
    project_ids: list[int] | None = None,
) -> User:
    """Create a user; each chosen project gets them with the default role for `role`.

    Raises
    ------
    PermissionDenied
        If `principal` is not an admin.
    InvalidInput
        If the name is taken or malformed, or the password too short.
    NotFound
        If a project does not exist.
    """
    _require_admin(principal)
    names = [_project(session, pid).name for pid in project_ids or []]
    user = auth.create_user(session, username, password, role, names)
    _record(session, principal, "create_user", f"user:{user.id}", f"role={role.value}")
    return user


def user_role(session: Session, principal: Principal, user_id: int) -> Role:
    """A user's global role (to prefill the admin form).

    Raises
    ------
    PermissionDenied
        If `principal` is not an admin.
    NotFound
        If the user does not exist.
    """
    _require_admin(principal)
    return Role(_user(session, user_id).role)


def set_role(session: Session, principal: Principal, user_id: int, role: Role) -> None:
    """Change a user's global role (their project roles stay as they are).

    Raises
    ------
    PermissionDenied
        If `principal` is not an admin.
    InvalidInput
        If an admin tries to change their own role.
    NotFound
        If the user does not exist.
    """
    _require_admin(principal)
    user = _user(session, user_id)
    _not_self(principal, user_id, _ASK_ANOTHER)
    before = user.role
    user.role = role.value
    _record(session, principal, "set_role", f"user:{user.id}", f"from={before} to={role.value}")


def set_active(session: Session, principal: Principal, user_id: int, active: bool) -> int:
    """Deactivate (ending all their sessions) or reactivate a user.

    Returns
    -------
    int
        How many sessions were ended (0 when reactivating).

    Raises
    ------
    PermissionDenied
        If `principal` is not an admin.
    InvalidInput
        If an admin tries to deactivate themselves.
    NotFound
        If the user does not exist.
    """
    _require_admin(principal)
    user = _user(session, user_id)
    ended = 0
    if active:
        user.is_active = True
        _record(session, principal, "reactivate", f"user:{user.id}")
    else:
        _not_self(principal, user_id, _ASK_ANOTHER)
        user.is_active = False
        ended = auth.end_all_sessions(session, user.id)
        _record(session, principal, "deactivate", f"user:{user.id}", f"sessions_ended={ended}")
    return ended


def reset_password(session: Session, principal: Principal, user_id: int, password: str) -> int:
    """Set a new password chosen by the admin and end all the user's sessions.

    Returns
    -------
    int
        How many sessions were ended.

    Raises
    ------
    PermissionDenied
        If `principal` is not an admin.
    InvalidInput
        If the password is too short, or it is the admin's own (they use their account page).
    NotFound
        If the user does not exist.
    """
    _require_admin(principal)
    user = _user(session, user_id)
    _not_self(principal, user_id, "change your own password on your account page")
    ended = auth.set_password(session, user, password)
    _record(session, principal, "reset_password", f"user:{user.id}", f"sessions_ended={ended}")
    return ended


def force_logout(session: Session, principal: Principal, user_id: int) -> int:
    """End all sessions of a user (they can sign in again) and return how many.

    Raises
    ------
    PermissionDenied
        If `principal` is not an admin.
    NotFound
        If the user does not exist.
    """
    _require_admin(principal)
    user = _user(session, user_id)
    ended = auth.end_all_sessions(session, user.id)
    _record(session, principal, "force_logout", f"user:{user.id}", f"sessions_ended={ended}")
    return ended


def list_projects(session: Session, principal: Principal) -> list[ProjectRow]:
    """All projects by name, with their members and study counts.

    Raises
    ------
    PermissionDenied
        If `principal` is not an admin.
    """
    _require_admin(principal)
    counts: dict[int, int] = {
        pid: n
        for pid, n in session.execute(
            select(Study.project_id, func.count())
            .where(Study.superseded_at.is_(None))
            .group_by(Study.project_id)
        )
    }
    by_project: dict[int, list[Membership]] = {}
    for m in _memberships(session):
        by_project.setdefault(m.project_id, []).append(m)
    projects = session.scalars(select(Project).order_by(Project.name)).all()
    return [
        ProjectRow(
            id=p.id,
            name=p.name,
            description=p.description,
            required_reads=p.required_reads,
            study_count=int(counts.get(p.id, 0)),
            members=by_project.get(p.id, []),
        )
        for p in projects
    ]


def _check_reads(required_reads: int) -> None:
    if not MIN_REQUIRED_READS <= required_reads <= MAX_REQUIRED_READS:
        raise InvalidInput(
            f"required reads must be between {MIN_REQUIRED_READS} and {MAX_REQUIRED_READS}"
        )


def create_project(
    session: Session, principal: Principal, name: str, description: str, required_reads: int
) -> Project:
    """Create an empty project.

    Raises
    ------
    PermissionDenied
        If `principal` is not an admin.
    InvalidInput
        If the name is empty, too long or taken, or `required_reads` is outside 1-5.
    """
    _require_admin(principal)
    name = name.strip()
    if not name or len(name) > 128:
        raise InvalidInput("project name must have 1-128 characters")
    _check_reads(required_reads)
    if session.scalar(select(Project.id).where(Project.name == name)) is not None:
        raise InvalidInput(f"project {name!r} already exists")
    project = Project(name=name, description=description.strip(), required_reads=required_reads)
    session.add(project)
    session.flush()
    _record(
        session, principal, "create_project", f"project:{project.id}", f"reads={required_reads}"
    )
    return project


def required_reads(session: Session, principal: Principal, project_id: int) -> int:
    """A project's reads per item (to prefill the admin form).

    Raises
    ------
    PermissionDenied
        If `principal` is not an admin.
    NotFound
        If the project does not exist.
    """
    _require_admin(principal)
    return _project(session, project_id).required_reads


def set_required_reads(
    session: Session, principal: Principal, project_id: int, required_reads: int
) -> None:
    """Change how many independent reads each review item of the project needs.

    Raises
    ------
    PermissionDenied
        If `principal` is not an admin.
    InvalidInput
        If `required_reads` is outside 1-5.
    NotFound
        If the project does not exist.
    """
    _require_admin(principal)
    project = _project(session, project_id)
    _check_reads(required_reads)
    before = project.required_reads
    project.required_reads = required_reads
    _record(
        session,
        principal,
        "set_reads",
        f"project:{project.id}",
        f"from={before} to={required_reads}",
    )


def _member(session: Session, project_id: int, user_id: int) -> ProjectMember | None:
    return session.get(ProjectMember, (project_id, user_id))


def add_member(
    session: Session, principal: Principal, project_id: int, user_id: int, role: ProjectRole
) -> None:
    """Add a user to a project with a project role.

    Raises
    ------
    PermissionDenied
        If `principal` is not an admin.
    InvalidInput
        If the user is already a member.
    NotFound
        If the project or user does not exist.
    """
    _require_admin(principal)
    project = _project(session, project_id)
    user = _user(session, user_id)
    if _member(session, project.id, user.id) is not None:
        raise InvalidInput(f"{user.username} is already a member of {project.name}")
    session.add(ProjectMember(project_id=project.id, user_id=user.id, role=role.value))
    session.flush()
    _record(
        session,
        principal,
        "add_member",
        f"project:{project.id}",
        f"user={user.id} role={role.value}",
    )


def set_member_role(
    session: Session, principal: Principal, project_id: int, user_id: int, role: ProjectRole
) -> None:
    """Change a member's role in one project.

    Raises
    ------
    PermissionDenied
        If `principal` is not an admin.
    NotFound
        If the project or user does not exist, or the user is not a member.
    """
    _require_admin(principal)
    member = _member(session, _project(session, project_id).id, _user(session, user_id).id)
    if member is None:
        raise NotFound(f"user {user_id} is not a member of project {project_id}")
    before = member.role
    member.role = role.value
    _record(
        session,
        principal,
        "set_member_role",
        f"project:{project_id}",
        f"user={user_id} from={before} to={role.value}",
    )


def remove_member(session: Session, principal: Principal, project_id: int, user_id: int) -> None:
    """Take a user out of a project; they stop seeing its studies on their next request.

    Raises
    ------
    PermissionDenied
        If `principal` is not an admin.
    NotFound
        If the project or user does not exist, or the user is not a member.
    """
    _require_admin(principal)
    member = _member(session, _project(session, project_id).id, _user(session, user_id).id)
    if member is None:
        raise NotFound(f"user {user_id} is not a member of project {project_id}")
    session.delete(member)
    session.flush()
    _record(session, principal, "remove_member", f"project:{project_id}", f"user={user_id}")
