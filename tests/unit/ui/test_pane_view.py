"""What a pane hands the browser about its study (`view_data`) and the 3D plane frame."""

from __future__ import annotations

from typing import Any

import pytest

from portal.imaging.windowing import CT_PRESETS
from portal.ui.components.pane import _window_property
from portal.ui.components.pane_view import plane_points, view_data


def _meta(**extra: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "shape": [171, 171, 100],
        "spacing_mm": [2.1, 2.1, 1.0],
        "origin_mm": [-180.0, -200.0, -50.0],
        "step": [3, 3, 1],
        "rgb": False,
        "window": [-160.0, 240.0],
        "labels": [{"value": 1, "name": "liver", "color": [200, 100, 50]}],
    }
    meta.update(extra)
    return meta


def _values(**extra: Any) -> dict[str, Any]:
    keys: dict[str, Any] = {
        "modality": "CT",
        "units": "HU",
        "value_range": [-1024.0, 3071.0],
        "auto_window": [-900.0, 1200.0],
        "default_window": [-160.0, 240.0],
        "invert": False,
        "frame_of_reference": "1.2.3",
        "values_dtype": "int16",
    }
    keys.update(extra)
    return _meta(**keys)


def test_ct_with_values_gets_real_unit_presets_and_full_resolution_slices() -> None:
    view = view_data(4, _values())
    assert view["values"] and view["units"] == "HU" and view["fine"]
    assert view["window"] == [-160.0, 240.0]
    keys = [p["key"] for p in view["presets"]]
    assert keys[:3] == ["default", "auto", "full"]
    assert keys[3:] == [p.key for p in CT_PRESETS]
    bone = next(p for p in view["presets"] if p["key"] == "bone")
    assert bone["window"] == [400 - 900, 400 + 900]
    assert view["frame"] == "1.2.3" and view["step"] == [3, 3, 1]
    assert _window_property(view) == {"colorWindow": 400.0, "colorLevel": 40.0}


def test_monochrome1_inverts_the_ramp() -> None:
    view = view_data(4, _values(modality="CR", units="", invert=True))
    assert _window_property(view)["colorWindow"] < 0
    assert not any(p["key"] == "brain" for p in view["presets"])  # CT presets only for CT


def test_without_values_the_8_bit_preview_maps_one_to_one() -> None:
    view = view_data(4, _meta())
    assert not view["values"] and not view["fine"]
    assert view["window"] == [0.0, 255.0] and [p["key"] for p in view["presets"]] == ["default"]


def test_unstrided_preview_needs_no_full_resolution_slice() -> None:
    assert not view_data(4, _values(step=[1, 1, 1]))["fine"]


def test_segmentations_take_catalog_colours_and_their_own_preview_urls() -> None:
    segs = [
        {"id": 11, "name": "AI", "labels": [{"value": 1, "name": "liver", "color": "#c86432"}]},
        {"id": 12, "name": "reader", "labels": [{"value": 2, "name": "les", "color": "#00ff00"}]},
    ]
    view = view_data(4, _values(segmentations=segs))
    first, second = view["segmentations"]
    assert first["url"] == "/api/v1/studies/4/preview/labels.vti"
    assert second["url"] == "/api/v1/studies/4/segmentations/12/labels.vti"
    assert first["labels"][0]["color"] == [200, 100, 50]
    assert second["labels"][0]["color"] == [0, 255, 0]


@pytest.mark.parametrize(
    ("axis", "dim", "index"), [("axial", 2, 10), ("coronal", 1, 5), ("sagittal", 0, 0)]
)
def test_plane_frame_lies_on_the_slice_and_spans_the_grid(axis: str, dim: int, index: int) -> None:
    view = view_data(4, _values())
    corners = plane_points(view, axis, index)
    points = [corners[i : i + 3] for i in range(0, 12, 3)]
    at = view["origin"][dim] + index * view["spacing"][dim]
    assert all(p[dim] == pytest.approx(at) for p in points)
    for d in range(3):
        if d == dim:
            continue
        high = view["origin"][d] + (view["shape"][d] - 1) * view["spacing"][d]
        assert {round(p[d], 6) for p in points} == {round(view["origin"][d], 6), round(high, 6)}


def test_a_single_slice_offers_only_the_axial_view() -> None:
    assert view_data(4, _values(shape=[171, 171, 1]))["axes"] == ["axial"]
    assert sorted(view_data(4, _values())["axes"]) == ["axial", "coronal", "sagittal"]
