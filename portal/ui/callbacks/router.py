"""Shell routing: path -> page layout, built server-side for the signed-in user."""

from __future__ import annotations

from urllib.parse import parse_qs

from dash import Dash, Input, Output, html

from portal.services import catalog, viewer
from portal.services.errors import NotFound
from portal.ui.ids import Shell
from portal.ui.pages import caselist, review
from portal.web.context import portal, principal


def register(app: Dash) -> None:
    @app.callback(
        Output(Shell.PAGE, "children"),
        Input(Shell.URL, "pathname"),
        Input(Shell.URL, "search"),
    )
    def route(pathname: str | None, search: str | None) -> object:
        who = principal()
        p = portal()
        if pathname in (None, "", "/"):
            with p.db.session() as s:
                return caselist.layout(
                    catalog.visible_project_names(s, who), catalog.visible_modalities(s, who)
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
                        panes.append((sid, viewer.pane_data(s, who, p.settings.preview_dir, sid)))
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
