"""Pane callbacks: slice scrolling (client-side), 2D/3D switch and review flags (server)."""

from __future__ import annotations

from typing import Any

from dash import MATCH, Dash, Input, Output, State, no_update
from dash.exceptions import PreventUpdate

from portal.db.models import ReviewStatus
from portal.services import review, viewer
from portal.services.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from portal.ui.components.pane import (
    AXIAL_CAMERA,
    CORONAL_3D_CAMERA,
    INTERACTOR_2D,
    INTERACTOR_3D,
    STATUS_LABELS,
    slice_children,
    volume_children,
)
from portal.ui.ids import Pane
from portal.web.auditing import record_refusal
from portal.web.context import portal, principal


def _match(kind: Pane) -> dict[str, Any]:
    return {"type": kind.value, "study": MATCH}


def register(app: Dash) -> None:
    app.clientside_callback(
        """function(k, maxK) { return [k, (k + 1) + '/' + (maxK + 1)]; }""",
        Output(_match(Pane.IMAGE_SLICE), "kSlice"),
        Output(_match(Pane.SLICE_TEXT), "children"),
        Input(_match(Pane.SLIDER), "value"),
        State(_match(Pane.SLIDER), "max"),
        prevent_initial_call=True,
    )
    app.clientside_callback(
        """function(t, maxT, id) {
            const base = '/api/v1/studies/' + id.study;
            const url = t ? base + '/volumes/' + t + '/image.vti' : base + '/preview/image.vti';
            return [url, 'vol ' + (t + 1) + '/' + (maxT + 1)];
        }""",
        Output(_match(Pane.IMAGE_READER), "url"),
        Output(_match(Pane.VOLUME_TEXT), "children"),
        Input(_match(Pane.VOLUME), "value"),
        State(_match(Pane.VOLUME), "max"),
        State(_match(Pane.VOLUME), "id"),
        prevent_initial_call=True,
    )
    app.clientside_callback(
        """function(k) { return k; }""",
        Output(_match(Pane.LABEL_SLICE), "kSlice"),
        Input(_match(Pane.SLIDER), "value"),
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
        mode: str, k_slice: int, volume_index: int | None, mode_id: dict[str, Any]
    ) -> tuple[Any, ...]:
        study_id = int(mode_id["study"])
        p = portal()
        try:
            with p.db.session() as s:
                # Re-checks access: a pane id in the request is not proof of permission.
                detail, meta = viewer.pane_data(s, principal(), p.settings.preview_dir, study_id)
                surfaces = (
                    viewer.label_surfaces(s, principal(), p.settings.preview_dir, study_id)
                    if mode == "3d"
                    else []
                )
        except NotFound as exc:
            # A forged or stale pane id: answer with nothing rather than a 500.
            record_refusal(exc, f"study:{study_id}", "dash:pane.switch_mode")
            raise PreventUpdate from exc
        has_labels = bool(meta.get("labels"))
        if mode == "3d":
            camera = CORONAL_3D_CAMERA
            children = volume_children(study_id, surfaces, int(volume_index or 0))
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
            slice_children(
                study_id, int(k_slice or 0), has_labels, volume_index=int(volume_index or 0)
            ),
            camera["cameraPosition"],
            camera["cameraViewUp"],
            True,
            INTERACTOR_2D,
            2,
            "pane",
        )

    @app.callback(
        Output(_match(Pane.MESSAGE), "children"),
        Output(_match(Pane.BADGE), "children"),
        Output(_match(Pane.BADGE), "className"),
        Input(_match(Pane.SAVE), "n_clicks"),
        State(_match(Pane.STATUS), "value"),
        State(_match(Pane.REASON), "value"),
        State(_match(Pane.SAVE), "id"),
        prevent_initial_call=True,
    )
    def save_flag(
        _clicks: int, status: str | None, reason: str | None, save_id: dict[str, Any]
    ) -> tuple[Any, ...]:
        if not status:
            return "Choose a status first.", no_update, no_update
        try:
            with portal().db.session() as s:
                study = review.set_flag(
                    s, principal(), int(save_id["study"]), ReviewStatus(status), reason or ""
                )
                saved = study.review_status
                when = study.reviewed_at.strftime("%H:%M") if study.reviewed_at else ""
        except (InvalidInput, Conflict, ValueError) as exc:
            return str(exc), no_update, no_update
        except NotFound as exc:
            record_refusal(exc, f"study:{save_id['study']}", "dash:pane.save_flag")
            return "This study is not available to you.", no_update, no_update
        except PermissionDenied as exc:
            record_refusal(exc, f"study:{save_id['study']}", "dash:pane.save_flag")
            return str(exc), no_update, no_update
        return (
            f"Saved {when}",
            STATUS_LABELS.get(saved, saved),
            f"badge status-{saved}",
        )
