"""Plain-function parts of the UI: URL parsing, grid shape, case-list request mapping."""

from __future__ import annotations

from typing import Any

from portal.services.catalog import Queue, SortKey
from portal.ui.callbacks.caselist import query_from_request
from portal.ui.components.pane import missing_pane, pane
from portal.ui.components.review_panel import actions_class, markers, reads_text, selected_item
from portal.ui.ids import Pane, pane_id
from portal.ui.pages.review import grid_columns, layout, pager, parse_study_ids


def test_parse_study_ids_keeps_order_and_drops_junk() -> None:
    assert parse_study_ids("3, 5,x,3,,-1,9") == [3, 5, 9]
    assert parse_study_ids(None) == []
    assert parse_study_ids(",".join(str(i) for i in range(1000)), limit=20) == list(range(20))


def test_grid_is_at_most_four_wide() -> None:
    assert [grid_columns(n) for n in (1, 2, 4, 5, 9, 10, 12)] == [1, 2, 2, 3, 3, 4, 4]


def test_pager_links_pages_of_the_same_selection() -> None:
    html = str(pager(list(range(1, 26)), page=2, per_page=12).to_plotly_json())
    assert "page=1" in html and "page=3" in html and "Page 2 of 3" in html


def test_grid_request_maps_to_a_catalog_query() -> None:
    request = {"startRow": 50, "endRow": 75, "sortModel": [{"colId": "project", "sort": "desc"}]}
    query = query_from_request(request, {"search": "mni", "modality": "MR", "status": None})
    assert (query.offset, query.limit) == (50, 25)
    assert query.sort is SortKey.PROJECT and query.descending
    assert query.search == "mni" and query.modality == "MR" and query.status == ""
    unknown = query_from_request({"sortModel": [{"colId": "thumb", "sort": "asc"}]}, {})
    assert unknown.sort is SortKey.ID and unknown.limit == 25


def test_pane_carries_study_id_and_one_view() -> None:
    detail = {
        "id": 7,
        "name": "case",
        "modality": "MR",
        "dimensions": "10×10×4",
        "orientation": "RAS",
        "review_status": "unreviewed",
        "review_reason": "",
    }
    meta = {
        "shape": [10, 10, 4],
        "spacing_mm": [1, 1, 1],
        "origin_mm": [0, 0, 0],
        "labels": [{"value": 1, "name": "a", "color": [1, 2, 3]}],
    }
    tree = pane(detail, meta, _review()).to_plotly_json()
    assert tree["props"]["data-study-id"] == "7"
    text = str(tree)
    assert text.count("View(") == 1
    assert "/api/v1/studies/7/preview/image.vti" in text
    assert "/api/v1/studies/7/preview/labels.vti" in text
    assert pane_id(Pane.SLIDER, 7) == {"type": "pane-slider", "study": 7}
    assert "not available" in str(missing_pane(8).to_plotly_json())
    # the review panel starts on the segmentation's item, with its version to send back
    assert "{'item': 12, 'version': 3}" in text
    assert "Flagged for expert" in text


def _find(tree: Any, component_id: dict[str, Any]) -> dict[str, Any]:
    """The props of the component with `component_id` in a `to_plotly_json` tree."""
    if isinstance(tree, dict):
        props = tree.get("props", {})
        if props.get("id") == component_id:
            return dict(props)
        for child in (props.get("children"),) if "props" in tree else tree.values():
            try:
                return _find(child, component_id)
            except LookupError:
                pass
    elif isinstance(tree, list | tuple):
        for child in tree:
            try:
                return _find(child, component_id)
            except LookupError:
                pass
    elif hasattr(tree, "to_plotly_json"):
        return _find(tree.to_plotly_json(), component_id)
    raise LookupError(component_id)


def test_pane_opens_on_a_requested_slice_or_in_3d() -> None:
    detail = {
        "id": 7,
        "name": "case",
        "modality": "MR",
        "dimensions": "10×10×40",
        "orientation": "RAS",
    }
    meta = {"shape": [10, 10, 40], "spacing_mm": [1, 1, 1], "origin_mm": [0, 0, 0], "labels": []}
    plain = pane(detail, meta, _review()).to_plotly_json()
    assert _find(plain, pane_id(Pane.SLIDER, 7))["value"] == 20
    on_slice = pane(detail, meta, _review(), k_slice=33).to_plotly_json()
    assert _find(on_slice, pane_id(Pane.SLIDER, 7))["value"] == 33
    assert _find(on_slice, pane_id(Pane.SLICE_TEXT, 7))["children"] == "34/40"
    assert _find(on_slice, pane_id(Pane.IMAGE_SLICE, 7))["kSlice"] == 33
    clamped = pane(detail, meta, _review(), k_slice=99).to_plotly_json()
    assert _find(clamped, pane_id(Pane.SLIDER, 7))["value"] == 39
    three_d = pane(detail, meta, _review(), surfaces=[]).to_plotly_json()
    assert three_d["props"]["className"] == "pane mode-3d"
    assert _find(three_d, pane_id(Pane.MODE, 7))["value"] == "3d"
    # 3D: the volume rendering and the current 2D slice plane as a frame (no image slices).
    assert "VolumeRepresentation" in str(three_d) and "PolyData(" in str(three_d)
    assert "SliceRepresentation(" not in str(three_d)


def test_requested_layout_fixes_the_grid_and_pages_keep_it() -> None:
    cells = [(i, None) for i in range(1, 5)]
    page = layout(list(range(1, 10)), 1, 4, cells, (2, 2), {"layout": "2x2", "slice_mm": "5.0"})
    text = str(page.to_plotly_json())
    assert "repeat(2, minmax(0, 1fr))" in text and "data-layout='2x2'" in text
    assert "layout=2x2" in text and "slice_mm=5.0" in text and "page=2" in text


def test_expert_queue_is_oldest_flag_first_unless_sorted() -> None:
    query = query_from_request({}, {"queue": "expert"})
    assert query.queue is Queue.EXPERT
    assert query.sort is SortKey.REVIEWED and not query.descending
    sorted_by_name = query_from_request(
        {"sortModel": [{"colId": "name", "sort": "desc"}]}, {"queue": "expert"}
    )
    assert sorted_by_name.sort is SortKey.NAME
    assert query_from_request({}, {"queue": "bogus"}).queue is Queue.ALL


def _item(**changes: Any) -> dict[str, Any]:
    item = {
        "id": 12,
        "key": "seg:4",
        "name": "labels",
        "labels": [{"value": 1, "name": "a", "color": [1, 2, 3]}],
        "state": "flagged-for-expert",
        "version": 3,
        "reads_required": 1,
        "reads_done": 1,
        "my_read_done": True,
        "reads": [],
        "history": [],
        "comments": [
            {
                "id": 5,
                "by": "ann",
                "at": "2026-01-01T10:00:00+00:00",
                "body": "here",
                "world_mm": [1.0, -2.5, 30.0],
                "slice_index": 9,
                "axis": "axial",
                "label_value": None,
                "resolved": False,
                "resolved_by": None,
                "replies": [],
            },
            {
                "id": 6,
                "by": "ann",
                "at": "2026-01-01T10:00:00+00:00",
                "body": "done",
                "world_mm": [0, 0, 0],
                "slice_index": 1,
                "axis": "axial",
                "label_value": None,
                "resolved": True,
                "resolved_by": "eve",
                "replies": [],
            },
        ],
    }
    item.update(changes)
    return item


def _review() -> dict[str, Any]:
    image = _item(id=11, key="image", name="image quality", labels=[], comments=[], version=1)
    return {
        "items": [image, _item()],
        "can": {"read": True, "resolve": False, "assign": False},
    }


def test_review_panel_helpers() -> None:
    review = _review()
    assert selected_item(review, None)["id"] == 12  # the segmentation, as the study status
    assert selected_item(review, 11)["key"] == "image"
    # a reviewer on a flagged item: no resolve buttons (the CSS reads these classes)
    classes = actions_class(_item(), review["can"]).split()
    assert "state-flagged-for-expert" in classes and "can-resolve" not in classes
    assert reads_text(_item()) == ""
    assert reads_text(_item(reads_required=3, reads_done=2)) == "2 of 3 reads in · yours is in"
    # only open threads anchored at a point get a marker
    [dot] = [m.to_plotly_json()["props"] for m in markers(_item())]
    assert dot["data-world"] == "1.00,-2.50,30.00" and dot["data-k"] == "9"
