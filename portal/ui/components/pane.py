"""One study's viewer pane: a dash-vtk View with the image slice and its label overlay.

Every pane is exactly one `dash_vtk.View` (one WebGL context). Voxels never travel in
Dash props: `dash_vtk.Reader` fetches the study's gzip-compressed `.vti` previews from the
API, which re-checks access. The outer element carries `data-study-id`; the pane script in
`assets/pane.js` sets `data-state="ready"` once the first frame shows image content.
"""

from __future__ import annotations

from typing import Any

import dash_vtk
from dash import dcc, html

from portal.ui.components.review_panel import STATUS_LABELS, markers, panel, selected_item
from portal.ui.ids import Pane, pane_id

__all__ = ["STATUS_LABELS", "missing_pane", "pane", "slice_children", "volume_children"]

# Radiological convention, looking from the feet: patient right on screen left, anterior up.
AXIAL_CAMERA = {"cameraPosition": [0, 0, -1], "cameraViewUp": [0, 1, 0]}
# Facing the patient from the front, head up.
CORONAL_3D_CAMERA = {"cameraPosition": [0, 1, 0], "cameraViewUp": [0, 0, 1]}
INTERACTOR_2D = [
    {"button": 1, "action": "Pan"},
    {"button": 2, "action": "Pan"},
    {"button": 3, "action": "Zoom", "scrollEnabled": False},
    {"button": 1, "action": "Zoom", "shift": True},
]
INTERACTOR_3D = [
    {"button": 1, "action": "Rotate"},
    {"button": 2, "action": "Pan"},
    {"button": 3, "action": "Zoom", "scrollEnabled": True},
    {"button": 1, "action": "Pan", "shift": True},
]


def preview_url(study_id: int, name: str) -> str:
    return f"/api/v1/studies/{study_id}/preview/{name}"


def image_url(study_id: int, volume_index: int = 0) -> str:
    """The image preview; for a 4-D study, that of 3-D volume `volume_index`."""
    if volume_index:
        return f"/api/v1/studies/{study_id}/volumes/{volume_index}/image.vti"
    return preview_url(study_id, "image.vti")


def slice_children(
    study_id: int, k_slice: int, has_labels: bool, visible: bool = True, volume_index: int = 0
) -> list[Any]:
    """The 2D representations: grey image slice plus the RGBA label slice on top."""
    children: list[Any] = [
        dash_vtk.SliceRepresentation(
            id=pane_id(Pane.IMAGE_SLICE, study_id),
            kSlice=k_slice,
            # The preview is already windowed to uint8, so the full range maps 1:1.
            property={"colorWindow": 255, "colorLevel": 127.5},
            actor={"visibility": visible},
            children=dash_vtk.Reader(
                id=pane_id(Pane.IMAGE_READER, study_id),
                vtkClass="vtkXMLImageDataReader",
                url=image_url(study_id, volume_index),
            ),
        )
    ]
    if has_labels:
        children.append(
            dash_vtk.SliceRepresentation(
                id=pane_id(Pane.LABEL_SLICE, study_id),
                kSlice=k_slice,
                actor={"visibility": visible},
                children=dash_vtk.Reader(
                    vtkClass="vtkXMLImageDataReader",
                    url=preview_url(study_id, "labels.vti"),
                    resetCameraOnUpdate=False,
                ),
            )
        )
    return children


def volume_children(
    study_id: int, surfaces: list[dict[str, Any]], volume_index: int = 0
) -> list[Any]:
    """The 3D representations: grey volume rendering plus one surface per label."""
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
        )
    ]
    for surface in surfaces:
        children.append(
            dash_vtk.GeometryRepresentation(
                property={"color": surface["color"], "opacity": 1.0},
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
) -> html.Div:
    """The pane of one visible study; `meta` is the study's preview `meta.json`, `review`
    its `review_view.study_review` as the signed-in user may see it.

    `k_slice` is the first axial slice shown (the middle one if None); with `surfaces`
    (a list, possibly empty) the pane opens in 3D with those label surfaces.
    """
    study_id = int(detail["id"])
    item = selected_item(review, None)
    nk = int(meta["shape"][2])
    mid = nk // 2 if k_slice is None else min(max(int(k_slice), 0), max(nk - 1, 0))
    three_d = surfaces is not None and not meta.get("rgb")
    labels = meta.get("labels", [])
    has_labels = bool(labels)
    status = item["state"]
    volumes = {
        lab["value"]: lab.get("volume_ml")
        for seg in detail.get("segmentations", [])[:1]
        for lab in seg["labels"]
    }
    legend = [
        html.Span(
            [
                html.I(style={"background": "rgb({},{},{})".format(*lab["color"])}),
                lab["name"],
                html.Span(_ml(volumes.get(lab["value"])), className="legend-ml"),
            ],
            className="legend-item",
        )
        for lab in labels
    ]
    camera = CORONAL_3D_CAMERA if three_d else AXIAL_CAMERA
    return html.Div(
        className="pane mode-3d" if three_d else "pane",
        id=pane_id(Pane.ROOT, study_id),
        **{"data-study-id": str(study_id)},
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
            html.Div(
                className="pane-view",
                children=[
                    dash_vtk.View(
                        id=pane_id(Pane.VIEW, study_id),
                        background=[0, 0, 0],
                        cameraParallelProjection=not three_d,
                        interactorSettings=INTERACTOR_3D if three_d else INTERACTOR_2D,
                        children=(
                            volume_children(study_id, surfaces or [])
                            if three_d
                            else slice_children(study_id, mid, has_labels)
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
