"""A pane's picture controls (view axis, reset, window presets, 3D presets, segmentation
chooser, overlay), plain elements handled in the browser by `assets/viewer_input.js`."""

from __future__ import annotations

from typing import Any

from dash import dcc, html

__all__ = ["tools"]


def tools(view: dict[str, Any]) -> html.Div:
    """The pane's picture controls, all handled in the browser by `assets/viewer.js`."""
    axes = [
        html.Button(
            text,
            className="tool view-axis",
            title=title,
            disabled=axis not in view["axes"],
            **{"data-axis": axis},
        )
        for axis, text, title in (
            ("axial", "Ax", "Axial (v cycles views)"),
            ("coronal", "Cor", "Coronal"),
            ("sagittal", "Sag", "Sagittal"),
        )
    ]
    reset = html.Button("Reset", className="tool view-reset", title="Reset zoom and pan (r)")
    children: list[Any] = [html.Div([*axes, reset], className="tool-group view-axes")]
    if not view["rgb"]:
        presets = [
            html.Button(
                preset["name"],
                className="tool wl-preset",
                title="Window {:g} / level {:g}".format(
                    preset["window"][1] - preset["window"][0],
                    (preset["window"][0] + preset["window"][1]) / 2,
                ),
                **{"data-preset": preset["key"]},
            )
            for preset in view["presets"]
        ]
        children.append(
            html.Details(
                [
                    html.Summary("W/L", title="Window presets (w cycles them)"),
                    html.Div(presets, className="wl-list"),
                ],
                className="tool-group wl-menu",
            )
        )
    if not view["rgb"]:
        children.append(
            html.Div(
                className="tool-group tools-3d",
                children=[
                    html.Span("Volume:"),
                    *[
                        html.Button(
                            name,
                            className="tool vol-preset" + (" on" if key == "off" else ""),
                            title=title,
                            **{"data-volume": key},
                        )
                        for key, name, title in (
                            ("off", "Off", "No volume rendering: surfaces and the slice plane"),
                            ("context", "Context", "The brighter tissue, grey"),
                            ("soft", "Soft", "Soft tissue, faint"),
                            ("bright", "Bright", "Only the brightest: bone, contrast"),
                        )
                    ],
                    html.Button(
                        "Plane",
                        className="tool plane-toggle on",
                        title="The current 2D slice plane in 3D",
                    ),
                ],
            )
        )
    segmentations = view["segmentations"]
    if len(segmentations) > 1:
        children.append(
            html.Details(
                [
                    html.Summary(
                        segmentations[0]["name"],
                        className="seg-current",
                        title="Which segmentation is overlaid",
                    ),
                    html.Div(
                        [
                            html.Button(
                                seg["name"],
                                className="tool seg-choice" + (" on" if i == 0 else ""),
                                **{"data-seg": str(i)},
                            )
                            for i, seg in enumerate(segmentations)
                        ],
                        className="wl-list",
                    ),
                ],
                className="tool-group wl-menu seg-menu",
            )
        )
    if segmentations:
        children.append(
            html.Div(
                className="tool-group overlay-tools",
                children=[
                    html.Button(
                        "Overlay",
                        className="tool overlay-toggle on",
                        title="Show or hide the segmentation (o)",
                    ),
                    html.Label(
                        dcc.Input(
                            type="range",
                            min=0,
                            max=100,
                            step=5,
                            value=50,
                            className="overlay-opacity",
                            debounce=False,
                        ),
                        title="Overlay opacity",
                    ),
                    html.Button(
                        "Outline",
                        className="tool overlay-outline",
                        title="Draw label outlines only (b)",
                    ),
                ],
            )
        )
    return html.Div(children, className="pane-tools")
