"""The admin audit page: filters, the newest entries first, paging, CSV of the filter.

Layout only; `portal/ui/callbacks/audit.py` fills the table from `audit.query_audit`.
"""

from __future__ import annotations

from typing import Any

from dash import dcc, html

from portal.services.audit import ACTIONS, Outcome
from portal.ui.ids import Audit

COLUMNS = (
    ("at", "Time (UTC)"),
    ("username", "User"),
    ("role", "Role"),
    ("action", "Action"),
    ("outcome", "Outcome"),
    ("target", "Target"),
    ("study_uid", "Study UID"),
    ("address", "Address"),
    ("detail", "Detail"),
)


def _cell(item: dict[str, Any], key: str) -> str:
    value = item[key]
    if key == "at":
        return str(value).replace("T", " ")[:19]  # the column title says UTC
    return "" if value is None else str(value)


def table(items: list[dict[str, Any]]) -> html.Table:
    """Audit entries as rows; each row carries its entry id."""
    head = html.Thead(html.Tr([html.Th(title) for _, title in COLUMNS]))
    rows = [
        html.Tr(
            [html.Td(_cell(item, key)) for key, _ in COLUMNS],
            className=f"audit-{item['outcome']}",
            **{"data-entry-id": str(item["id"])},
        )
        for item in items
    ]
    if not rows:
        rows = [html.Tr(html.Td("No entries match.", colSpan=len(COLUMNS)))]
    return html.Table([head, html.Tbody(rows)], className="audit-table")


def _box(width: str, component: Any) -> html.Div:
    """A fixed-width slot in the filter row (Dash's inputs stretch to their container)."""
    return html.Div(component, style={"width": width})


def layout() -> html.Div:
    return html.Div(
        className="audit",
        children=[
            html.H2("Audit log"),
            html.Div(
                className="filters",
                children=[
                    _box(
                        "18rem",
                        dcc.DatePickerRange(
                            id=Audit.FROM_TO,
                            display_format="YYYY-MM-DD",
                            start_date_placeholder_text="from",
                            end_date_placeholder_text="to",
                            clearable=True,
                        ),
                    ),
                    _box(
                        "11rem",
                        dcc.Input(
                            id=Audit.USER, placeholder="username", debounce=True, type="text"
                        ),
                    ),
                    dcc.Dropdown(
                        id=Audit.ACTION,
                        options=[
                            {"label": name, "value": name, "title": meaning}
                            for name, meaning in sorted(ACTIONS.items())
                        ],
                        placeholder="any action",
                        style={"width": "14rem"},
                    ),
                    dcc.Dropdown(
                        id=Audit.OUTCOME,
                        options=[o.value for o in Outcome],
                        placeholder="any outcome",
                        style={"width": "11rem"},
                    ),
                    _box(
                        "20rem",
                        dcc.Input(
                            id=Audit.STUDY_UID, placeholder="study UID", debounce=True, type="text"
                        ),
                    ),
                    html.A(
                        "Export CSV", id=Audit.CSV, href="/api/v1/audit.csv", className="button"
                    ),
                ],
            ),
            html.Div(
                className="pager",
                children=[
                    html.Button("‹ Newer", id=Audit.NEWER, disabled=True),
                    html.Span(id=Audit.PAGE_TEXT),
                    html.Button("Older ›", id=Audit.OLDER, disabled=True),
                    html.Span(id=Audit.MESSAGE, className="job-bad", role="alert"),
                ],
            ),
            dcc.Store(id=Audit.CURSORS, data={"stack": [None], "next": None}),
            html.Div(id=Audit.TABLE),
        ],
    )
