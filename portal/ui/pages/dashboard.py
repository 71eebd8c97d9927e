"""The project dashboard: review progress, readers, throughput and agreement as charts.

The numbers come from `services.reports.dashboard_data`; this module only draws them.
"""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go
from dash import dcc, html

from portal.db.models import ReviewStatus
from portal.ui.ids import Dashboard

# Fixed colours per state and verdict, so a state looks the same in every chart.
STATE_COLORS = {
    ReviewStatus.UNREVIEWED.value: "#9e9e9e",
    ReviewStatus.IN_REVIEW.value: "#1e88e5",
    ReviewStatus.APPROVED.value: "#43a047",
    ReviewStatus.NEEDS_EDIT.value: "#fb8c00",
    ReviewStatus.FLAGGED_FOR_EXPERT.value: "#e53935",
    ReviewStatus.REJECTED.value: "#6d4c41",
}
_GRAPH_CONFIG = {"displayModeBar": False, "responsive": True}


def _base(title: str, figure: go.Figure, empty: str = "") -> go.Figure:
    """Common layout; `empty` is written across a chart that has nothing to show."""
    if empty:
        figure.add_annotation(text=empty, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
        figure.update_xaxes(visible=False)
        figure.update_yaxes(visible=False)
    figure.update_layout(
        title={"text": title, "x": 0.01},
        margin={"l": 50, "r": 20, "t": 50, "b": 50},
        height=320,
        template="plotly_white",
        legend={"orientation": "h", "y": -0.2},
    )
    return figure


def states_figure(data: dict[str, Any]) -> go.Figure:
    """Review items by state (bar)."""
    states = list(data["states"])
    return _base(
        "Items by state",
        go.Figure(
            go.Bar(
                x=states,
                y=[data["states"][s] for s in states],
                marker_color=[STATE_COLORS.get(s, "#777") for s in states],
            )
        ),
    )


def readers_figure(data: dict[str, Any]) -> go.Figure:
    """Reads per reader, stacked by verdict."""
    readers = list(data["readers"])
    verdicts = [s for s in STATE_COLORS if any(s in c for c in data["readers"].values())]
    figure = go.Figure(
        [
            go.Bar(
                name=verdict,
                x=readers,
                y=[data["readers"][r].get(verdict, 0) for r in readers],
                marker_color=STATE_COLORS[verdict],
            )
            for verdict in verdicts
        ]
    )
    figure.update_layout(barmode="stack")
    return _base("Reads per reviewer by verdict", figure, "" if readers else "No reads yet")


def throughput_figure(data: dict[str, Any]) -> go.Figure:
    """Reads and decisions per UTC day (lines)."""
    days = [row["day"] for row in data["throughput"]]
    figure = go.Figure(
        [
            go.Scatter(
                name=name,
                x=days,
                y=[row[name] for row in data["throughput"]],
                mode="lines+markers",
                line_color=color,
            )
            for name, color in (("reads", "#1e88e5"), ("decisions", "#43a047"))
        ]
    )
    return _base("Throughput per day", figure, "" if days else "No reads yet")


def agreement_figure(data: dict[str, Any]) -> go.Figure:
    """Distribution of verdict agreement (and Dice) over items with two or more reads."""
    traces = [
        go.Histogram(
            name="verdict agreement",
            x=data["agreement"],
            xbins={"start": 0, "end": 1.0001, "size": 0.1},
            marker_color="#8e24aa",
        )
    ]
    if data["dice"]:
        traces.append(
            go.Histogram(
                name="Dice",
                x=data["dice"],
                xbins={"start": 0, "end": 1.0001, "size": 0.1},
                marker_color="#00897b",
            )
        )
    figure = go.Figure(traces)
    figure.update_layout(barmode="group", xaxis={"range": [0, 1.05]})
    return _base(
        f"Agreement ({len(data['agreement'])} items with ≥ 2 reads)",
        figure,
        "" if data["agreement"] else "No item has two reads yet",
    )


def summary(data: dict[str, Any]) -> str:
    decided = sum(
        data["states"].get(s.value, 0)
        for s in (ReviewStatus.APPROVED, ReviewStatus.NEEDS_EDIT, ReviewStatus.REJECTED)
    )
    reads = sum(r["reads"] for r in data["throughput"])
    return " · ".join(
        [
            _count(data["studies"], "study", "studies"),
            _count(data["items"], "review item", "review items"),
            f"{decided} decided",
            _count(reads, "read", "reads"),
        ]
    )


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def layout(projects: list[str]) -> html.Div:
    """The page; the project's figures are filled in by the dashboard callback."""
    if not projects:
        return html.Div(
            [html.P("You are not a member of any project yet."), html.A("Cases", href="/")],
            className="empty",
        )
    graphs = [Dashboard.STATES, Dashboard.READERS, Dashboard.THROUGHPUT, Dashboard.AGREEMENT]
    return html.Div(
        className="dashboard",
        children=[
            html.Div(
                className="filters",
                children=[
                    dcc.Dropdown(
                        id=Dashboard.PROJECT,
                        options=projects,
                        value=projects[0],
                        clearable=False,
                        className="filter",
                    ),
                    html.Span(id=Dashboard.SUMMARY, className="dashboard-summary"),
                ],
            ),
            html.Div(
                className="dashboard-grid",
                children=[
                    dcc.Graph(id=g, config=_GRAPH_CONFIG, className="dashboard-chart")
                    for g in graphs
                ],
            ),
        ],
    )
