"""Pane callbacks: slice scrolling (client-side), 2D/3D switch, the review panel and
comment markers.

The review panel has one server callback: every write (decision, comment, reply,
resolve) calls one service function and then re-reads `review_view.study_review`, so what the
panel shows is always what the database holds, blinded for this user.
"""

from __future__ import annotations

from typing import Any

from dash import ALL, MATCH, Dash, Input, Output, State, ctx, no_update
from dash.exceptions import PreventUpdate

from portal.db.models import ReviewStatus
from portal.services import comments, review, review_view, viewer
from portal.services.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from portal.ui.components.pane import (
    AXIAL_CAMERA,
    CORONAL_3D_CAMERA,
    INTERACTOR_2D,
    INTERACTOR_3D,
    slice_children,
    volume_children,
)
from portal.ui.components.pane_view import view_data
from portal.ui.components.review_panel import (
    STATUS_LABELS,
    actions_class,
    details,
    markers,
    reads_text,
    selected_item,
)
from portal.ui.ids import Pane
from portal.web.auditing import record_refusal
from portal.web.context import portal, principal


def _match(kind: Pane) -> dict[str, Any]:
    return {"type": kind.value, "study": MATCH}


def _each(kind: Pane, key: str) -> dict[str, Any]:
    """Every re-rendered `kind` component of the matched pane (one per label or thread)."""
    return {"type": kind.value, "study": MATCH, key: ALL}


DECISIONS = {
    Pane.APPROVE.value: ReviewStatus.APPROVED,
    Pane.NEEDS_EDIT.value: ReviewStatus.NEEDS_EDIT,
    Pane.FLAG.value: ReviewStatus.FLAGGED_FOR_EXPERT,
    Pane.REJECT.value: ReviewStatus.REJECTED,
}
NOT_AVAILABLE = "This study is not available to you."


def register(app: Dash) -> None:
    # The slice moves in the browser (`assets/viewer.js` sets it on the vtk.js mappers,
    # on the pane's current axis, and moves linked panes): no server round trip.
    app.clientside_callback(
        """function(k, maxK, id) {
            if (window.portalViewer) { return window.portalViewer.onSlider(id.study, k); }
            return (k + 1) + '/' + (maxK + 1);
        }""",
        Output(_match(Pane.SLICE_TEXT), "children"),
        Input(_match(Pane.SLIDER), "value"),
        State(_match(Pane.SLIDER), "max"),
        State(_match(Pane.SLIDER), "id"),
        prevent_initial_call=True,
    )
    app.clientside_callback(
        """function(t, maxT, id) {
            const pane = document.querySelector('.pane[data-study-id="' + id.study + '"]');
            const view = pane ? JSON.parse(pane.dataset.view || '{}') : {};
            const file = view.values ? 'values.vti' : 'image.vti';
            const base = '/api/v1/studies/' + id.study;
            const url = t ? base + '/volumes/' + t + '/' + file : base + '/preview/' + file;
            return [url, 'vol ' + (t + 1) + '/' + (maxT + 1)];
        }""",
        Output(_match(Pane.IMAGE_READER), "url"),
        Output(_match(Pane.VOLUME_TEXT), "children"),
        Input(_match(Pane.VOLUME), "value"),
        State(_match(Pane.VOLUME), "max"),
        State(_match(Pane.VOLUME), "id"),
        prevent_initial_call=True,
    )

    @app.callback(
        Output(_match(Pane.VIEW), "children"),
        Output(_match(Pane.VIEW), "cameraPosition"),
        Output(_match(Pane.VIEW), "cameraViewUp"),
        Output(_match(Pane.VIEW), "cameraParallelProjection"),
        Output(_match(Pane.VIEW), "interactorSettings"),
        Output(_match(Pane.VIEW), "triggerResetCamera"),
        Output(_match(Pane.ROOT), "className"),
        Input(_match(Pane.MODE), "value"),
        State(_match(Pane.SLIDER), "value"),
        State(_match(Pane.VOLUME), "value"),
        State(_match(Pane.MODE), "id"),
        prevent_initial_call=True,
    )
    def switch_mode(
        mode: str,
        k_slice: int,
        volume_index: int | None,
        mode_id: dict[str, Any],
    ) -> tuple[Any, ...]:
        study_id = int(mode_id["study"])
        p = portal()
        try:
            with p.db.session() as s:
                # Re-checks access: a pane id in the request is not proof of permission.
                detail, meta = viewer.pane_data(
                    s,
                    principal(),
                    p.settings.preview_dir,
                    study_id,
                    store_dir=p.settings.store_dir,
                    max_voxels=p.settings.max_voxels,
                )
                surfaces = (
                    viewer.label_surfaces(s, principal(), p.settings.preview_dir, study_id)
                    if mode == "3d"
                    else []
                )
        except NotFound as exc:
            # A forged or stale pane id: answer with nothing rather than a 500.
            record_refusal(exc, f"study:{study_id}", "dash:pane.switch_mode")
            raise PreventUpdate from exc
        view = view_data(study_id, meta)
        if mode == "3d":
            camera = CORONAL_3D_CAMERA
            children = volume_children(
                study_id, surfaces, view, int(k_slice or 0), int(volume_index or 0)
            )
            return (
                children,
                camera["cameraPosition"],
                camera["cameraViewUp"],
                False,
                INTERACTOR_3D,
                1,
                "pane mode-3d",
            )
        camera = AXIAL_CAMERA
        return (
            slice_children(study_id, int(k_slice or 0), view, volume_index=int(volume_index or 0)),
            camera["cameraPosition"],
            camera["cameraViewUp"],
            True,
            INTERACTOR_2D,
            2,
            "pane",
        )

    _register_panel(app)
    _register_pick(app)


def _register_panel(app: Dash) -> None:
    outputs = [
        Output(_match(Pane.MESSAGE), "children"),
        Output(_match(Pane.BADGE), "children"),
        Output(_match(Pane.BADGE), "className"),
        Output(_match(Pane.VERSION), "data"),
        Output(_match(Pane.ACTIONS), "className"),
        Output(_match(Pane.READS), "children"),
        Output(_match(Pane.DETAILS), "children"),
        Output(_match(Pane.MARKERS), "children"),
        Output(_match(Pane.NOTE), "value"),
        Output(_match(Pane.COMMENT), "value"),
        Output(_match(Pane.PICK), "data"),
    ]

    @app.callback(
        *outputs,
        Input(_match(Pane.ITEM), "value"),
        Input(_match(Pane.APPROVE), "n_clicks"),
        Input(_match(Pane.NEEDS_EDIT), "n_clicks"),
        Input(_match(Pane.FLAG), "n_clicks"),
        Input(_match(Pane.REJECT), "n_clicks"),
        Input(_match(Pane.COMMENT_ADD), "n_clicks"),
        Input(_each(Pane.THREAD_REPLY, "thread"), "n_clicks"),
        Input(_each(Pane.THREAD_RESOLVE, "thread"), "n_clicks"),
        State(_match(Pane.VERSION), "data"),
        State(_match(Pane.NOTE), "value"),
        State(_each(Pane.LABEL_VERDICT, "label"), "value"),
        State(_each(Pane.LABEL_VERDICT, "label"), "id"),
        State(_each(Pane.REPLY_TEXT, "thread"), "value"),
        State(_each(Pane.REPLY_TEXT, "thread"), "id"),
        State(_match(Pane.COMMENT), "value"),
        State(_match(Pane.PICK), "data"),
        State(_match(Pane.ITEM), "id"),
        prevent_initial_call=True,
    )
    def act(*args: Any) -> tuple[Any, ...]:
        (
            item_choice,
            *_clicks,
            version,
            note,
            verdict_values,
            verdict_ids,
            reply_values,
            reply_ids,
            comment,
            pick,
            item_select_id,
        ) = args
        unchanged = (no_update,) * len(outputs)
        trigger = ctx.triggered_id
        if trigger is None:
            return unchanged
        kind = trigger["type"]
        # Re-rendered buttons arrive with n_clicks None; only a real click acts.
        if kind != Pane.ITEM.value and not ctx.triggered[0]["value"]:
            return unchanged
        study_id = int(item_select_id["study"])
        item_id = int(version["item"]) if kind != Pane.ITEM.value else int(item_choice)
        p = portal()
        message = ""
        cleared = {"note": no_update, "comment": no_update, "pick": no_update}
        try:
            with p.db.session() as s:
                who = principal()
                if kind in DECISIONS:
                    pairs = zip(verdict_ids, verdict_values, strict=True)
                    verdicts = {str(i["label"]): v for i, v in pairs if v}
                    review.decide(
                        s,
                        who,
                        item_id,
                        DECISIONS[kind],
                        note or "",
                        verdicts,
                        int(version["version"]),
                    )
                    message = "Saved: " + STATUS_LABELS[DECISIONS[kind].value].lower()
                    cleared["note"] = ""
                elif kind == Pane.COMMENT_ADD.value:
                    anchor = (
                        comments.Anchor(
                            world_mm=tuple(float(v) for v in pick["world_mm"]),  # type: ignore[arg-type]
                            slice_index=pick.get("slice_index"),
                        )
                        if pick
                        else None
                    )
                    comments.add_comment(s, who, item_id, comment or "", anchor)
                    message = "Comment added"
                    cleared["comment"] = ""
                    cleared["pick"] = None  # the point is now the thread's marker
                elif kind == Pane.THREAD_REPLY.value:
                    replies = {i["thread"]: v for i, v in zip(reply_ids, reply_values, strict=True)}
                    body = replies.get(trigger["thread"]) or ""
                    comments.add_comment(s, who, item_id, body, parent_id=int(trigger["thread"]))
                    message = "Reply added"
                elif kind == Pane.THREAD_RESOLVE.value:
                    comments.resolve_comment(s, who, int(trigger["thread"]))
                    message = "Thread resolved"
                data = review_view.study_review(s, who, study_id, p.settings.store_dir)
        except Conflict as exc:
            # Never a silent overwrite: say what changed and show the item as it is now.
            message = f"{exc}. The panel now shows the current state."
            try:
                with p.db.session() as s:
                    data = review_view.study_review(s, principal(), study_id, p.settings.store_dir)
            except NotFound:
                return (NOT_AVAILABLE, *unchanged[1:])
        except InvalidInput as exc:
            return (str(exc), *unchanged[1:])
        except PermissionDenied as exc:
            record_refusal(exc, f"study:{study_id}", "dash:pane.review")
            return (str(exc), *unchanged[1:])
        except NotFound as exc:
            record_refusal(exc, f"study:{study_id}", "dash:pane.review")
            return (NOT_AVAILABLE, *unchanged[1:])
        item = selected_item(data, item_id)
        return (
            message,
            STATUS_LABELS.get(item["state"], item["state"]),
            f"badge status-{item['state']}",
            {"item": item["id"], "version": item["version"]},
            actions_class(item, data["can"]),
            reads_text(item),
            details(study_id, item),
            markers(item),
            cleared["note"],
            cleared["comment"],
            cleared["pick"],
        )


def _register_pick(app: Dash) -> None:
    # `assets/pane.js` stores a click on the 2D view (RAS mm, slice) as the next anchor;
    # show it in words and as a dot.
    app.clientside_callback(
        """function(pick) {
            if (!pick) { return ['Click the image to anchor a new comment there.', []]; }
            const w = pick.world_mm;
            const dot = {namespace: 'dash_html_components', type: 'Span', props: {
                className: 'marker pick', title: 'anchor of the next comment',
                'data-world': w.join(','), 'data-k': String(pick.slice_index)}};
            return ['Anchor: (' + w.map(v => v.toFixed(0)).join(', ') + ') mm, slice '
                + (pick.slice_index + 1) + '. Write the comment below.', [dot]];
        }""",
        Output(_match(Pane.PICK_TEXT), "children"),
        Output(_match(Pane.PICK_MARKER), "children"),
        Input(_match(Pane.PICK), "data"),
        prevent_initial_call=True,
    )
