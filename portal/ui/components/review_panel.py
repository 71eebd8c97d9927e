"""A pane's review panel: decisions on one review item, its history, and comment threads.

The compact row (item selector, decision buttons, note, reads count) fits a 3x3 grid;
the "Details" disclosure expands the pane over the grid with label verdicts, history and
the threaded discussion. Everything shown comes from `review_view.study_review` (already
blinded for the reader); the item's `version` rides in a `dcc.Store` and goes back with
every write, so a stale screen gets a Conflict rather than overwriting someone's decision.

Components that callbacks read with MATCH are in every pane (even when empty or hidden):
Dash needs a MATCH State to exist in the pane that fired.
"""

from __future__ import annotations

from typing import Any

from dash import dcc, html

from portal.db.models import LabelVerdict, ReviewStatus
from portal.ui.ids import Pane, pane_id

STATUS_LABELS = {
    ReviewStatus.UNREVIEWED.value: "Unreviewed",
    ReviewStatus.IN_REVIEW.value: "In review",
    ReviewStatus.APPROVED.value: "Approved",
    ReviewStatus.NEEDS_EDIT.value: "Needs edit",
    ReviewStatus.FLAGGED_FOR_EXPERT.value: "Flagged for expert",
    ReviewStatus.REJECTED.value: "Rejected",
}

VERDICT_LABELS = {
    LabelVerdict.CORRECT.value: "correct",
    LabelVerdict.OVER_SEGMENTED.value: "over-segmented",
    LabelVerdict.UNDER_SEGMENTED.value: "under-segmented",
    LabelVerdict.MISSING.value: "missing",
    LabelVerdict.FALSE_POSITIVE.value: "false positive",
    LabelVerdict.WRONG_LABEL.value: "wrong label",
}


def selected_item(review: dict[str, Any], item_id: int | None) -> dict[str, Any]:
    """The item `item_id` of a `study_review` result, else the study's primary item.

    The primary item is the first segmentation's (as `review.primary_item`), else the image.
    """
    items = review["items"]
    for item in items:
        if item["id"] == item_id:
            return item
    for item in items:
        if item["key"].startswith("seg:"):
            return item
    return items[0]


def actions_class(item: dict[str, Any], can: dict[str, bool]) -> str:
    """CSS classes that show only the buttons the item's state and the user's role allow."""
    classes = ["review-actions", f"state-{item['state']}"]
    if can.get("read"):
        classes.append("can-read")
    if can.get("resolve"):
        classes.append("can-resolve")
    return " ".join(classes)


def reads_text(item: dict[str, Any]) -> str:
    required = int(item["reads_required"])
    if required <= 1:
        return ""
    text = f"{item['reads_done']} of {required} reads in"
    if item["my_read_done"]:
        text += " · yours is in"
    return text


def markers(item: dict[str, Any]) -> list[html.Span]:
    """One dot per open thread anchored at a point, for the pane's marker overlay.

    `assets/pane.js` places each dot over its world point (RAS mm) with the view's own
    world-to-display transform, so dots follow zoom and pan, and shows it only while the
    slice it was placed on is displayed.
    """
    return [
        marker(c["world_mm"], c["slice_index"], f"#{c['id']} {c['by']}: {c['body'][:80]}")
        for c in item["comments"]
        if c["world_mm"] and not c["resolved"]
    ]


def marker(
    world_mm: list[float], slice_index: int | None, title: str, pick: bool = False
) -> html.Span:
    return html.Span(
        className="marker pick" if pick else "marker",
        title=title,
        **{
            "data-world": ",".join(f"{float(v):.2f}" for v in world_mm),
            "data-k": "" if slice_index is None else str(int(slice_index)),
        },
    )


def panel(study_id: int, review: dict[str, Any]) -> html.Div:
    """The review panel of a pane, for `review` = `study_review(...)` of its study."""
    item = selected_item(review, None)
    items = review["items"]
    return html.Div(
        className="pane-review",
        children=[
            dcc.Store(
                id=pane_id(Pane.VERSION, study_id),
                data={"item": item["id"], "version": item["version"]},
            ),
            dcc.Store(id=pane_id(Pane.PICK, study_id), data=None),
            html.Div(
                className="review-row",
                children=[
                    dcc.Dropdown(
                        id=pane_id(Pane.ITEM, study_id),
                        options=[{"label": i["name"], "value": i["id"]} for i in items],
                        value=item["id"],
                        clearable=False,
                        searchable=False,
                        className="item-select" + ("" if len(items) > 1 else " hidden"),
                    ),
                    html.Div(
                        id=pane_id(Pane.ACTIONS, study_id),
                        className=actions_class(item, review["can"]),
                        children=[
                            html.Span("Resolve:", className="resolve-label"),
                            html.Button(
                                "Approve", id=pane_id(Pane.APPROVE, study_id), className="approve"
                            ),
                            html.Button(
                                "Needs edit",
                                id=pane_id(Pane.NEEDS_EDIT, study_id),
                                className="needs-edit",
                            ),
                            html.Button(
                                "Flag for expert", id=pane_id(Pane.FLAG, study_id), className="flag"
                            ),
                            html.Button(
                                "Reject", id=pane_id(Pane.REJECT, study_id), className="reject"
                            ),
                        ],
                    ),
                    dcc.Input(
                        id=pane_id(Pane.NOTE, study_id),
                        placeholder="Reason or note (required to flag or resolve)",
                        value="",
                        maxLength=2000,
                        className="reason",
                    ),
                    html.Span(
                        reads_text(item), id=pane_id(Pane.READS, study_id), className="reads"
                    ),
                    html.Span(id=pane_id(Pane.MESSAGE, study_id), className="pane-message"),
                ],
            ),
            html.Details(
                className="review-details",
                children=[
                    html.Summary("Details & comments"),
                    html.Div(
                        details(study_id, item),
                        id=pane_id(Pane.DETAILS, study_id),
                        className="details-body",
                    ),
                    *add_segmentation(study_id, review),
                    html.Div(
                        className="comment-form",
                        children=[
                            html.Span(
                                "Click the image to anchor a new comment there.",
                                id=pane_id(Pane.PICK_TEXT, study_id),
                                className="pick-text",
                            ),
                            dcc.Textarea(
                                id=pane_id(Pane.COMMENT, study_id),
                                placeholder="New comment",
                                value="",
                                maxLength=4000,
                                className="comment-text",
                            ),
                            html.Button(
                                "Add comment",
                                id=pane_id(Pane.COMMENT_ADD, study_id),
                                className="comment-add",
                            ),
                        ],
                    ),
                ],
            ),
        ],
    )


#: Largest label file the pane sends: base64 in a Dash request must stay under the app's
#: 16 MiB request limit. Larger files go through the API.
UPLOAD_MAX_BYTES = 11 * 1024 * 1024
UPLOAD_ACCEPT = ".nii,.nii.gz,.gz,.nrrd,.mgz,.mgh,.dcm"


def add_segmentation(study_id: int, review: dict[str, Any]) -> list[html.Div]:
    """ "Add a segmentation": a name and a label file, for those who may read the study.

    The upload answers in `Pane.SEG_MESSAGE`; on success the pane is re-mounted (see
    `portal.ui.callbacks.segmentation_upload`) and offers the new one in its chooser.
    """
    if not review["can"].get("read"):
        return []
    return [
        html.Div(
            className="seg-add",
            children=[
                html.H4("Add a segmentation"),
                dcc.Input(
                    id=pane_id(Pane.SEG_NAME, study_id),
                    placeholder="Name (e.g. reader 2 edit); empty: the file name",
                    value="",
                    maxLength=255,
                    className="seg-add-name",
                ),
                dcc.Upload(
                    html.Button("Choose a label file…", type="button", className="seg-add-file"),
                    id=pane_id(Pane.SEG_UPLOAD, study_id),
                    accept=UPLOAD_ACCEPT,
                    max_size=UPLOAD_MAX_BYTES,
                    className="seg-add-upload",
                ),
                html.Small(
                    "On this study's grid: NIfTI, NRRD, MGH or DICOM SEG, at most "
                    f"{UPLOAD_MAX_BYTES // 1024**2} MiB here (larger through the API).",
                    className="seg-add-help",
                ),
                html.Span(id=pane_id(Pane.SEG_MESSAGE, study_id), className="seg-add-message"),
            ],
        )
    ]


def details(study_id: int, item: dict[str, Any]) -> list[Any]:
    """The expanded part: label verdicts, visible reads, history and comment threads."""
    out: list[Any] = []
    if item["labels"]:
        out.append(html.H4("Per-label verdict (sent with your read)"))
        out.append(
            html.Div(
                className="label-verdicts",
                children=[
                    html.Label(
                        [
                            html.I(style={"background": "rgb({},{},{})".format(*lab["color"])}),
                            lab["name"],
                            dcc.Dropdown(
                                id={
                                    "type": Pane.LABEL_VERDICT.value,
                                    "study": study_id,
                                    "label": lab["value"],
                                },
                                options=[
                                    {"label": text, "value": value}
                                    for value, text in VERDICT_LABELS.items()
                                ],
                                placeholder="—",
                                className="verdict-select",
                            ),
                        ],
                        className="label-verdict",
                    )
                    for lab in item["labels"]
                ],
            )
        )
    if item["reads"]:
        out.append(html.H4("Reads"))
        names = {str(lab["value"]): lab["name"] for lab in item["labels"]}
        out.append(html.Ul([_read(r, names) for r in item["reads"]], className="reads-list"))
    out.append(html.H4("History"))
    out.append(
        html.Ul(
            [_event(e) for e in reversed(item["history"])] or [html.Li("No decisions yet.")],
            className="history",
        )
    )
    out.append(html.H4("Comments"))
    out.append(
        html.Div(
            [_thread(study_id, t) for t in item["comments"]] or [html.P("No comments yet.")],
            className="threads",
        )
    )
    return out


def _when(iso: str | None) -> str:
    return (iso or "")[:16].replace("T", " ")


def _read(r: dict[str, Any], names: dict[str, str]) -> html.Li:
    labels = ", ".join(
        f"{names.get(k, k)}: {VERDICT_LABELS.get(v, v)}"
        for k, v in sorted((r["label_verdicts"] or {}).items())
    )
    text = f"{r['reader']} · round {r['round']} · {STATUS_LABELS.get(r['verdict'], r['verdict'])}"
    return html.Li(
        [
            text,
            html.Span(f" — {r['note']}" if r["note"] else ""),
            html.Small(f" [{labels}]" if labels else ""),
        ]
    )


def _event(e: dict[str, Any]) -> html.Li:
    move = (
        f"{STATUS_LABELS.get(e['from'], e['from'])} → {STATUS_LABELS.get(e['to'], e['to'])}"
        if e["action"] in ("transition", "read")
        else e["action"]
    )
    return html.Li(
        [
            html.Span(_when(e["at"]), className="when"),
            f" {e['by']} · {e['action']} · {move}",
            html.Span(f" — {e['reason']}" if e["reason"] else "", className="event-reason"),
        ]
    )


def _thread(study_id: int, t: dict[str, Any]) -> html.Div:
    where = ""
    if t["world_mm"]:
        x, y, z = t["world_mm"]
        where = f" · at ({x:.0f}, {y:.0f}, {z:.0f}) mm"
        if t["slice_index"] is not None:
            where += f", slice {int(t['slice_index']) + 1}"
    head = f"#{t['id']} {t['by']} · {_when(t['at'])}{where}"
    key = {"study": study_id, "thread": t["id"]}
    controls: list[Any] = []
    if t["resolved"]:
        controls.append(html.Span(f"resolved by {t['resolved_by']}", className="resolved"))
    else:
        controls += [
            dcc.Input(
                id={"type": Pane.REPLY_TEXT.value, **key},
                placeholder="Reply",
                value="",
                className="reply-text",
            ),
            html.Button("Reply", id={"type": Pane.THREAD_REPLY.value, **key}, className="reply"),
            html.Button(
                "Resolve", id={"type": Pane.THREAD_RESOLVE.value, **key}, className="resolve"
            ),
        ]
    return html.Div(
        className="thread" + (" resolved" if t["resolved"] else ""),
        children=[
            html.Div(head, className="thread-head"),
            html.P(t["body"]),
            *[
                html.Div(
                    [html.Small(f"{r['by']} · {_when(r['at'])}"), html.P(r["body"])],
                    className="reply-item",
                )
                for r in t["replies"]
            ],
            html.Div(controls, className="thread-controls"),
        ],
    )
