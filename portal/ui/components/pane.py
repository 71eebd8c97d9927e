"""One study's viewer pane: a dash-vtk View with the image slice and its label overlay.

Every pane is exactly one `dash_vtk.View` (one WebGL context). Voxels never travel in
Dash props: `dash_vtk.Reader` fetches the study's gzip-compressed `.vti` previews from the
API, which re-checks access. The outer element carries `data-study-id`; the pane script in
`assets/pane.js` sets `data-state="ready"` once the first frame shows image content.

Everything a reviewer does to the picture without asking the server (slice, view axis,
window/level, overlay opacity, outline, label visibility, hover readout, linked scrolling)
is done in the browser by `assets/viewer.js` on the vtk.js objects dash-vtk made; the pane
hands it the study's grid and windows in its `data-view` attribute. Its controls are plain
elements (no Dash callbacks), so a slider drag or a preset click never waits for the server.
"""

from __future__ import annotations

import json
from typing import Any

import dash_vtk
from dash import dcc, html

from portal.ui.components.pane_tools import tools
from portal.ui.components.pane_view import (
    image_url,
    plane_points,
    slice_url,
    view_data,
)
from portal.ui.components.review_panel import STATUS_LABELS, markers, panel, selected_item
from portal.ui.ids import Pane, pane_id

__all__ = ["STATUS_LABELS", "missing_pane", "pane", "slice_children", "volume_children"]

# Radiological convention, looking from the feet: patient right on screen left, anterior up.
AXIAL_CAMERA = {"cameraPosition": [0, 0, -1], "cameraViewUp": [0, 1, 0]}
# Facing the patient from the front, a little from the right and above, head up: the
# current 2D slice plane (axial, coronal or sagittal) is never seen edge-on.
CORONAL_3D_CAMERA = {"cameraPosition": [0.35, 1, 0.45], "cameraViewUp": [0, 0, 1]}
# The left button drags window/level (handled by `assets/viewer.js`, as on a PACS
# workstation); shift+left and the middle button pan, ctrl+left and the right button zoom.
INTERACTOR_2D = [
    {"button": 1, "action": "Pan", "shift": True},
    {"button": 1, "action": "Zoom", "control": True},
    {"button": 2, "action": "Pan"},
    {"button": 3, "action": "Zoom", "scrollEnabled": False},
]
INTERACTOR_3D = [
    {"button": 1, "action": "Rotate"},
    {"button": 2, "action": "Pan"},
    {"button": 3, "action": "Zoom", "scrollEnabled": True},
    {"button": 1, "action": "Pan", "shift": True},
]


def _window_property(view: dict[str, Any]) -> dict[str, float]:
    low, high = view["window"]
    width = max(float(high) - float(low), 1e-6)
    # A negative width inverts the ramp: MONOCHROME1 stores bright as low values.
    return {"colorWindow": -width if view["invert"] else width, "colorLevel": (low + high) / 2}


def slice_children(
    study_id: int,
    k_slice: int,
    view: dict[str, Any],
    visible: bool = True,
    volume_index: int = 0,
) -> list[Any]:
    """The 2D representations: grey image slice plus the RGBA label slice on top.

    Only the first render uses `k_slice`: afterwards `assets/viewer.js` moves the slice
    (and its axis) on the vtk.js mappers directly.
    """
    children: list[Any] = [
        dash_vtk.SliceRepresentation(
            id=pane_id(Pane.IMAGE_SLICE, study_id),
            kSlice=k_slice,
            property=_window_property(view),
            actor={"visibility": visible},
            children=dash_vtk.Reader(
                id=pane_id(Pane.IMAGE_READER, study_id),
                vtkClass="vtkXMLImageDataReader",
                url=slice_url(study_id, view, volume_index),
            ),
        )
    ]
    if view["segmentations"]:
        children.append(
            dash_vtk.SliceRepresentation(
                id=pane_id(Pane.LABEL_SLICE, study_id),
                kSlice=k_slice,
                actor={"visibility": visible},
                children=dash_vtk.Reader(
                    id=pane_id(Pane.LABEL_READER, study_id),
                    vtkClass="vtkXMLImageDataReader",
                    url=view["segmentations"][0]["url"],
                    resetCameraOnUpdate=False,
                ),
            )
        )
    if view["fine"]:
        # A full-resolution slice, fetched by `assets/viewer.js` once the reviewer stops
        # scrolling, drawn instead of the preview slice it refines.
        children.append(
            dash_vtk.SliceRepresentation(
                children=dash_vtk.Reader(
                    id=pane_id(Pane.FINE_READER, study_id),
                    vtkClass="vtkXMLImageDataReader",
                    resetCameraOnUpdate=False,
                ),
            )
        )
        if view["segmentations"]:
            children.append(
                dash_vtk.SliceRepresentation(
                    children=dash_vtk.Reader(
                        id=pane_id(Pane.FINE_LABEL_READER, study_id),
                        vtkClass="vtkXMLImageDataReader",
                        resetCameraOnUpdate=False,
                    ),
                )
            )
    return children


def volume_children(
    study_id: int,
    surfaces: list[dict[str, Any]],
    view: dict[str, Any],
    k_slice: int = 0,
    volume_index: int = 0,
) -> list[Any]:
    """The 3D representations: grey volume rendering (off until a preset is picked in
    `assets/viewer.js`), one surface per label, and the current 2D slice plane (which
    `assets/viewer.js` keeps on the 2D view's axis and position)."""
    children: list[Any] = [
        # Only the brighter part of the image is rendered, as faint context: a full-range
        # ramp draws an opaque skin that hides the label surfaces inside it. (Setting the
        # volume `property` crashes react-vtk-js 1.5, so the range is the only knob.)
        dash_vtk.VolumeRepresentation(
            colorMapPreset="Grayscale",
            colorDataRange=[140, 255],
            children=dash_vtk.Reader(
                vtkClass="vtkXMLImageDataReader", url=image_url(study_id, volume_index)
            ),
        ),
        # The 2D view's slice plane as a see-through frame. (An image slice in this scene
        # renders black beside the surfaces in vtk.js 17.8; geometry does not.)
        dash_vtk.GeometryRepresentation(
            property={"color": [1.0, 0.85, 0.2], "opacity": 0.35},
            children=[
                dash_vtk.PolyData(
                    id=pane_id(Pane.PLANE, study_id),
                    points=plane_points(view, "axial", k_slice),
                    polys=[4, 0, 1, 2, 3],
                    lines=[5, 0, 1, 2, 3, 0],
                )
            ],
        ),
    ]
    for surface in surfaces:
        children.append(
            dash_vtk.GeometryRepresentation(
                # See-through, so the slice plane inside the labels stays visible.
                property={"color": surface["color"], "opacity": 0.55},
                children=[dash_vtk.Mesh(state=surface["state"])],
            )
        )
    return children


def pane(
    detail: dict[str, Any],
    meta: dict[str, Any],
    review: dict[str, Any],
    k_slice: int | None = None,
    surfaces: list[dict[str, Any]] | None = None,
    initial: dict[str, Any] | None = None,
) -> html.Div:
    """The pane of one visible study; `meta` is the study's preview `meta.json`, `review`
    its `review_view.study_review` as the signed-in user may see it.

    `k_slice` is the first axial slice shown (the middle one if None); with `surfaces`
    (a list, possibly empty) the pane opens in 3D with those label surfaces. `initial`
    (a `live.parse_state` result: axis, slice_mm, window, overlay, ...) is what
    `assets/viewer.js` applies when the pane first appears.
    """
    study_id = int(detail["id"])
    view = view_data(study_id, meta)
    item = selected_item(review, None)
    nk = int(meta["shape"][2])
    mid = nk // 2 if k_slice is None else min(max(int(k_slice), 0), max(nk - 1, 0))
    three_d = surfaces is not None and not meta.get("rgb")
    status = item["state"]
    legend = [
        html.Div(
            [
                html.Button(
                    [
                        html.I(style={"background": "rgb({},{},{})".format(*lab["color"])}),
                        lab["name"],
                        html.Span(_ml(lab.get("volume_ml")), className="legend-ml"),
                    ],
                    className="legend-item",
                    title="Show or hide this label",
                    **{"data-label": str(lab["value"])},
                )
                for lab in seg["labels"]
            ],
            className="legend-seg" + ("" if i == 0 else " hidden"),
            **{"data-seg": str(i)},
        )
        for i, seg in enumerate(view["segmentations"])
    ]
    camera = CORONAL_3D_CAMERA if three_d else AXIAL_CAMERA
    return html.Div(
        className="pane mode-3d" if three_d else "pane",
        id=pane_id(Pane.ROOT, study_id),
        **{
            "data-study-id": str(study_id),
            "data-view": json.dumps(view),
            "data-initial": json.dumps(initial or {}),
        },
        children=[
            html.Div(
                className="pane-head",
                children=[
                    html.Span(detail["name"], className="pane-title", title=detail["name"]),
                    html.Span(
                        f"{detail['modality']} · {detail['dimensions']} · {detail['orientation']}",
                        className="pane-sub",
                    ),
                    *_notes_marker(detail.get("notes") or []),
                    html.A(
                        "Report",
                        href=f"/reports/study/{study_id}",
                        target="_blank",
                        className="pane-report",
                        title="Printable review report",
                    ),
                    html.Span(
                        STATUS_LABELS.get(status, status),
                        id=pane_id(Pane.BADGE, study_id),
                        className=f"badge status-{status}",
                    ),
                    # Maximise is a CSS class set by assets/grid.js: the other panes stay
                    # mounted, with their contexts and loaded volumes.
                    html.Button(
                        "⤢",
                        className="pane-max",
                        title="Maximise this pane (m)",
                        type="button",
                    ),
                ],
            ),
            tools(view),
            html.Div(
                className="pane-view",
                children=[
                    dash_vtk.View(
                        id=pane_id(Pane.VIEW, study_id),
                        background=[0, 0, 0],
                        cameraParallelProjection=not three_d,
                        interactorSettings=INTERACTOR_3D if three_d else INTERACTOR_2D,
                        children=(
                            volume_children(study_id, surfaces or [], view, mid)
                            if three_d
                            else slice_children(study_id, mid, view)
                        ),
                        **camera,
                    ),
                    html.Span("A", className="orient orient-top"),
                    html.Span("P", className="orient orient-bottom"),
                    html.Span("R", className="orient orient-left"),
                    html.Span("L", className="orient orient-right"),
                    html.Span(
                        f"{mid + 1}/{nk}",
                        id=pane_id(Pane.SLICE_TEXT, study_id),
                        className="slice-text",
                    ),
                    html.Span("", className="wl-text"),
                    html.Span("", className="readout"),
                    html.Div(legend, className="legend"),
                    # Comment anchors, and the point picked for the next comment.
                    html.Div(
                        markers(item), id=pane_id(Pane.MARKERS, study_id), className="markers"
                    ),
                    html.Div(id=pane_id(Pane.PICK_MARKER, study_id), className="markers"),
                ],
            ),
            html.Div(
                className="pane-controls",
                children=[
                    dcc.RadioItems(
                        id=pane_id(Pane.MODE, study_id),
                        options=[
                            {"label": "2D", "value": "2d"},
                            # Volume rendering maps one value per voxel; colour has three.
                            {"label": "3D", "value": "3d", "disabled": bool(meta.get("rgb"))},
                        ],
                        value="3d" if three_d else "2d",
                        inline=True,
                        className="mode-toggle",
                    ),
                    *_volume_control(study_id, int(detail.get("volume_count") or 1)),
                    html.Div(
                        dcc.Slider(
                            id=pane_id(Pane.SLIDER, study_id),
                            min=0,
                            max=max(nk - 1, 0),
                            step=1,
                            value=mid,
                            marks=None,
                            updatemode="drag",
                            tooltip=None,
                        ),
                        className="slice-slider",
                    ),
                ],
            ),
            panel(study_id, review),
        ],
    )


def _volume_control(study_id: int, count: int) -> list[Any]:
    """For a 4-D study: which 3-D volume (time point, diffusion direction) is shown.

    Rendered (hidden) for 3-D studies too, so the pane callbacks read it for every pane.
    """
    return [
        html.Div(
            className="volume-control" if count > 1 else "volume-control hidden",
            title="3-D volume of this 4-D series",
            children=[
                html.Span(f"vol 1/{count}", id=pane_id(Pane.VOLUME_TEXT, study_id)),
                dcc.Slider(
                    id=pane_id(Pane.VOLUME, study_id),
                    min=0,
                    max=max(count - 1, 0),
                    step=1,
                    value=0,
                    marks=None,
                    # Each new volume is a fetch (and, the first time, a read on the
                    # server): only on release, not for every position dragged over.
                    updatemode="mouseup",
                ),
            ],
        )
    ]


def _notes_marker(notes: list[str]) -> list[html.Span]:
    """A marker whose tooltip lists what the import noticed (tilt, assumed geometry)."""
    if not notes:
        return []
    return [html.Span("notes", title="\n".join(notes), className="pane-notes")]


def _ml(volume_ml: float | None) -> str:
    return "" if volume_ml is None else f" · {volume_ml:.1f} ml"


def missing_pane(study_id: int) -> html.Div:
    """Placeholder cell for an id that does not exist or is not visible (we do not say which)."""
    return html.Div(
        className="pane pane-missing",
        children=html.P(f"Study {study_id} is not available to you."),
    )
