"""The review panel's "Add a segmentation": a label file joins the pane's study.

On success the pane is rebuilt and mounted afresh in its grid slot (`pages.review.slot`):
`assets/viewer.js` keeps each pane's state with its DOM element and reads `data-view`
(the segmentation chooser's entries) once per element, so only a new element offers the
new segmentation. The slot's child gets a new id, which makes React mount it anew (Dash
keys children by id); the other panes are untouched, and `assets/pane.js` releases the
replaced view's WebGL context. The rebuilt pane keeps the slice and the 2D/3D mode.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from dash import MATCH, Dash, Input, Output, State, html, no_update
from dash.exceptions import PreventUpdate
from sqlalchemy.orm import Session

from portal.services import review_view, segmentation_add, viewer
from portal.services.auth import Principal
from portal.services.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from portal.ui.components.pane import pane
from portal.ui.components.review_panel import UPLOAD_MAX_BYTES
from portal.ui.ids import Pane, pane_id
from portal.web.auditing import record_refusal
from portal.web.context import portal, principal

NOT_AVAILABLE = "This study is not available to you."


def _match(kind: Pane) -> dict[str, Any]:
    return {"type": kind.value, "study": MATCH}


def decode_upload(contents: str, filename: str) -> bytes:
    """The bytes of a `dcc.Upload` data URL (``data:<type>;base64,<data>``)."""
    _, _, encoded = contents.partition(",")
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidInput(f"{filename}: the upload arrived damaged; try again") from exc


def rebuilt_pane(
    session: Session, who: Principal, study_id: int, k_slice: int | None, three_d: bool
) -> html.Div:
    """The study's pane as the review page builds it, on slice `k_slice` and in 2D or 3D."""
    p = portal()
    detail, meta = viewer.pane_data(
        session,
        who,
        p.settings.preview_dir,
        study_id,
        store_dir=p.settings.store_dir,
        max_voxels=p.settings.max_voxels,
    )
    data = review_view.study_review(session, who, study_id, p.settings.store_dir)
    surfaces = (
        viewer.label_surfaces(session, who, p.settings.preview_dir, study_id) if three_d else None
    )
    return pane(detail, meta, data, k_slice, surfaces)


def _say(built: html.Div, study_id: int, text: str) -> None:
    """Put `text` in the rebuilt pane's message line (the review row, always shown)."""
    wanted = pane_id(Pane.MESSAGE, study_id)
    for component in built._traverse():
        if getattr(component, "id", None) == wanted:
            component.children = text
            return


def register(app: Dash) -> None:
    @app.callback(
        Output(_match(Pane.SEG_MESSAGE), "children"),
        Output(_match(Pane.SLOT), "children"),
        Input(_match(Pane.SEG_UPLOAD), "contents"),
        State(_match(Pane.SEG_UPLOAD), "filename"),
        State(_match(Pane.SEG_NAME), "value"),
        State(_match(Pane.SLIDER), "value"),
        State(_match(Pane.MODE), "value"),
        State(_match(Pane.SEG_UPLOAD), "id"),
        prevent_initial_call=True,
    )
    def add_segmentation(
        contents: str | None,
        filename: str | None,
        name: str | None,
        k_slice: int | None,
        mode: str | None,
        upload_id: dict[str, Any],
    ) -> tuple[Any, Any]:
        if not contents:
            raise PreventUpdate
        study_id = int(upload_id["study"])
        p = portal()
        limit = min(p.settings.max_segmentation_mb * 1024 * 1024, UPLOAD_MAX_BYTES)
        file_name = filename or ""
        try:
            with p.db.session() as s:
                who = principal()
                # Re-checks access before the upload is even decoded.
                segmentation_add.check_may_add(s, who, study_id)
                data = decode_upload(contents, file_name)
                added = segmentation_add.add_segmentation(
                    s,
                    who,
                    p.settings.store_dir,
                    p.settings.preview_dir,
                    study_id,
                    file_name,
                    data,
                    name or "",
                    max_bytes=limit,
                    max_voxels=p.settings.max_voxels,
                )
                added_id = added.id
                text = f"Added {added.name!r}: choose it in the segmentation menu."
            with p.db.session() as s:
                k = None if k_slice is None else int(k_slice)
                built = rebuilt_pane(s, principal(), study_id, k, mode == "3d")
        except (InvalidInput, Conflict) as exc:
            return str(exc), no_update
        except PermissionDenied as exc:
            record_refusal(exc, f"study:{study_id}", "dash:pane.add_segmentation")
            return str(exc), no_update
        except NotFound as exc:
            record_refusal(exc, f"study:{study_id}", "dash:pane.add_segmentation")
            return NOT_AVAILABLE, no_update
        _say(built, study_id, text)
        mount = html.Div(
            built,
            id={"type": Pane.MOUNT.value, "study": study_id, "n": added_id},
            style={"display": "contents"},
        )
        return no_update, mount
