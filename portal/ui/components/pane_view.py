"""What a viewer pane hands the browser about its study: preview URLs, the grid, units,
windows and presets, segmentations (the pane's `data-view`, read by `assets/viewer.js`),
and the 3D slice-plane frame."""

from __future__ import annotations

from typing import Any

from portal.imaging.windowing import CT_PRESETS

__all__ = ["AXIS_DIMS", "image_url", "plane_points", "preview_url", "slice_url", "view_data"]

AXIS_DIMS = {"sagittal": 0, "coronal": 1, "axial": 2}


def preview_url(study_id: int, name: str) -> str:
    return f"/api/v1/studies/{study_id}/preview/{name}"


def image_url(study_id: int, volume_index: int = 0) -> str:
    """The 8-bit image preview; for a 4-D study, that of 3-D volume `volume_index`."""
    if volume_index:
        return f"/api/v1/studies/{study_id}/volumes/{volume_index}/image.vti"
    return preview_url(study_id, "image.vti")


def slice_url(study_id: int, view: dict[str, Any], volume_index: int = 0) -> str:
    """What 2D slices show: the real-unit values when the study has them (window/level
    and the hover readout then work in HU), else the 8-bit preview."""
    if not view.get("values"):
        return image_url(study_id, volume_index)
    if volume_index:
        return f"/api/v1/studies/{study_id}/volumes/{volume_index}/values.vti"
    return preview_url(study_id, "values.vti")


def view_data(study_id: int, meta: dict[str, Any]) -> dict[str, Any]:
    """What `assets/viewer.js` needs about a study: its preview grid, value units and
    windows, label table and frame of reference (the pane's `data-view` attribute)."""
    rgb = bool(meta.get("rgb"))
    values = "values_dtype" in meta and not rgb
    modality = str(meta.get("modality") or "")
    low, high = meta.get("default_window") or meta.get("window") or [0.0, 255.0]
    if not values:
        # The 8-bit preview is already windowed: its full range maps 1:1.
        low, high = 0.0, 255.0
    presets = [{"key": "default", "name": "Default", "window": [low, high]}]
    if values and meta.get("auto_window"):
        presets.append({"key": "auto", "name": "Auto", "window": list(meta["auto_window"])})
    if values and meta.get("value_range"):
        presets.append({"key": "full", "name": "Full range", "window": list(meta["value_range"])})
    if values and modality == "CT":
        presets += [
            {"key": p.key, "name": p.name, "window": [p.window.low, p.window.high]}
            for p in CT_PRESETS
        ]
    return {
        "study": study_id,
        "shape": [int(n) for n in meta["shape"][:3]],
        "spacing": [float(v) for v in meta["spacing_mm"]],
        "origin": [float(v) for v in meta["origin_mm"]],
        "rgb": rgb,
        "values": values,
        "units": str(meta.get("units") or ("HU" if values and modality == "CT" else "")),
        "invert": bool(meta.get("invert")),
        "window": [float(low), float(high)],
        "presets": presets,
        "frame": meta.get("frame_of_reference"),
        "step": [int(v) for v in meta.get("step", [1, 1, 1])],
        # A view needs two in-plane axes longer than one voxel (a single CT slice is axial only).
        "axes": [
            axis
            for axis, dim in AXIS_DIMS.items()
            if all(int(meta["shape"][d]) > 1 for d in range(3) if d != dim)
        ]
        or ["axial"],
        # Full-resolution slices exist for grey-level studies whose preview is strided.
        "fine": values and any(int(v) > 1 for v in meta.get("step", [1, 1, 1])),
        "labels": [
            {"value": lab["value"], "name": lab["name"], "color": list(lab["color"])}
            for lab in meta.get("labels", [])
        ],
        "segmentations": _segmentations(study_id, meta),
    }


def _rgb(color: str | list[int]) -> list[int]:
    """`"#rrggbb"` (as the catalog stores colours) or `[r, g, b]` -> `[r, g, b]`."""
    if isinstance(color, str):
        return [int(color[i : i + 2], 16) for i in (1, 3, 5)]
    return [int(c) for c in color]


def _segmentations(study_id: int, meta: dict[str, Any]) -> list[dict[str, Any]]:
    """The study's segmentations as the pane offers them: name, label preview URL, labels
    (with volumes); the first is the one `labels.vti` shows."""
    if not meta.get("labels"):
        return []
    found = meta.get("segmentations") or []
    if not found:
        return [
            {
                "id": None,
                "name": "Segmentation",
                "url": preview_url(study_id, "labels.vti"),
                "labels": [dict(lab, volume_ml=None) for lab in meta["labels"]],
            }
        ]
    return [
        {
            "id": seg["id"],
            "name": seg["name"],
            "url": (
                preview_url(study_id, "labels.vti")
                if i == 0
                else f"/api/v1/studies/{study_id}/segmentations/{seg['id']}/labels.vti"
            ),
            "labels": [
                {
                    "value": lab["value"],
                    "name": lab["name"],
                    "color": _rgb(lab["color"]),
                    "volume_ml": lab.get("volume_ml"),
                }
                for lab in seg["labels"]
            ],
        }
        for i, seg in enumerate(found)
    ]


def plane_points(view: dict[str, Any], axis: str, index: int) -> list[float]:
    """The four corners (RAS mm, flattened) of slice `index` on `axis` of the preview grid,
    as `assets/viewer.js` computes them when the slice moves."""
    dim = AXIS_DIMS[axis]
    lo = list(view["origin"])
    hi = [
        o + (n - 1) * sp
        for o, n, sp in zip(view["origin"], view["shape"], view["spacing"], strict=True)
    ]
    a, b = (d for d in range(3) if d != dim)
    at = view["origin"][dim] + index * view["spacing"][dim]
    corners = []
    for ua, ub in ((lo[a], lo[b]), (hi[a], lo[b]), (hi[a], hi[b]), (lo[a], hi[b])):
        point = [0.0, 0.0, 0.0]
        point[dim], point[a], point[b] = at, ua, ub
        corners += point
    return corners
