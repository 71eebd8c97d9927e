"""Review reports: tabular exports (CSV, XLSX), a per-study report and dashboard figures.

Everything here is built from what `review_view.study_review` tells the caller, so the access
rule (a user sees a project's studies only as its member) and the blinding of open
rounds (a reader sees no other reader's verdict before submitting their own) hold for
exports, reports and charts exactly as they do in the review pane.

Export rows
-----------
One row per visible *read*; an item without a visible read (unreviewed, or all its
reads hidden from this reader) still gets one row with the read columns empty, so every
review item of every exported study appears. Label volumes come last, one column per
label name (``volume_ml: <name>``), filled on the rows of the segmentation holding it.
Agreement columns are filled when the item's current round has two or more reads the
caller may see.
"""

from __future__ import annotations

import csv
import gzip
import io
import os
import tempfile
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from portal.db.models import ReviewAction, ReviewStatus
from portal.imaging.preview import overlay_mosaic_png
from portal.imaging.vti import read_vti_bytes
from portal.services import audit, catalog, review_view
from portal.services.auth import Principal
from portal.services.store import preview_file

#: Fixed export columns, in order; label volume columns follow.
COLUMNS: tuple[str, ...] = (
    "study_id",
    "study",
    "patient_name",
    "project",
    "modality",
    "study_version",
    "item_id",
    "item",
    "segmentation",
    "state",
    "round",
    "reads_required",
    "reads_done",
    "reader",
    "read_round",
    "verdict",
    "note",
    "label_verdicts",
    "read_at",
    "decided_by",
    "decided_at",
    "verdict_agreement",
    "dice",
)
VOLUME_PREFIX = "volume_ml: "
#: Columns that hold UTC datetimes (written as real datetimes in XLSX).
DATE_COLUMNS = frozenset({"read_at", "decided_at"})

_DECIDED = {
    ReviewStatus.APPROVED.value,
    ReviewStatus.NEEDS_EDIT.value,
    ReviewStatus.FLAGGED_FOR_EXPERT.value,
    ReviewStatus.REJECTED.value,
}
_DECIDING = {ReviewAction.READ.value, ReviewAction.TRANSITION.value}
# A spreadsheet treats a cell starting with one of these as a formula (or DDE command).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class StudyReview:
    """One visible study: its catalog detail and its review as `study_review` gives it."""

    detail: dict[str, Any]
    review: dict[str, Any]


def _query(query: catalog.StudyQuery | str) -> catalog.StudyQuery:
    if isinstance(query, str):
        return catalog.StudyQuery(project=query)
    return query


def visible_reviews(
    session: Session,
    principal: Principal,
    query: catalog.StudyQuery | str,
    store_dir: Path | None,
) -> Iterator[StudyReview]:
    """The reviews of every study matching `query` that `principal` may see.

    Parameters
    ----------
    query : catalog.StudyQuery or str
        A case-list filter (its paging is ignored: all matches are read, in its sort
        order), or a project name.
    store_dir : Path, optional
        The source store, for Dice between readers' edited segmentations.
    """
    base = _query(query)
    offset = 0
    while True:
        page = catalog.list_studies(
            session,
            principal,
            replace(base, offset=offset, limit=catalog.MAX_PAGE),
        )
        for summary in page.items:
            study = catalog.get_study(session, principal, summary["id"])
            yield StudyReview(
                detail=catalog.study_detail(study),
                review=review_view.study_review(session, principal, study.id, store_dir),
            )
        offset += len(page.items)
        if not page.items or offset >= page.total:
            return


def _when(value: str | None) -> datetime | None:
    """An ISO timestamp from `study_review` as an aware UTC datetime."""
    if not value:
        return None
    parsed = datetime.fromisoformat(value)
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)


def decision(item: dict[str, Any]) -> tuple[str | None, datetime | None]:
    """Who put a decided item in its current state, and when (None, None while open)."""
    if item["state"] not in _DECIDED:
        return None, None
    for event in reversed(item["history"]):
        if event["action"] in _DECIDING and event["to"] == item["state"]:
            if event["from"] != event["to"]:
                return event["by"], _when(event["at"])
    return None, None


def agreement_counts(figures: dict[str, Any] | None) -> bool:
    """Whether an item's agreement figures mean anything: two or more visible reads."""
    return figures is not None and int(figures["reads"]) >= 2


def _label_names(detail: dict[str, Any]) -> dict[int, dict[int, str]]:
    """Label names by segmentation id, then label value."""
    return {
        seg["id"]: {lab["value"]: lab["name"] for lab in seg["labels"]}
        for seg in detail["segmentations"]
    }


def _verdicts_text(verdicts: dict[str, str], names: dict[int, str]) -> str:
    return "; ".join(
        f"{names.get(int(value), f'label {value}')}: {verdict}"
        for value, verdict in sorted(verdicts.items(), key=lambda kv: int(kv[0]))
    )


def rows_of(reviews: Iterable[StudyReview]) -> list[dict[str, Any]]:
    """Export rows (see the module docstring) of already loaded reviews."""
    rows: list[dict[str, Any]] = []
    for entry in reviews:
        detail = entry.detail
        names = _label_names(detail)
        volumes = {
            seg["id"]: {f"{VOLUME_PREFIX}{lab['name']}": lab["volume_ml"] for lab in seg["labels"]}
            for seg in detail["segmentations"]
        }
        for item in entry.review["items"]:
            decided_by, decided_at = decision(item)
            # Agreement of a single read is trivially 1.0: left empty below two reads.
            agreement = item["agreement"] if agreement_counts(item["agreement"]) else {}
            base: dict[str, Any] = {
                "study_id": detail["id"],
                "study": detail["name"],
                "patient_name": detail["patient_name"],
                "project": detail["project"],
                "modality": detail["modality"],
                "study_version": detail["version"],
                "item_id": item["id"],
                "item": item["key"],
                "segmentation": item["name"] if item["segmentation_id"] else "",
                "state": item["state"],
                "round": item["round"],
                "reads_required": item["reads_required"],
                "reads_done": item["reads_done"],
                "decided_by": decided_by,
                "decided_at": decided_at,
                "verdict_agreement": agreement.get("verdict_agreement"),
                "dice": agreement.get("dice"),
                **volumes.get(item["segmentation_id"], {}),
            }
            seg_names = names.get(item["segmentation_id"], {})
            reads = item["reads"] or [None]
            for read in reads:
                row = dict(base)
                if read is not None:
                    row.update(
                        reader=read["reader"],
                        read_round=read["round"],
                        verdict=read["verdict"],
                        note=read["note"],
                        label_verdicts=_verdicts_text(read["label_verdicts"] or {}, seg_names),
                        read_at=_when(read["at"]),
                    )
                rows.append(row)
    return rows


def review_rows(
    session: Session,
    principal: Principal,
    query: catalog.StudyQuery | str,
    store_dir: Path | None = None,
) -> list[dict[str, Any]]:
    """Export rows of every visible study matching `query` (a filter or a project name).

    Examples
    --------
    ``review_rows(s, who, "trial")`` or
    ``review_rows(s, who, StudyQuery(status="needs-edit"))``; write them with
    :func:`csv_chunks` or :func:`xlsx_bytes`.
    """
    return rows_of(visible_reviews(session, principal, query, store_dir))


def columns_of(rows: Sequence[dict[str, Any]]) -> list[str]:
    """The fixed columns, then one label volume column per label name met in `rows`."""
    extra: dict[str, None] = {}
    for row in rows:
        for key in row:
            if key.startswith(VOLUME_PREFIX):
                extra[key] = None
    return [*COLUMNS, *extra]


def neutralise(value: Any) -> Any:
    """A text cell a spreadsheet would run as a formula gets a leading apostrophe."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    return neutralise(value)


def csv_chunks(rows: Iterable[dict[str, Any]], columns: Sequence[str]) -> Iterator[bytes]:
    """UTF-8 CSV (header first, then one line per row), yielded a line at a time.

    Datetimes are ISO 8601 in UTC; text that would start a formula is neutralised.
    A UTF-8 byte order mark comes first so spreadsheet programs detect the encoding.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")

    def flush() -> bytes:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text.encode("utf-8")

    writer.writerow(columns)
    yield b"\xef\xbb\xbf" + flush()
    for row in rows:
        writer.writerow([_csv_cell(row.get(c)) for c in columns])
        yield flush()


def xlsx_bytes(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> bytes:
    """An Excel workbook of `rows`: bold frozen header, fitted widths, UTC datetimes.

    Datetimes become real Excel datetimes (Excel has no time zones; the header says
    UTC); text that would start a formula is neutralised.
    """
    from openpyxl import Workbook  # imported here: only exports need it
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "review"
    sheet.append([f"{c} (UTC)" if c in DATE_COLUMNS else c for c in columns])
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    sheet.freeze_panes = "A2"
    widths = [len(c) + (6 if c in DATE_COLUMNS else 0) for c in columns]
    for row in rows:
        values = []
        for n, column in enumerate(columns):
            value = row.get(column)
            if isinstance(value, datetime):
                value = value.astimezone(UTC).replace(tzinfo=None)
                widths[n] = max(widths[n], 19)
            else:
                value = neutralise(value)
                widths[n] = max(widths[n], len(str(value)) if value is not None else 0)
            values.append(value)
        sheet.append(values)
    for n, column in enumerate(columns):
        letter = get_column_letter(n + 1)
        sheet.column_dimensions[letter].width = min(60, widths[n] + 2)
        if column in DATE_COLUMNS:
            for (cell,) in sheet.iter_rows(min_row=2, min_col=n + 1, max_col=n + 1):
                cell.number_format = "yyyy-mm-dd hh:mm:ss"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def record_export(
    session: Session, principal: Principal, fmt: str, rows: int, address: str = ""
) -> None:
    """Audit an export (format and row count only: the filter may hold a patient name)."""
    audit.record(
        session,
        principal.user_id,
        "export.review",
        "studies",
        f"format={fmt} rows={rows}",
        role=principal.role.value,
        address=address,
    )


# --- per-study report ------------------------------------------------------------------


def study_report(
    session: Session,
    principal: Principal,
    study_id: int,
    store_dir: Path | None = None,
    address: str = "",
) -> dict[str, Any]:
    """Everything the printable report of one study shows, audited as ``report.view``.

    Returns the catalog detail (``study``), the review (``review``, blinded as for the
    pane) and a sign-off per item (``signoff``: item name, final state, who decided
    and when; None for open items).

    Raises
    ------
    NotFound
        If the study is not visible to `principal`.
    """
    study = catalog.get_study(session, principal, study_id)
    detail = catalog.study_detail(study)
    data = review_view.study_review(session, principal, study_id, store_dir)
    names = _label_names(detail)
    for item in data["items"]:
        seg_names = names.get(item["segmentation_id"], {})
        for read in item["reads"]:
            read["label_verdicts_named"] = [
                (seg_names.get(int(v), f"label {v}"), verdict)
                for v, verdict in sorted(read["label_verdicts"].items(), key=lambda kv: int(kv[0]))
            ]
    signoff = []
    for item in data["items"]:
        by, at = decision(item)
        signoff.append({"item": item["name"], "state": item["state"], "by": by, "at": at})
    audit.record(
        session,
        principal.user_id,
        "report.view",
        f"study:{study.id}",
        role=principal.role.value,
        study_uid=study.uid,
        address=address,
    )
    return {"study": detail, "review": data, "signoff": signoff, "uid": study.uid}


REPORT_MOSAIC = "report-mosaic.png"


def report_mosaic(session: Session, principal: Principal, preview_dir: Path, study_id: int) -> Path:
    """The report's mosaic of a visible study: its labelled slices with the overlay.

    Made on first request from the previews stored at import (grey levels and label
    colours on one grid) and kept beside them. A study without labels gets the
    import-time mosaic (slices spread over the image).

    Raises
    ------
    NotFound
        If the study is not visible to `principal`.
    """
    study = catalog.get_study(session, principal, study_id)
    target = preview_dir / study.uid / REPORT_MOSAIC
    if target.exists():
        return target
    labels = preview_file(preview_dir, study.uid, "labels.vti.gz")
    if not labels.exists():
        return preview_file(preview_dir, study.uid, "mosaic.png")
    grey = preview_file(preview_dir, study.uid, "image.vti.gz")
    image = read_vti_bytes(gzip.decompress(grey.read_bytes()))
    overlay = read_vti_bytes(gzip.decompress(labels.read_bytes()))
    png = overlay_mosaic_png(image.array, overlay.array, image.spacing_mm)
    # Write then rename: two workers asked at once both write whole files, one wins.
    handle, temporary = tempfile.mkstemp(dir=target.parent, suffix=".tmp")
    with os.fdopen(handle, "wb") as out:
        out.write(png)
    os.replace(temporary, target)
    return target


# --- dashboard ---------------------------------------------------------------------------


def dashboard_data(reviews: Iterable[StudyReview]) -> dict[str, Any]:
    """Chart data of a set of reviews (pure: the page turns it into plotly figures).

    Returns
    -------
    dict
        ``states``: ``{state: item count}`` over every `ReviewStatus` (zeros kept);
        ``readers``: ``{reader: {verdict: reads}}`` of the visible reads, all rounds;
        ``throughput``: ``[{"day": "YYYY-MM-DD", "reads": n, "decisions": m}]`` by UTC
        day, oldest first, where a decision is a read or transition that moved an item
        into a decided state;
        ``agreement``: verdict agreement of each item whose current round has two or
        more (visible) reads; ``dice``: their Dice where readers attached edits;
        ``items`` and ``studies``: totals.
    """
    states: Counter[str] = Counter({s.value: 0 for s in ReviewStatus})
    readers: dict[str, Counter[str]] = defaultdict(Counter)
    reads_by_day: Counter[str] = Counter()
    decisions_by_day: Counter[str] = Counter()
    agreement: list[float] = []
    dice: list[float] = []
    studies = items = 0
    for entry in reviews:
        studies += 1
        for item in entry.review["items"]:
            items += 1
            states[item["state"]] += 1
            for read in item["reads"]:
                readers[read["reader"] or "?"][read["verdict"]] += 1
                when = _when(read["at"])
                if when is not None:
                    reads_by_day[when.date().isoformat()] += 1
            for event in item["history"]:
                when = _when(event["at"])
                if (
                    when is not None
                    and event["action"] in _DECIDING
                    and event["to"] in _DECIDED
                    and event["from"] != event["to"]
                ):
                    decisions_by_day[when.date().isoformat()] += 1
            figures = item["agreement"]
            if agreement_counts(figures):
                agreement.append(float(figures["verdict_agreement"]))
                if figures["dice"] is not None:
                    dice.append(float(figures["dice"]))
    days = sorted(set(reads_by_day) | set(decisions_by_day))
    return {
        "studies": studies,
        "items": items,
        "states": dict(states),
        "readers": {name: dict(counts) for name, counts in sorted(readers.items())},
        "throughput": [
            {"day": d, "reads": reads_by_day[d], "decisions": decisions_by_day[d]} for d in days
        ],
        "agreement": agreement,
        "dice": dice,
    }


def project_dashboard(
    session: Session, principal: Principal, project: str, store_dir: Path | None = None
) -> dict[str, Any]:
    """:func:`dashboard_data` of one project's visible studies (current versions)."""
    return dashboard_data(visible_reviews(session, principal, project, store_dir))
