"""Admin operations on users and projects through the service, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal.db.models import (
    AuditEntry,
    Project,
    ProjectMember,
    ProjectRole,
    Role,
    User,
    UserSession,
)
from portal.db.session import Database
from portal.services import admin, auth
from portal.services.auth import Principal
from portal.services.errors import InvalidInput, NotFound, PermissionDenied
from tests.conftest import PASSWORD, make_user

LIFETIME = timedelta(hours=1)


def _who(db: Database, name: str) -> Principal:
    with db.session() as s:
        user = s.scalar(select(User).where(User.username == name))
        assert user is not None
        return Principal.of(user)


def _sign_in(db: Database, name: str) -> str:
    with db.session() as s:
        user = auth.authenticate(s, name, PASSWORD)
        assert user is not None
        return auth.start_session(s, user, LIFETIME)


def _alive(db: Database, token: str) -> bool:
    with db.session() as s:
        return auth.resolve_session(s, token, LIFETIME) is not None


def _audit(db: Database, action: str) -> list[AuditEntry]:
    with db.session() as s:
        return list(s.scalars(select(AuditEntry).where(AuditEntry.action == action)))


@pytest.fixture()
def people(db: Database) -> dict[str, Principal]:
    with db.session() as s:
        s.add(Project(name="trial", required_reads=1))
    make_user(db, "root", Role.ADMIN)
    make_user(db, "ann", Role.REVIEWER, ["trial"])
    make_user(db, "eve", Role.EXPERT)
    return {name: _who(db, name) for name in ("root", "ann", "eve")}


def test_list_users_shows_roles_projects_sessions_and_last_login(
    db: Database, people: dict[str, Principal]
) -> None:
    _sign_in(db, "ann")
    _sign_in(db, "ann")
    with db.session() as s:
        rows = {r.username: r for r in admin.list_users(s, people["root"])}
    assert set(rows) == {"root", "ann", "eve"}
    ann = rows["ann"]
    assert ann.role is Role.REVIEWER and ann.active
    assert [(m.project, m.role) for m in ann.memberships] == [("trial", ProjectRole.REVIEWER)]
    assert ann.open_sessions == 2 and ann.last_login is not None
    assert rows["eve"].open_sessions == 0 and rows["eve"].last_login is None
    assert rows["eve"].memberships == []


def test_create_user_with_projects_is_audited_without_the_password(
    db: Database, people: dict[str, Principal]
) -> None:
    with db.session() as s:
        trial = s.scalar(select(Project.id).where(Project.name == "trial"))
        user = admin.create_user(
            s, people["root"], "newbie", "long enough pw", Role.EXPERT, [trial]
        )
        new_id = user.id
    with db.session() as s:
        member = s.get(ProjectMember, (trial, new_id))
        assert member is not None and member.role == ProjectRole.EXPERT.value
    [entry] = _audit(db, "admin.create_user")
    assert entry.user_id == people["root"].user_id and entry.role == "admin"
    assert entry.target == f"user:{new_id}" and "long enough pw" not in entry.detail
    with db.session() as s:
        assert auth.authenticate(s, "newbie", "long enough pw") is not None
        with pytest.raises(InvalidInput, match="at least 8"):
            admin.create_user(s, people["root"], "short", "x", Role.VIEWER)
        with pytest.raises(InvalidInput, match="already exists"):
            admin.create_user(s, people["root"], "ann", PASSWORD, Role.VIEWER)
        with pytest.raises(NotFound):
            admin.create_user(s, people["root"], "nobody", PASSWORD, Role.VIEWER, [99999])


def test_set_role_changes_the_global_role_but_not_ones_own(
    db: Database, people: dict[str, Principal]
) -> None:
    root, ann = people["root"], people["ann"]
    with db.session() as s:
        admin.set_role(s, root, ann.user_id, Role.EXPERT)
    assert _who(db, "ann").role is Role.EXPERT
    [entry] = _audit(db, "admin.set_role")
    assert entry.target == f"user:{ann.user_id}" and entry.detail == "from=reviewer to=expert"
    with db.session() as s, pytest.raises(InvalidInput, match="another administrator"):
        admin.set_role(s, root, root.user_id, Role.VIEWER)
    with db.session() as s:
        assert admin.user_role(s, root, ann.user_id) is Role.EXPERT
    with db.session() as s, pytest.raises(NotFound):
        admin.set_role(s, root, 99999, Role.VIEWER)


def test_deactivation_ends_every_session_and_blocks_sign_in(
    db: Database, people: dict[str, Principal]
) -> None:
    root, ann = people["root"], people["ann"]
    tokens = [_sign_in(db, "ann"), _sign_in(db, "ann")]
    keep = _sign_in(db, "eve")
    with db.session() as s:
        assert admin.set_active(s, root, ann.user_id, False) == 2
    assert not any(_alive(db, t) for t in tokens)
    assert _alive(db, keep)
    with db.session() as s:
        assert auth.authenticate(s, "ann", PASSWORD) is None
        assert (
            s.scalar(
                select(func.count())
                .select_from(UserSession)
                .where(UserSession.user_id == ann.user_id)
            )
            == 0
        )
    [entry] = _audit(db, "admin.deactivate")
    assert entry.detail == "sessions_ended=2" and entry.user_id == root.user_id
    with db.session() as s:
        admin.set_active(s, root, ann.user_id, True)
    assert len(_audit(db, "admin.reactivate")) == 1
    assert _alive(db, _sign_in(db, "ann"))
    with db.session() as s, pytest.raises(InvalidInput, match="another administrator"):
        admin.set_active(s, root, root.user_id, False)


def test_a_session_of_an_inactive_user_is_not_resolved(
    db: Database, people: dict[str, Principal]
) -> None:
    token = _sign_in(db, "ann")
    # Deactivated behind the service's back: the session row is still there.
    with db.session() as s:
        user = s.get(User, people["ann"].user_id)
        assert user is not None
        user.is_active = False
    assert not _alive(db, token)


def test_reset_password_ends_sessions_and_only_the_new_password_works(
    db: Database, people: dict[str, Principal]
) -> None:
    root, ann = people["root"], people["ann"]
    token = _sign_in(db, "ann")
    with db.session() as s:
        with pytest.raises(InvalidInput, match="at least 8"):
            admin.reset_password(s, root, ann.user_id, "short")
    assert _alive(db, token)
    with db.session() as s:
        assert admin.reset_password(s, root, ann.user_id, "brand new secret") == 1
    assert not _alive(db, token)
    with db.session() as s:
        assert auth.authenticate(s, "ann", PASSWORD) is None
        assert auth.authenticate(s, "ann", "brand new secret") is not None
    [entry] = _audit(db, "admin.reset_password")
    assert "brand new secret" not in entry.detail and entry.target == f"user:{ann.user_id}"
    with db.session() as s, pytest.raises(InvalidInput, match="account page"):
        admin.reset_password(s, root, root.user_id, "brand new secret")


def test_force_logout_ends_sessions_but_the_user_may_sign_in_again(
    db: Database, people: dict[str, Principal]
) -> None:
    root, ann = people["root"], people["ann"]
    token = _sign_in(db, "ann")
    with db.session() as s:
        assert admin.force_logout(s, root, ann.user_id) == 1
    assert not _alive(db, token)
    assert _alive(db, _sign_in(db, "ann"))
    [entry] = _audit(db, "admin.force_logout")
    assert entry.detail == "sessions_ended=1"


def test_own_password_change_needs_the_current_password_and_ends_sessions(
    db: Database, people: dict[str, Principal]
) -> None:
    ann = people["ann"]
    token = _sign_in(db, "ann")
    with db.session() as s, pytest.raises(InvalidInput, match="current password is wrong"):
        auth.change_own_password(s, ann.user_id, "not my password", "another secret")
    with db.session() as s, pytest.raises(InvalidInput, match="at least 8"):
        auth.change_own_password(s, ann.user_id, PASSWORD, "short")
    assert _alive(db, token)
    with db.session() as s:
        auth.change_own_password(s, ann.user_id, PASSWORD, "another secret")
    assert not _alive(db, token)
    with db.session() as s:
        assert auth.authenticate(s, "ann", "another secret") is not None
    [entry] = _audit(db, "auth.password")
    assert entry.user_id == ann.user_id and "another secret" not in entry.detail


def test_projects_create_reads_and_members(db: Database, people: dict[str, Principal]) -> None:
    root, ann, eve = people["root"], people["ann"], people["eve"]
    with db.session() as s:
        pid = admin.create_project(s, root, " brain ", "T1 cohort", 2).id
        with pytest.raises(InvalidInput, match="already exists"):
            admin.create_project(s, root, "brain", "", 1)
    for reads in (0, 6):
        with db.session() as s, pytest.raises(InvalidInput, match="between 1 and 5"):
            admin.create_project(s, root, f"p{reads}", "", reads)
    with db.session() as s:
        admin.set_required_reads(s, root, pid, 3)
        assert admin.required_reads(s, root, pid) == 3
        admin.add_member(s, root, pid, eve.user_id, ProjectRole.LEAD)
        admin.add_member(s, root, pid, ann.user_id, ProjectRole.VIEWER)
    with db.session() as s, pytest.raises(InvalidInput, match="already a member"):
        admin.add_member(s, root, pid, ann.user_id, ProjectRole.REVIEWER)
    with db.session() as s:
        admin.set_member_role(s, root, pid, ann.user_id, ProjectRole.REVIEWER)
    with db.session() as s:
        rows = {p.name: p for p in admin.list_projects(s, root)}
    brain = rows["brain"]
    assert brain.description == "T1 cohort" and brain.required_reads == 3
    assert brain.study_count == 0
    assert [(m.username, m.role) for m in brain.members] == [
        ("ann", ProjectRole.REVIEWER),
        ("eve", ProjectRole.LEAD),
    ]
    with db.session() as s:
        admin.remove_member(s, root, pid, ann.user_id)
    with db.session() as s:
        assert s.get(ProjectMember, (pid, ann.user_id)) is None
        with pytest.raises(NotFound):
            admin.remove_member(s, root, pid, ann.user_id)
        with pytest.raises(NotFound):
            admin.set_member_role(s, root, pid, ann.user_id, ProjectRole.LEAD)
        with pytest.raises(InvalidInput, match="between 1 and 5"):
            admin.set_required_reads(s, root, pid, 9)
    actions = [
        e.action
        for e in _audit(db, "admin.create_project")
        + _audit(db, "admin.set_reads")
        + _audit(db, "admin.add_member")
        + _audit(db, "admin.set_member_role")
        + _audit(db, "admin.remove_member")
    ]
    assert actions == [
        "admin.create_project",
        "admin.set_reads",
        "admin.add_member",
        "admin.add_member",
        "admin.set_member_role",
        "admin.remove_member",
    ]
    assert all(e.target == f"project:{pid}" for e in _audit(db, "admin.add_member"))


OPERATIONS: dict[str, Callable[[Session, Principal, int, int], object]] = {
    "list_users": lambda s, p, uid, pid: admin.list_users(s, p),
    "create_user": lambda s, p, uid, pid: admin.create_user(s, p, "sneaky", PASSWORD, Role.ADMIN),
    "user_role": lambda s, p, uid, pid: admin.user_role(s, p, uid),
    "required_reads": lambda s, p, uid, pid: admin.required_reads(s, p, pid),
    "set_role": lambda s, p, uid, pid: admin.set_role(s, p, uid, Role.ADMIN),
    "deactivate": lambda s, p, uid, pid: admin.set_active(s, p, uid, False),
    "reactivate": lambda s, p, uid, pid: admin.set_active(s, p, uid, True),
    "reset_password": lambda s, p, uid, pid: admin.reset_password(s, p, uid, "pwned pwned"),
    "force_logout": lambda s, p, uid, pid: admin.force_logout(s, p, uid),
    "list_projects": lambda s, p, uid, pid: admin.list_projects(s, p),
    "create_project": lambda s, p, uid, pid: admin.create_project(s, p, "x", "", 1),
    "set_reads": lambda s, p, uid, pid: admin.set_required_reads(s, p, pid, 5),
    "add_member": lambda s, p, uid, pid: admin.add_member(s, p, pid, uid, ProjectRole.LEAD),
    "set_member_role": lambda s, p, uid, pid: admin.set_member_role(
        s, p, pid, uid, ProjectRole.LEAD
    ),
    "remove_member": lambda s, p, uid, pid: admin.remove_member(s, p, pid, uid),
}


def test_non_admins_are_refused_and_nothing_changes(
    db: Database, people: dict[str, Principal]
) -> None:
    token = _sign_in(db, "ann")
    with db.session() as s:
        pid = s.scalar(select(Project.id).where(Project.name == "trial"))
        assert pid is not None
    # A reviewer acting on themselves, an expert acting on someone else.
    for who in ("ann", "eve"):
        for name, operation in OPERATIONS.items():
            with db.session() as s, pytest.raises(PermissionDenied):
                operation(s, people[who], people["ann"].user_id, pid)
                pytest.fail(f"{who} could {name}")
    assert _alive(db, token)
    with db.session() as s:
        ann = s.get(User, people["ann"].user_id)
        assert ann is not None and ann.role == "reviewer" and ann.is_active
        assert auth.authenticate(s, "ann", PASSWORD) is not None
        assert s.scalar(select(func.count()).select_from(User)) == 3
        assert s.scalar(select(func.count()).select_from(Project)) == 1
        project = s.get(Project, pid)
        assert project is not None and project.required_reads == 1
        member = s.get(ProjectMember, (pid, ann.id))
        assert member is not None and member.role == "reviewer"
        admin_rows = select(func.count()).select_from(AuditEntry)
        assert s.scalar(admin_rows.where(AuditEntry.action.like("admin.%"))) == 0
    # The web layer records refusals in a transaction of their own.
    with db.session() as s:
        admin.record_refusal(s, people["ann"], "callback:admin-deactivate", "10.0.0.9")
    [entry] = _audit(db, "admin.refused")
    assert (entry.user_id, entry.role, entry.outcome) == (
        people["ann"].user_id,
        "reviewer",
        "denied",
    )
    assert entry.target == "callback:admin-deactivate" and entry.address == "10.0.0.9"
