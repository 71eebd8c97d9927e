"""Shell routing: path -> page layout, built server-side for the signed-in user."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from dash import Dash, Input, Output, dcc, html

from portal.services import catalog, jobs, viewer
from portal.services import review as review_service
from portal.services.auth import Principal
from portal.services.errors import NotFound
from portal.ui.ids import Shell
from portal.ui.pages import caselist, imports, review
from portal.web.context import portal, principal
from portal.web.security import csrf_token


def account(who: Principal) -> list[Any]:
    """Who is signed in, and the sign-out form (a real POST with the CSRF token)."""
    return [
        html.Span(f"{who.username} · {who.role.value}", className="nav-user"),
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

    def page(who: Principal, pathname: str | None, search: str | None) -> object:
        p = portal()
        if pathname in (None, "", "/"):
            with p.db.session() as s:
                return caselist.layout(
                    catalog.visible_project_names(s, who),
                    catalog.visible_modalities(s, who),
                    review_service.can_assign_any(s, who),
                )
        if pathname == "/import":
            with p.db.session() as s:
                projects = catalog.visible_project_names(s, who)
            return imports.layout(
                projects, who.is_admin, p.settings.max_upload_mb, jobs.list_jobs(p.db, who)
            )
        if pathname == "/review":
            params = parse_qs((search or "").lstrip("?"))
            ids = review.parse_study_ids(params.get("studies", [""])[0])
            try:
                page = max(1, int(params.get("page", ["1"])[0]))
            except ValueError:
                page = 1
            per_page = p.settings.panes_per_page
            on_page = ids[(page - 1) * per_page : page * per_page]
            panes = []
            with p.db.session() as s:
                for sid in on_page:
                    try:
                        detail, meta = viewer.pane_data(s, who, p.settings.preview_dir, sid)
                        study = review_service.study_review(s, who, sid, p.settings.store_dir)
                        panes.append((sid, (detail, meta, study)))
                    except NotFound:
                        panes.append((sid, None))
            if not ids:
                return html.Div(
                    [html.P("No studies chosen."), html.A("Back to the case list", href="/")],
                    className="empty",
                )
            return review.layout(ids, page, per_page, panes)
        return html.Div(
            [html.H2("Page not found"), html.A("Back to the case list", href="/")],
            className="empty",
        )
