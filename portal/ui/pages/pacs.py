"""The PACS page: search a configured archive, pick studies, import them as a job."""

from __future__ import annotations

import dash_ag_grid as dag
from dash import dcc, html

from portal.ui.ids import Pacs

COLUMNS = [
    {"headerName": "Patient", "field": "patient_name", "flex": 1, "minWidth": 140},
    {"headerName": "Patient ID", "field": "patient_id", "width": 130},
    {"headerName": "Date", "field": "study_date", "width": 110},
    {"headerName": "Description", "field": "description", "flex": 1, "minWidth": 140},
    {"headerName": "Modalities", "field": "modalities", "width": 120},
    {"headerName": "Accession", "field": "accession", "width": 120},
    {"headerName": "Series", "field": "series_count", "width": 90},
    {"headerName": "Study UID", "field": "study_uid", "flex": 1, "minWidth": 160},
]

_FIELDS = [
    (Pacs.PATIENT_NAME, "Patient name (* and ? allowed)"),
    (Pacs.PATIENT_ID, "Patient ID"),
    (Pacs.STUDY_DATE, "Date YYYYMMDD[-YYYYMMDD]"),
    (Pacs.MODALITY, "Modality (CT, MR, ...)"),
    (Pacs.ACCESSION, "Accession"),
]


def layout(sources: list[tuple[str, str]], projects: list[str]) -> html.Div:
    """`sources` are (name, kind) of the configured archives; `projects` import targets."""
    if not sources:
        return html.Div(
            [
                html.H2("Import from a PACS"),
                html.P(
                    "No archive is configured. An administrator sets PORTAL_PACS_SOURCES, "
                    "e.g. main=orthanc+https://user:password@pacs.example.org."
                ),
            ],
            className="empty",
        )
    return html.Div(
        className="pacs",
        children=[
            html.H2("Import from a PACS"),
            html.Div(
                className="filters",
                children=[
                    dcc.Dropdown(
                        id=Pacs.SOURCE,
                        options=[{"label": f"{n} ({k})", "value": n} for n, k in sources],
                        value=sources[0][0],
                        clearable=False,
                        className="filter",
                    ),
                    *[
                        dcc.Input(id=fid, placeholder=text, debounce=True, className="filter")
                        for fid, text in _FIELDS
                    ],
                    html.Button("Search", id=Pacs.SEARCH, className="button"),
                ],
            ),
            dag.AgGrid(
                id=Pacs.RESULTS,
                columnDefs=COLUMNS,
                rowData=[],
                getRowId="params.data.study_uid",
                defaultColDef={"sortable": True, "resizable": True},
                dashGridOptions={
                    "rowSelection": {"mode": "multiRow", "checkboxes": True},
                    "suppressCellFocus": True,
                },
                style={"height": "420px"},
            ),
            html.Div(
                className="filters",
                children=[
                    dcc.Dropdown(
                        id=Pacs.PROJECT,
                        options=projects,
                        placeholder="Import into project",
                        className="filter",
                    ),
                    html.Button("Import selected", id=Pacs.IMPORT, className="button"),
                ],
            ),
            html.Div(id=Pacs.MESSAGE, className="message", role="status"),
        ],
    )
