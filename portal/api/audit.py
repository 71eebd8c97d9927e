"""Audit log routes (admins only): a JSON page and a streamed CSV export of a filter.

Both take the same query parameters (see `audit.AuditFilter.from_params`): `from`, `to`,
`user`, `action`, `outcome`, `study_uid`, plus `before` and `limit` for JSON paging.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime

from flask import Response, jsonify, request, stream_with_context

from portal.api.routes import bp
from portal.services import audit
from portal.web.context import portal, principal

CSV_BATCH = 1000


@bp.get("/audit")
def audit_page() -> Response:
    """`{"items": [...], "next_before": id | null}`, newest first."""
    filters = audit.AuditFilter.from_params(request.args)
    with portal().db.session() as s:
        page = audit.query_audit(s, principal(), filters)
    return jsonify(items=page.items, next_before=page.next_before)


@bp.get("/audit.csv")
def audit_csv() -> Response:
    """Every entry matching the filter as CSV, streamed in batches; the export is audited."""
    who = principal()
    audit.require_admin(who)
    filters = replace(audit.AuditFilter.from_params(request.args), limit=CSV_BATCH)
    p = portal()
    with p.db.session() as s:
        # Committed before the first byte: an export that was started is on record.
        audit.record(s, who.user_id, "audit.export", "audit", filters.describe())

    def rows() -> Iterator[str]:
        yield audit.to_csv([], header=True)
        before = filters.before_id
        while True:
            # One short transaction per batch, so a long export holds no lock or snapshot.
            with p.db.session() as s:
                page = audit.query_audit(s, who, replace(filters, before_id=before))
            yield audit.to_csv(page.items, header=False)
            if page.next_before is None:
                return
            before = page.next_before

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return Response(
        stream_with_context(rows()),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="audit-{stamp}.csv"'},
    )
