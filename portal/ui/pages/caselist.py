"""The case list: a server-side paged, sorted and filtered dash-ag-grid of studies."""

from __future__ import annotations

from urllib.parse import urlencode

import dash_ag_grid as dag
from dash import dcc, html

from portal.db.models import ReviewStatus
from portal.services.catalog import Queue
from portal.ui.components.pane import STATUS_LABELS
from portal.ui.ids import CaseList

PAGE_SIZE = 25
EXPORT_PARAMS = {"search": "q", "modality": "modality", "status": "status", "project": "project"}


def export_href(fmt: str, filters: dict[str, str | None]) -> str:
    """The export link of the case list's current filter (`fmt`: csv or xlsx)."""
    params = {EXPORT_PARAMS[k]: v for k, v in filters.items() if v and k in EXPORT_PARAMS}
    query = f"?{urlencode(params)}" if params else ""
    return f"/api/v1/exports/review.{fmt}{query}"


QUEUE_LABELS = {
    Queue.ALL.value: "All",
    Queue.MINE.value: "My queue",
    Queue.EXPERT.value: "Expert queue",
    Queue.OVERDUE.value: "Overdue",
}

COLUMNS = [
    {
        "headerName": "",
        "field": "thumb",
        "cellRenderer": "StudyThumb",
        "tooltipField": "id",
        "tooltipComponent": "MosaicTooltip",
        "width": 86,
        "sortable": False,
    },
    {
        "headerName": "Case",
        "field": "name",
        "cellRenderer": "StudyLink",
        "flex": 2,
        "minWidth": 200,
    },
    {"headerName": "Patient", "field": "patient_name", "flex": 1, "minWidth": 120},
    {"headerName": "Project", "field": "project", "width": 120},
    {"headerName": "Modality", "field": "modality", "width": 110},
    {"headerName": "Dimensions", "field": "dimensions", "width": 140, "sortable": False},
    {"headerName": "Segs", "field": "segmentation_count", "width": 90},
    {"headerName": "Status", "field": "review_status", "cellRenderer": "StatusChip", "width": 170},
    {
        "headerName": "Flag reason",
        "field": "review_reason",
        "flex": 1,
        "minWidth": 140,
        "sortable": False,
    },
    {"headerName": "Reviewed by", "field": "reviewed_by", "width": 130, "sortable": False},
    {"headerName": "Assigned to", "field": "assigned_to", "width": 130, "sortable": False},
    {
        "headerName": "Due",
        "field": "due_at",
        "width": 120,
        "sortable": False,
        "valueFormatter": {"function": "params.value ? params.value.slice(0, 10) : ''"},
    },
    {
        "headerName": "Reviewed",
        "field": "reviewed_at",
        "width": 170,
        "valueFormatter": {
            "function": "params.value ? params.value.slice(0, 16).replace('T', ' ') : ''"
        },
    },
]


def layout(projects: list[str], modalities: list[str], can_assign: bool = False) -> html.Div:
    """The case list; `can_assign` (project leads, admins) shows the bulk-assign control."""
    return html.Div(
        className="caselist",
        children=[
            html.Div(
                className="queues",
                children=[
                    dcc.RadioItems(
                        id=CaseList.QUEUE,
                        options=[{"label": t, "value": v} for v, t in QUEUE_LABELS.items()],
                        value=Queue.ALL.value,
                        inline=True,
                        className="queue-choice",
                    ),
                    _assign_box(can_assign),
                ],
            ),
            html.Div(
                className="filters",
                children=[
                    dcc.Input(
                        id=CaseList.SEARCH,
                        type="search",
                        placeholder="Search case or patient name",
                        debounce=0.3,
                        className="search",
                    ),
                    dcc.Dropdown(
                        id=CaseList.MODALITY,
                        options=modalities,
                        placeholder="Modality",
                        className="filter",
                    ),
                    dcc.Dropdown(
                        id=CaseList.STATUS,
                        options=[
                            {"label": STATUS_LABELS[s.value], "value": s.value}
                            for s in ReviewStatus
                        ],
                        placeholder="Review status",
                        className="filter",
                    ),
                    dcc.Dropdown(
                        id=CaseList.PROJECT,
                        options=projects,
                        placeholder="Project",
                        className="filter",
                    ),
                    html.A(
                        "Export CSV",
                        id=CaseList.EXPORT_CSV,
                        href=export_href("csv", {}),
                        className="button export",
                    ),
                    html.A(
                        "Export XLSX",
                        id=CaseList.EXPORT_XLSX,
                        href=export_href("xlsx", {}),
                        className="button export",
                    ),
                    html.A(
                        "Select studies to review",
                        id=CaseList.OPEN,
                        className="button open-grid disabled",
                        href="#",
                    ),
                ],
            ),
            dcc.Store(id=CaseList.REFRESH),
            dag.AgGrid(
                id=CaseList.GRID,
                rowModelType="infinite",
                columnDefs=COLUMNS,
                defaultColDef={"sortable": True, "resizable": True, "filter": False},
                getRowId="params.data.row_id",
                dashGridOptions={
                    "pagination": True,
                    "paginationPageSize": PAGE_SIZE,
                    "paginationPageSizeSelector": False,
                    "cacheBlockSize": PAGE_SIZE,
                    "maxBlocksInCache": 8,
                    "rowHeight": 72,
                    "rowSelection": {
                        "mode": "multiRow",
                        "checkboxes": True,
                        "headerCheckbox": False,
                    },
                    "suppressCellFocus": True,
                    "tooltipShowDelay": 250,
                },
                className="ag-theme-quartz caselist-grid",
                style={"height": "calc(100vh - 150px)", "width": "100%"},
            ),
        ],
    )


def _assign_box(can_assign: bool) -> html.Div:
    # Rendered for everyone (its callbacks need the components) but shown only to leads;
    # the service refuses an assignment from anyone else anyway.
    return html.Div(
        id=CaseList.ASSIGN_BOX,
        className="assign-box" + ("" if can_assign else " hidden"),
        children=[
            html.Span("Assign selected to"),
            dcc.Dropdown(
                id=CaseList.ASSIGNEE,
                options=[],
                placeholder="reader",
                className="assignee",
            ),
            html.Span("due"),
            dcc.Input(id=CaseList.DUE, type="date", className="due"),
            html.Button("Assign", id=CaseList.ASSIGN, className="button"),
            html.Span(id=CaseList.ASSIGN_MESSAGE, className="assign-message"),
        ],
    )
