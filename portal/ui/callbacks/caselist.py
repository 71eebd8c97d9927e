"""Case list callbacks: rows from the catalog service, selection -> review link."""

from __future__ import annotations

from typing import Any

from dash import Dash, Input, Output, State, no_update

from portal.services import catalog
from portal.services.errors import InvalidInput
from portal.ui.ids import CaseList
from portal.ui.pages.caselist import export_href
from portal.web.context import portal, principal

SORTABLE = {key.value: key for key in catalog.SortKey}
SORTABLE["project"] = catalog.SortKey.PROJECT


def query_from_request(
    request: dict[str, Any], filters: dict[str, str | None]
) -> catalog.StudyQuery:
    """Translate AG Grid's infinite-model request plus our filter controls into a query."""
    start = int(request.get("startRow") or 0)
    end = int(request.get("endRow") or start + 25)
    sort = catalog.SortKey.ID
    descending = False
    for item in request.get("sortModel") or []:
        if item.get("colId") in SORTABLE:
            sort = SORTABLE[item["colId"]]
            descending = item.get("sort") == "desc"
            break
    return catalog.StudyQuery(
        search=filters.get("search") or "",
        modality=filters.get("modality") or "",
        status=filters.get("status") or "",
        project=filters.get("project") or "",
        sort=sort,
        descending=descending,
        offset=start,
        limit=max(1, min(end - start, catalog.MAX_PAGE)),
    )


def register(app: Dash) -> None:
    @app.callback(
        Output(CaseList.GRID, "getRowsResponse"),
        Input(CaseList.GRID, "getRowsRequest"),
        State(CaseList.SEARCH, "value"),
        State(CaseList.MODALITY, "value"),
        State(CaseList.STATUS, "value"),
        State(CaseList.PROJECT, "value"),
    )
    def rows(
        request: dict[str, Any] | None,
        search: str | None,
        modality: str | None,
        status: str | None,
        project: str | None,
    ) -> object:
        if not request:
            return no_update
        query = query_from_request(
            request,
            {"search": search, "modality": modality, "status": status, "project": project},
        )
        try:
            with portal().db.session() as s:
                page = catalog.list_studies(s, principal(), query)
        except InvalidInput:
            return {"rowData": [], "rowCount": 0}
        # AG Grid wants string row ids; a stable id keeps selection across pages and sorts.
        rows = [{**item, "row_id": str(item["id"])} for item in page.items]
        return {"rowData": rows, "rowCount": page.total}

    # A filter change empties the grid's block cache, which makes it ask for rows again.
    app.clientside_callback(
        """function(search, modality, status, project) {
            const api = window.dash_ag_grid && dash_ag_grid.getApi('GRID_ID');
            if (api) { api.deselectAll(); api.purgeInfiniteCache(); }
            return Date.now();
        }""".replace("GRID_ID", CaseList.GRID.value),
        Output(CaseList.REFRESH, "data"),
        Input(CaseList.SEARCH, "value"),
        Input(CaseList.MODALITY, "value"),
        Input(CaseList.STATUS, "value"),
        Input(CaseList.PROJECT, "value"),
        prevent_initial_call=True,
    )

    # The export links follow the filter in the browser, as `export_href` builds them.
    app.clientside_callback(
        """function(search, modality, status, project) {
            const params = new URLSearchParams();
            for (const [key, value] of [['q', search], ['modality', modality],
                                        ['status', status], ['project', project]]) {
                if (value) { params.set(key, value); }
            }
            const query = params.toString() ? '?' + params.toString() : '';
            return ['CSV_URL' + query, 'XLSX_URL' + query];
        }""".replace("CSV_URL", export_href("csv", {})).replace(
            "XLSX_URL", export_href("xlsx", {})
        ),
        Output(CaseList.EXPORT_CSV, "href"),
        Output(CaseList.EXPORT_XLSX, "href"),
        Input(CaseList.SEARCH, "value"),
        Input(CaseList.MODALITY, "value"),
        Input(CaseList.STATUS, "value"),
        Input(CaseList.PROJECT, "value"),
        prevent_initial_call=True,
    )

    app.clientside_callback(
        """function(rows) {
            const ids = (rows || []).map(r => r.id);
            if (!ids.length) {
                return ['Select studies to review', '#', 'button open-grid disabled'];
            }
            return ['Review ' + ids.length + (ids.length === 1 ? ' study' : ' studies'),
                    '/review?studies=' + ids.join(','), 'button open-grid'];
        }""",
        Output(CaseList.OPEN, "children"),
        Output(CaseList.OPEN, "href"),
        Output(CaseList.OPEN, "className"),
        Input(CaseList.GRID, "selectedRows"),
    )
