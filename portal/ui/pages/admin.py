"""Admin pages: users (/admin/users) and projects (/admin/projects). Layout only.

The router builds these only for admins; the callbacks in `portal.ui.callbacks.admin`
check again through the admin service, since anyone signed in can POST to them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from dash import dcc, html

from portal.db.models import ProjectRole, Role
from portal.services.admin import MAX_REQUIRED_READS, MIN_REQUIRED_READS, ProjectRow, UserRow
from portal.services.auth import MIN_PASSWORD_LENGTH
from portal.ui.ids import Admin

ROLE_OPTIONS = [{"label": r.value, "value": r.value} for r in Role]
PROJECT_ROLE_OPTIONS = [{"label": r.value, "value": r.value} for r in ProjectRole]


def not_allowed() -> html.Div:
    return html.Div(
        [html.H2("Not allowed"), html.P("Only administrators may open this page.")],
        className="empty",
    )


def _tabs(current: str) -> html.Nav:
    links = [("/admin/users", "Users"), ("/admin/projects", "Projects")]
    return html.Nav(
        className="admin-tabs",
        children=[
            html.A(text, href=href, className="admin-tab" + (" current" if href == current else ""))
            for href, text in links
        ],
    )


def _table(head: list[str], rows: list[list[Any]], empty: str) -> html.Table | html.P:
    if not rows:
        return html.P(empty, className="muted")
    return html.Table(
        className="admin-table",
        children=[
            html.Thead(html.Tr([html.Th(h) for h in head])),
            html.Tbody([html.Tr([html.Td(cell) for cell in row]) for row in rows]),
        ],
    )


def _when(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M UTC") if at else "never"


def user_table(users: list[UserRow]) -> html.Table | html.P:
    rows = [
        [
            u.username,
            u.role.value,
            "active" if u.active else "deactivated",
            ", ".join(f"{m.project} ({m.role.value})" for m in u.memberships) or "–",
            str(u.open_sessions),
            _when(u.last_login),
        ]
        for u in users
    ]
    head = ["User", "Role", "Status", "Projects", "Open sessions", "Last sign-in"]
    return _table(head, rows, "No users.")


def user_options(users: list[UserRow]) -> list[dict[str, object]]:
    return [
        {"label": u.username + ("" if u.active else " (deactivated)"), "value": u.id} for u in users
    ]


def project_options(projects: list[ProjectRow]) -> list[dict[str, object]]:
    return [{"label": p.name, "value": p.id} for p in projects]


def project_table(projects: list[ProjectRow]) -> html.Table | html.P:
    rows = [
        [
            p.name,
            p.description,
            str(p.required_reads),
            str(p.study_count),
            ", ".join(f"{m.username} ({m.role.value})" for m in p.members) or "–",
        ]
        for p in projects
    ]
    head = ["Project", "Description", "Reads needed", "Studies", "Members"]
    return _table(head, rows, "No projects yet.")


def _field(label: str, control: Any) -> html.Label:
    return html.Label([html.Span(label, className="admin-label"), control], className="admin-field")


def _password(id_: Admin, placeholder: str) -> dcc.Input:
    return dcc.Input(
        id=id_,
        type="password",
        placeholder=placeholder,
        autoComplete="new-password",
        minLength=MIN_PASSWORD_LENGTH,
        debounce=False,
    )


def users_layout(users: list[UserRow], projects: list[ProjectRow]) -> html.Div:
    at_least = f"at least {MIN_PASSWORD_LENGTH} characters"
    return html.Div(
        className="admin",
        children=[
            _tabs("/admin/users"),
            html.H2("Users"),
            html.Div(id=Admin.USER_MESSAGE, className="admin-message", role="status"),
            html.Div(user_table(users), id=Admin.USER_TABLE),
            html.Section(
                className="admin-form",
                children=[
                    html.H3("New user"),
                    _field("Username", dcc.Input(id=Admin.NEW_USERNAME, autoComplete="off")),
                    _field("Password", _password(Admin.NEW_PASSWORD, at_least)),
                    _field(
                        "Role",
                        dcc.Dropdown(
                            id=Admin.NEW_ROLE,
                            options=ROLE_OPTIONS,
                            value=Role.REVIEWER.value,
                            clearable=False,
                        ),
                    ),
                    _field(
                        "Projects",
                        dcc.Dropdown(
                            id=Admin.NEW_PROJECTS, options=project_options(projects), multi=True
                        ),
                    ),
                    html.Button("Create user", id=Admin.CREATE_USER, className="button"),
                ],
            ),
            html.Section(
                className="admin-form",
                children=[
                    html.H3("Change a user"),
                    _field(
                        "User",
                        dcc.Dropdown(id=Admin.USER, options=user_options(users)),
                    ),
                    html.Div(
                        className="admin-row",
                        children=[
                            _field(
                                "Global role",
                                dcc.Dropdown(id=Admin.ROLE, options=ROLE_OPTIONS, clearable=False),
                            ),
                            html.Button("Change role", id=Admin.SET_ROLE),
                        ],
                    ),
                    html.Div(
                        className="admin-row",
                        children=[
                            _field("New password", _password(Admin.RESET_PASSWORD, at_least)),
                            html.Button("Reset password", id=Admin.RESET),
                        ],
                    ),
                    html.P(
                        "Deactivating, resetting the password and forcing a logout end all "
                        "of the user's sessions at once.",
                        className="muted",
                    ),
                    html.Div(
                        className="admin-row",
                        children=[
                            html.Button("Force logout", id=Admin.FORCE_LOGOUT),
                            html.Button("Deactivate", id=Admin.DEACTIVATE, className="danger"),
                            html.Button("Reactivate", id=Admin.REACTIVATE),
                        ],
                    ),
                ],
            ),
        ],
    )


def projects_layout(projects: list[ProjectRow], users: list[UserRow]) -> html.Div:
    reads = {"type": "number", "min": MIN_REQUIRED_READS, "max": MAX_REQUIRED_READS, "step": 1}
    return html.Div(
        className="admin",
        children=[
            _tabs("/admin/projects"),
            html.H2("Projects"),
            html.Div(id=Admin.PROJECT_MESSAGE, className="admin-message", role="status"),
            html.Div(project_table(projects), id=Admin.PROJECT_TABLE),
            html.Section(
                className="admin-form",
                children=[
                    html.H3("New project"),
                    _field("Name", dcc.Input(id=Admin.NEW_PROJECT_NAME, autoComplete="off")),
                    _field("Description", dcc.Input(id=Admin.NEW_PROJECT_DESCRIPTION)),
                    _field(
                        "Reads needed per item",
                        dcc.Input(id=Admin.NEW_PROJECT_READS, value=1, **reads),
                    ),
                    html.Button("Create project", id=Admin.CREATE_PROJECT, className="button"),
                ],
            ),
            html.Section(
                className="admin-form",
                children=[
                    html.H3("Change a project"),
                    _field(
                        "Project",
                        dcc.Dropdown(id=Admin.PROJECT, options=project_options(projects)),
                    ),
                    html.Div(
                        className="admin-row",
                        children=[
                            _field("Reads needed per item", dcc.Input(id=Admin.READS, **reads)),
                            html.Button("Set reads", id=Admin.SET_READS),
                        ],
                    ),
                    html.H4("Members"),
                    html.Div(
                        className="admin-row",
                        children=[
                            _field(
                                "User",
                                dcc.Dropdown(id=Admin.MEMBER, options=user_options(users)),
                            ),
                            _field(
                                "Project role",
                                dcc.Dropdown(
                                    id=Admin.MEMBER_ROLE,
                                    options=PROJECT_ROLE_OPTIONS,
                                    value=ProjectRole.REVIEWER.value,
                                    clearable=False,
                                ),
                            ),
                        ],
                    ),
                    html.Div(
                        className="admin-row",
                        children=[
                            html.Button("Add member", id=Admin.ADD_MEMBER),
                            html.Button("Change member role", id=Admin.SET_MEMBER_ROLE),
                            html.Button(
                                "Remove member", id=Admin.REMOVE_MEMBER, className="danger"
                            ),
                        ],
                    ),
                ],
            ),
        ],
    )
