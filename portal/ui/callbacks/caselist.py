"""Case list callbacks: rows from the catalog service, queues, selection -> review link,
and the lead's bulk assignment."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from dash import Dash, Input, Output, State, no_update

from portal.services import assignments, catalog
from portal.services.errors import InvalidInput, NotFound, PermissionDenied
from portal.ui.ids import CaseList
from portal.ui.pages.caselist import export_href
from portal.web.auditing import record_refusal
from portal.web.context import portal, principal

SORTABLE = {key.value: key for key in catalog.SortKey}
SORTABLE["project"] = catalog.SortKey.PROJECT


def query_from_request(
    request: dict[str, Any], filters: dict[str, str | None]
) -> catalog.StudyQuery:
    """Translate AG Grid's infinite-model request plus our filter controls into a query."""
    start = int(request.get("startRow") or 0)
    end = int(request.get("endRow") or start + 25)
    try:
        queue = catalog.Queue(filters.get("queue") or "")
    except ValueError:
        queue = catalog.Queue.ALL
    # The expert queue works oldest flag first unless a column sort says otherwise: a
    # flagged study's reviewed_at is when it was flagged.
    sort = catalog.SortKey.REVIEWED if queue is catalog.Queue.EXPERT else catalog.SortKey.ID
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
        queue=queue,
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
        State(CaseList.QUEUE, "value"),
    )
    def rows(
        request: dict[str, Any] | None,
        search: str | None,
        modality: str | None,
        status: str | None,
        project: str | None,
        queue: str | None,
    ) -> object:
        if not request:
            return no_update
        query = query_from_request(
            request,
            {
                "search": search,
                "modality": modality,
                "status": status,
                "project": project,
                "queue": queue,
            },
        )
        try:
            with portal().db.session() as s:
                page = catalog.list_studies(s, principal(), query)
        except InvalidInput:
            return {"rowData": [], "rowCount": 0}
        # AG Grid wants string row ids; a stable id keeps selection across pages and sorts.
        rows = [
            {**item, "row_id": str(item["id"]), "assigned_to": ", ".join(item["assignees"])}
            for item in page.items
        ]
        return {"rowData": rows, "rowCount": page.total}

    # A filter change empties the grid's block cache, which makes it ask for rows again.
    app.clientside_callback(
        """function(search, modality, status, project, queue, assigned) {
            const api = window.dash_ag_grid && dash_ag_grid.getApi('GRID_ID');
            if (api) { api.deselectAll(); api.purgeInfiniteCache(); }
            return Date.now();
        }""".replace("GRID_ID", CaseList.GRID.value),
        Output(CaseList.REFRESH, "data"),
        Input(CaseList.SEARCH, "value"),
        Input(CaseList.MODALITY, "value"),
        Input(CaseList.STATUS, "value"),
        Input(CaseList.PROJECT, "value"),
        Input(CaseList.QUEUE, "value"),
        Input(CaseList.ASSIGN_MESSAGE, "children"),
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

    # The grid opens in the case list's order: the link carries the sort the rows were last
    # asked for (the expert queue's own default when none), and the router orders the ids
    # with the same query (selectedRows is in the order the boxes were ticked).
    app.clientside_callback(
        """function(rows, request, queue) {
            const ids = (rows || []).map(r => r.id);
            if (!ids.length) {
                return ['Select studies to review', '#', 'button open-grid disabled'];
            }
            const sorted = ((request && request.sortModel) || []).filter(s => s.sort);
            let sort = queue === 'EXPERT' ? ['REVIEWED', false] : null;
            if (sorted.length) { sort = [sorted[0].colId, sorted[0].sort === 'desc']; }
            const order = sort ? '&sort=' + encodeURIComponent(sort[0])
                + (sort[1] ? '&desc=1' : '') : '';
            return ['Review ' + ids.length + (ids.length === 1 ? ' study' : ' studies'),
                    '/review?studies=' + ids.join(',') + order, 'button open-grid'];
        }""".replace("REVIEWED", catalog.SortKey.REVIEWED.value).replace(
            "EXPERT", catalog.Queue.EXPERT.value
        ),
        Output(CaseList.OPEN, "children"),
        Output(CaseList.OPEN, "href"),
        Output(CaseList.OPEN, "className"),
        Input(CaseList.GRID, "selectedRows"),
        Input(CaseList.GRID, "getRowsRequest"),
        State(CaseList.QUEUE, "value"),
    )

    @app.callback(
        Output(CaseList.ASSIGNEE, "options"),
        Input(CaseList.GRID, "selectedRows"),
        State(CaseList.ASSIGN_BOX, "className"),
    )
    def assignees(rows: list[dict[str, Any]] | None, box_class: str | None) -> object:
        if "hidden" in (box_class or ""):
            return no_update
        ids = [int(r["id"]) for r in rows or []]
        with portal().db.session() as s:
            readers = assignments.assignable_readers(s, principal(), ids)
        return [{"label": r["username"], "value": r["id"]} for r in readers]

    @app.callback(
        Output(CaseList.ASSIGN_MESSAGE, "children"),
        Input(CaseList.ASSIGN, "n_clicks"),
        State(CaseList.GRID, "selectedRows"),
        State(CaseList.ASSIGNEE, "value"),
        State(CaseList.DUE, "value"),
        prevent_initial_call=True,
    )
    def assign(
        _clicks: int, rows: list[dict[str, Any]] | None, assignee: int | None, due: str | None
    ) -> str:
        ids = [int(r["id"]) for r in rows or []]
        if not ids or assignee is None:
            return "Select studies and a reader first."
        try:
            # A due date means the end of that day, UTC.
            due_at = (
                datetime.fromisoformat(due).replace(hour=23, minute=59, tzinfo=UTC) if due else None
            )
        except ValueError:
            return f"{due!r} is not a date"
        try:
            with portal().db.session() as s:
                made = assignments.assign(s, principal(), ids, int(assignee), due_at)
                count = len(made)
        except InvalidInput as exc:
            return str(exc)
        except PermissionDenied as exc:
            record_refusal(exc, f"studies:{','.join(map(str, ids))}"[:64], "dash:caselist.assign")
            return str(exc)
        except NotFound as exc:
            record_refusal(exc, f"studies:{','.join(map(str, ids))}"[:64], "dash:caselist.assign")
            return "Some of these studies are not available to you."
        return f"Assigned {count} " + ("study" if count == 1 else "studies")
