"""Export routes: the review results of the case-list filter as CSV or Excel.

`GET /api/v1/exports/review.csv|.xlsx` take the case list's filter parameters
(`project`, `q`, `modality`, `status`, `queue`); every export is audited.
"""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Response, request, stream_with_context

from portal.api.routes import _queue, bp
from portal.services import catalog, reports
from portal.web.context import portal, principal

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _filter() -> catalog.StudyQuery:
    return catalog.StudyQuery(
        search=request.args.get("q", ""),
        modality=request.args.get("modality", ""),
        status=request.args.get("status", ""),
        project=request.args.get("project", ""),
        queue=_queue(request.args.get("queue", "")),
    )


def _filename(ext: str) -> str:
    # Named by project and time only: the search text may be a patient's name.
    project = "".join(c for c in request.args.get("project", "") if c.isalnum() or c in "-_")
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return f"review-{project or 'all'}-{stamp}.{ext}"


def _rows() -> tuple[list[dict[str, object]], list[str]]:
    """Read every row inside one session and audit the export in the same transaction."""
    p = portal()
    who = principal()
    ext = request.path.rsplit(".", 1)[-1]
    with p.db.session() as s:
        rows = reports.review_rows(s, who, _filter(), p.settings.store_dir)
        reports.record_export(s, who, ext, len(rows), request.remote_addr or "")
    return rows, reports.columns_of(rows)


def _attachment(response: Response, ext: str) -> Response:
    response.headers["Content-Disposition"] = f'attachment; filename="{_filename(ext)}"'
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.get("/exports/review.csv")
def export_csv() -> Response:
    """One row per read (and per item without a read); see `services.reports`."""
    rows, columns = _rows()
    body = stream_with_context(reports.csv_chunks(rows, columns))
    return _attachment(Response(body, mimetype="text/csv; charset=utf-8"), "csv")


@bp.get("/exports/review.xlsx")
def export_xlsx() -> Response:
    """The same rows as the CSV, as an Excel workbook."""
    rows, columns = _rows()
    return _attachment(Response(reports.xlsx_bytes(rows, columns), mimetype=XLSX_TYPE), "xlsx")
