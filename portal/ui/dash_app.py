"""Build the Dash app on the portal's Flask server (called only from `create_app`)."""

from __future__ import annotations

from pathlib import Path

from dash import Dash, dcc, html
from flask import Flask

from portal.ui.callbacks import caselist, review, router
from portal.ui.ids import Shell
from portal.web.context import principal
from portal.web.security import csrf_token

ASSETS_DIR = Path(__file__).resolve().parents[2] / "assets"


def shell() -> html.Div:
    """The page frame. Served only to signed-in users (the guard refuses `/_dash-layout`)."""
    who = principal()
    return html.Div(
        className="shell",
        children=[
            dcc.Location(id=Shell.URL, refresh="callback-nav"),
            html.Header(
                id=Shell.NAV,
                className="nav",
                children=[
                    html.A("portal", href="/", className="brand"),
                    html.A("Cases", href="/", className="nav-link"),
                    html.Span(className="nav-spacer"),
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
    )
    app.layout = shell
    router.register(app)
    caselist.register(app)
    review.register(app)
    return app
