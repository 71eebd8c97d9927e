"""Dashboard callback: the chosen project's chart data from the reports service."""

from __future__ import annotations

from dash import Dash, Input, Output, no_update

from portal.services import reports
from portal.ui.ids import Dashboard
from portal.ui.pages import dashboard
from portal.web.context import portal, principal


def register(app: Dash) -> None:
    @app.callback(
        Output(Dashboard.STATES, "figure"),
        Output(Dashboard.READERS, "figure"),
        Output(Dashboard.THROUGHPUT, "figure"),
        Output(Dashboard.AGREEMENT, "figure"),
        Output(Dashboard.SUMMARY, "children"),
        Input(Dashboard.PROJECT, "value"),
    )
    def figures(project: str | None) -> tuple[object, ...]:
        if not project:
            return (no_update,) * 5
        p = portal()
        with p.db.session() as s:
            # Only visible studies count: a non-member's project name gives empty charts.
            data = reports.project_dashboard(s, principal(), project, p.settings.store_dir)
        return (
            dashboard.states_figure(data),
            dashboard.readers_figure(data),
            dashboard.throughput_figure(data),
            dashboard.agreement_figure(data),
            dashboard.summary(data),
        )
