"""Build the Dash app on the portal's Flask server (called only from `create_app`)."""

from __future__ import annotations

from pathlib import Path

from dash import Dash, dcc, html
from flask import Flask

from portal.ui.callbacks import (
    account,
    admin,
    audit,
    caselist,
    dashboard,
    grid,
    pacs,
    review,
    router,
    segmentation_upload,
)
from portal.ui.ids import Shell
from portal.web.security import CSRF_COOKIE, CSRF_HEADER

ASSETS_DIR = Path(__file__).resolve().parents[2] / "assets"


def shell() -> html.Div:
    """The page frame. It holds no user or case data: the router callback fills it in."""
    return html.Div(
        className="shell",
        children=[
            dcc.Location(id=Shell.URL, refresh="callback-nav"),
            html.Header(
                className="nav",
                children=[
                    html.A("portal", href="/", className="brand"),
                    html.A("Cases", href="/", className="nav-link"),
                    html.A("Import", href="/import", className="nav-link"),
                    html.A("PACS", href="/pacs", className="nav-link"),
                    html.A("Dashboard", href="/dashboard", className="nav-link"),
                    html.Span(className="nav-spacer"),
                    html.Div(id=Shell.NAV, className="nav-account"),
                ],
            ),
            html.Main(id=Shell.PAGE, className="page"),
        ],
    )


def build_dash(server: Flask) -> Dash:
    app = Dash(
        __name__,
        server=server,
        url_base_pathname="/",
        assets_folder=str(ASSETS_DIR),
        title="portal",
        update_title=None,
        suppress_callback_exceptions=True,
        serve_locally=True,
        compress=False,
        # The renderer sends this cookie's value in this header; the guard checks it.
        csrf_token_name=CSRF_COOKIE,
        csrf_header_name=CSRF_HEADER,
    )
    app.layout = shell
    router.register(app)
    caselist.register(app)
    review.register(app)
    segmentation_upload.register(app)
    grid.register(app)
    pacs.register(app)
    admin.register(app)
    account.register(app)
    audit.register(app)
    dashboard.register(app)
    _register_bundles(app, server)
    return app


def _register_bundles(app: Dash, server: Flask) -> None:
    """Register every JS/CSS bundle path now, not when this worker first renders the index.

    Dash fills `registered_paths` while rendering the index page; under several gunicorn
    workers a worker whose first request is a bundle would answer 500 without this.
    """
    with server.test_request_context("/"):
        app._generate_scripts_html()  # noqa: SLF001
        app._generate_css_dist_html()  # noqa: SLF001
