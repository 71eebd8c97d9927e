"""Admin page callbacks: one per page, dispatching on the button pressed.

Anyone signed in can POST to `/_dash-update-component`, so nothing here trusts the page:
every action and every listing goes through `portal.services.admin`, which refuses
non-admins. A refusal changes nothing and shows nothing but "Not allowed".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dash import Dash, Input, Output, State, ctx, no_update
from flask import request
from sqlalchemy.orm import Session

from portal.db.models import ProjectRole, Role
from portal.services import admin
from portal.services.auth import Principal
from portal.services.errors import InvalidInput, NotFound, PermissionDenied, ServiceError
from portal.ui.ids import Admin
from portal.ui.pages import admin as pages
from portal.web.context import portal, principal

# (component, property) lists, shared with tests that call the callbacks directly.
USER_OUTPUTS = [
    (Admin.USER_MESSAGE, "children"),
    (Admin.USER_TABLE, "children"),
    (Admin.USER, "options"),
    (Admin.NEW_PASSWORD, "value"),
    (Admin.RESET_PASSWORD, "value"),
]
USER_INPUTS = [
    (b, "n_clicks")
    for b in (
        Admin.CREATE_USER,
        Admin.SET_ROLE,
        Admin.DEACTIVATE,
        Admin.REACTIVATE,
        Admin.RESET,
        Admin.FORCE_LOGOUT,
    )
]
USER_STATE = [
    (Admin.NEW_USERNAME, "value"),
    (Admin.NEW_PASSWORD, "value"),
    (Admin.NEW_ROLE, "value"),
    (Admin.NEW_PROJECTS, "value"),
    (Admin.USER, "value"),
    (Admin.ROLE, "value"),
    (Admin.RESET_PASSWORD, "value"),
]
PROJECT_OUTPUTS = [
    (Admin.PROJECT_MESSAGE, "children"),
    (Admin.PROJECT_TABLE, "children"),
    (Admin.PROJECT, "options"),
]
PROJECT_INPUTS = [
    (b, "n_clicks")
    for b in (
        Admin.CREATE_PROJECT,
        Admin.SET_READS,
        Admin.ADD_MEMBER,
        Admin.SET_MEMBER_ROLE,
        Admin.REMOVE_MEMBER,
    )
]
PROJECT_STATE = [
    (Admin.NEW_PROJECT_NAME, "value"),
    (Admin.NEW_PROJECT_DESCRIPTION, "value"),
    (Admin.NEW_PROJECT_READS, "value"),
    (Admin.PROJECT, "value"),
    (Admin.READS, "value"),
    (Admin.MEMBER, "value"),
    (Admin.MEMBER_ROLE, "value"),
]

REFUSED = "Not allowed: only administrators may do this."


def _chosen(value: object, what: str) -> int:
    if value in (None, ""):
        raise InvalidInput(f"choose a {what} first")
    try:
        return int(str(value))
    except ValueError:
        raise InvalidInput(f"unknown {what}") from None


def _number(value: object, what: str) -> int:
    try:
        return int(str(value))
    except ValueError:
        raise InvalidInput(f"{what} must be a whole number") from None


def _role(value: object) -> Role:
    try:
        return Role(str(value))
    except ValueError:
        raise InvalidInput(f"unknown role {value!r}") from None


def _project_role(value: object) -> ProjectRole:
    try:
        return ProjectRole(str(value))
    except ValueError:
        raise InvalidInput(f"unknown project role {value!r}") from None


def _sessions(n: int) -> str:
    return f"{n} session{'s' if n != 1 else ''} ended"


def user_action(session: Session, who: Principal, button: str, form: dict[str, Any]) -> str:
    """Do what `button` asks with the users form's values; return the message to show."""
    if button == Admin.CREATE_USER:
        user = admin.create_user(
            session,
            who,
            form[Admin.NEW_USERNAME] or "",
            form[Admin.NEW_PASSWORD] or "",
            _role(form[Admin.NEW_ROLE]),
            [_chosen(p, "project") for p in form[Admin.NEW_PROJECTS] or []],
        )
        return f"Created {user.username}."
    user_id = _chosen(form[Admin.USER], "user")
    if button == Admin.SET_ROLE:
        admin.set_role(session, who, user_id, _role(form[Admin.ROLE]))
        return "Role changed."
    if button == Admin.DEACTIVATE:
        return f"Deactivated; {_sessions(admin.set_active(session, who, user_id, False))}."
    if button == Admin.REACTIVATE:
        admin.set_active(session, who, user_id, True)
        return "Reactivated."
    if button == Admin.RESET:
        ended = admin.reset_password(session, who, user_id, form[Admin.RESET_PASSWORD] or "")
        return f"Password reset; {_sessions(ended)}."
    if button == Admin.FORCE_LOGOUT:
        return f"Logged out; {_sessions(admin.force_logout(session, who, user_id))}."
    raise InvalidInput("unknown action")


def project_action(session: Session, who: Principal, button: str, form: dict[str, Any]) -> str:
    """Do what `button` asks with the projects form's values; return the message to show."""
    if button == Admin.CREATE_PROJECT:
        project = admin.create_project(
            session,
            who,
            form[Admin.NEW_PROJECT_NAME] or "",
            form[Admin.NEW_PROJECT_DESCRIPTION] or "",
            _number(form[Admin.NEW_PROJECT_READS], "reads needed"),
        )
        return f"Created {project.name}."
    project_id = _chosen(form[Admin.PROJECT], "project")
    if button == Admin.SET_READS:
        reads = _number(form[Admin.READS], "reads needed")
        admin.set_required_reads(session, who, project_id, reads)
        return f"Each item now needs {reads} read{'s' if reads != 1 else ''}."
    user_id = _chosen(form[Admin.MEMBER], "user")
    if button == Admin.ADD_MEMBER:
        role = _project_role(form[Admin.MEMBER_ROLE])
        admin.add_member(session, who, project_id, user_id, role)
        return "Member added."
    if button == Admin.SET_MEMBER_ROLE:
        role = _project_role(form[Admin.MEMBER_ROLE])
        admin.set_member_role(session, who, project_id, user_id, role)
        return "Member role changed."
    if button == Admin.REMOVE_MEMBER:
        admin.remove_member(session, who, project_id, user_id)
        return "Member removed."
    raise InvalidInput("unknown action")


def _run(
    act: Callable[[Session, Principal, str, dict[str, Any]], str],
    state: list[tuple[Admin, str]],
    values: tuple[Any, ...],
) -> tuple[str, Principal] | None:
    """Run one admin action in its own transaction; None if the caller is not an admin."""
    who = principal()
    button = str(ctx.triggered_id)
    form = {component: value for (component, _), value in zip(state, values, strict=True)}
    try:
        if not who.is_admin:  # the service refuses too; this keeps bad input from mattering
            raise PermissionDenied("only administrators may do this")
        with portal().db.session() as s:
            return act(s, who, button, form), who
    except PermissionDenied:
        with portal().db.session() as s:
            admin.record_refusal(s, who, f"callback:{button}", request.remote_addr or "")
        return None
    except ServiceError as exc:
        return f"Not done: {exc}", who


def register(app: Dash) -> None:
    @app.callback(
        [Output(c, p) for c, p in USER_OUTPUTS],
        [Input(c, p) for c, p in USER_INPUTS],
        [State(c, p) for c, p in USER_STATE],
        prevent_initial_call=True,
    )
    def users(*args: Any) -> tuple[object, ...]:
        done = _run(user_action, USER_STATE, args[len(USER_INPUTS) :])
        if done is None:
            return REFUSED, no_update, no_update, no_update, no_update
        message, who = done
        with portal().db.session() as s:
            rows = admin.list_users(s, who)
        return message, pages.user_table(rows), pages.user_options(rows), "", ""

    @app.callback(
        [Output(c, p) for c, p in PROJECT_OUTPUTS],
        [Input(c, p) for c, p in PROJECT_INPUTS],
        [State(c, p) for c, p in PROJECT_STATE],
        prevent_initial_call=True,
    )
    def projects(*args: Any) -> tuple[object, ...]:
        done = _run(project_action, PROJECT_STATE, args[len(PROJECT_INPUTS) :])
        if done is None:
            return REFUSED, no_update, no_update
        message, who = done
        with portal().db.session() as s:
            rows = admin.list_projects(s, who)
        return message, pages.project_table(rows), pages.project_options(rows)

    @app.callback(
        Output(Admin.ROLE, "value"), Input(Admin.USER, "value"), prevent_initial_call=True
    )
    def prefill_role(user_id: int | None) -> object:
        """Show the chosen user's current global role."""
        if user_id is None:
            return no_update
        try:
            with portal().db.session() as s:
                return admin.user_role(s, principal(), int(user_id)).value
        except (PermissionDenied, NotFound, ValueError):
            return no_update

    @app.callback(
        Output(Admin.READS, "value"), Input(Admin.PROJECT, "value"), prevent_initial_call=True
    )
    def prefill_reads(project_id: int | None) -> object:
        """Show the chosen project's current reads per item."""
        if project_id is None:
            return no_update
        try:
            with portal().db.session() as s:
                return admin.required_reads(s, principal(), int(project_id))
        except (PermissionDenied, NotFound, ValueError):
            return no_update
