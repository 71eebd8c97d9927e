"""Shell routing: path -> page layout, built server-side for the signed-in user."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from dash import Dash, Input, Output, dcc, html

from portal.services import (
    admin,
    assignments,
    audit,
    catalog,
    jobs,
    live,
    pacs,
    viewer,
)
from portal.services import review_view as review_data
from portal.services.auth import Principal
from portal.services.errors import InvalidInput, NotFound, PermissionDenied
from portal.ui.components.pane import pane
from portal.ui.ids import Shell
from portal.ui.pages import account as account_page
from portal.ui.pages import admin as admin_pages
from portal.ui.pages import audit as audit_page
from portal.ui.pages import caselist, dashboard, imports, review
from portal.ui.pages import pacs as pacs_page
from portal.web.auditing import record_refusal
from portal.web.context import portal, principal
from portal.web.security import csrf_token


def account(who: Principal) -> list[Any]:
    """Who is signed in (a link to their account), the admin links for admins, and the
    sign-out form (a real POST with the CSRF token)."""
    links: list[Any] = [
        html.A("Admin", href="/admin/users", className="nav-link"),
        html.A("Audit", href="/admin/audit", className="nav-link"),
    ]
    return [
        *(links if who.is_admin else []),
        html.A(f"{who.username} · {who.role.value}", href="/account", className="nav-user"),
        html.Form(
            method="post",
            action="/logout",
            className="logout",
            children=[
                dcc.Input(type="hidden", name="csrf_token", value=csrf_token()),
                html.Button("Sign out", type="submit", id="logout-button"),
            ],
        ),
    ]


def review_view(
    params: dict[str, list[str]],
) -> tuple[tuple[int, int] | None, dict[str, Any], dict[str, str]]:
    """(rows, columns) or None, the initial viewer state, and the query parameters the
    pager keeps, from a review URL's `layout` and the viewer state keys of
    `live.parse_state` (`mode`, `axis`, `slice_mm`, `window` as a preset or `low,high`,
    `overlay`/`outline` as 0 or 1, `opacity`, `hidden_labels` as `1,2`).

    A hand-edited URL with a bad value gets the default for it rather than an error.
    """
    keep: dict[str, str] = {}
    raw_layout = params.get("layout", [""])[0]
    shape = live.LAYOUTS.get(raw_layout)
    if shape:
        keep["layout"] = raw_layout
    raw_state: dict[str, Any] = {}

    def first(key: str) -> str:
        return params.get(key, [""])[0]

    if first("mode") in live.MODES:
        raw_state["mode"] = first("mode")
    if first("axis") in live.AXES:
        raw_state["axis"] = first("axis")
    for key in ("slice_mm", "opacity"):
        try:
            raw_state[key] = float(first(key))
        except ValueError:
            pass
    for key in ("overlay", "outline"):
        if first(key) in ("0", "1"):
            raw_state[key] = first(key) == "1"
    window = first("window")
    if window:
        bounds = window.split(",")
        try:
            raw_state["window"] = [float(v) for v in bounds] if len(bounds) == 2 else window
        except ValueError:
            pass
    hidden = [v for v in first("hidden_labels").split(",") if v.isdigit()]
    if hidden:
        raw_state["hidden_labels"] = [int(v) for v in hidden]
    state: dict[str, Any] = {}
    for key, value in raw_state.items():
        try:  # each key on its own: one bad value does not drop the others
            state.update(live.parse_state({key: value}))
        except InvalidInput:
            pass
    keep.update({k: _query_value(v) for k, v in state.items()})
    return shape, state, keep


def _query_value(value: Any) -> str:
    """A state value as the review URL writes it (lists comma-joined, booleans 0/1)."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, list):
        return ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
    return str(value)


def case_list_order(who: Principal, ids: list[int], params: dict[str, list[str]]) -> list[int]:
    """The ids in the case list's sort when the URL names one (`sort`, `desc=1`): the case
    list sends the selection with its sort, and the database orders it the same way."""
    try:
        sort = catalog.SortKey(params.get("sort", [""])[0])
    except ValueError:
        return ids
    with portal().db.session() as s:
        return catalog.in_case_list_order(s, who, ids, sort, params.get("desc", [""])[0] == "1")


def register(app: Dash) -> None:
    @app.callback(
        Output(Shell.PAGE, "children"),
        Output(Shell.NAV, "children"),
        Input(Shell.URL, "pathname"),
        Input(Shell.URL, "search"),
    )
    def route(pathname: str | None, search: str | None) -> tuple[object, list[Any]]:
        who = principal()
        return page(who, pathname, search), account(who)

    def admin_page(who: Principal, pathname: str) -> object:
        try:
            with portal().db.session() as s:
                users, projects = admin.list_users(s, who), admin.list_projects(s, who)
        except PermissionDenied:
            return admin_pages.not_allowed()
        if pathname == "/admin/users":
            return admin_pages.users_layout(users, projects)
        return admin_pages.projects_layout(projects, users)

    def page(who: Principal, pathname: str | None, search: str | None) -> object:
        p = portal()
        if pathname in (None, "", "/"):
            with p.db.session() as s:
                return caselist.layout(
                    catalog.visible_project_names(s, who),
                    catalog.visible_modalities(s, who),
                    assignments.can_assign_any(s, who),
                )
        if pathname == "/import":
            with p.db.session() as s:
                projects = catalog.visible_project_names(s, who)
            return imports.layout(
                projects, who.is_admin, p.settings.max_upload_mb, jobs.list_jobs(p.db, who)
            )
        if pathname == "/pacs":
            with p.db.session() as s:
                projects = catalog.visible_project_names(s, who)
            found = pacs.parse_sources(p.settings.pacs_sources).values()
            return pacs_page.layout([(src.name, src.kind) for src in found], projects)
        if pathname in ("/admin/users", "/admin/projects"):
            return admin_page(who, pathname)
        if pathname == "/account":
            return account_page.layout(who)
        if pathname == "/dashboard":
            with p.db.session() as s:
                return dashboard.layout(catalog.visible_project_names(s, who))
        if pathname == "/review":
            params = parse_qs((search or "").lstrip("?"))
            ids = review.parse_study_ids(params.get("studies", [""])[0])
            ids = case_list_order(who, ids, params)
            try:
                page = max(1, int(params.get("page", ["1"])[0]))
            except ValueError:
                page = 1
            shape, state, keep = review_view(params)
            per_page = p.settings.panes_per_page
            if shape:
                # The requested layout, within the administrator's WebGL-context limit.
                per_page = min(shape[0] * shape[1], per_page)
            on_page = ids[(page - 1) * per_page : page * per_page]
            panes: list[tuple[int, html.Div | None]] = []
            with p.db.session() as s:
                for sid in on_page:
                    try:
                        detail, meta = viewer.pane_data(
                            s,
                            who,
                            p.settings.preview_dir,
                            sid,
                            store_dir=p.settings.store_dir,
                            max_voxels=p.settings.max_voxels,
                        )
                        study = review_data.study_review(s, who, sid, p.settings.store_dir)
                        k = None
                        if "slice_mm" in state and state.get("axis", "axial") == "axial":
                            k = viewer.slice_index(meta, state["slice_mm"])
                        surfaces = None
                        if state.get("mode") == "3d":
                            surfaces = viewer.label_surfaces(s, who, p.settings.preview_dir, sid)
                        panes.append((sid, pane(detail, meta, study, k, surfaces, state)))
                    except NotFound:
                        # This transaction commits (other panes load), so no own one.
                        audit.record_denial(
                            s, who.user_id, f"study:{sid}", "at=dash:review-page not-found"
                        )
                        panes.append((sid, None))
            if not ids:
                return html.Div(
                    [html.P("No studies chosen."), html.A("Back to the case list", href="/")],
                    className="empty",
                )
            return review.layout(ids, page, per_page, panes, shape, keep, p.settings.panes_per_page)
        if pathname == "/admin/audit":
            try:
                audit.require_admin(who)
            except PermissionDenied as exc:
                record_refusal(exc, "page:/admin/audit", "dash:router")
                return not_found()
            return audit_page.layout()
        return not_found()

    def not_found() -> html.Div:
        return html.Div(
            [html.H2("Page not found"), html.A("Back to the case list", href="/")],
            className="empty",
        )
