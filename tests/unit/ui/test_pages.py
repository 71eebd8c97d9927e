"""Plain-function parts of the UI: URL parsing, grid shape, case-list request mapping."""

from __future__ import annotations

from portal.services.catalog import SortKey
from portal.ui.callbacks.caselist import query_from_request
from portal.ui.components.pane import missing_pane, pane
from portal.ui.ids import Pane, pane_id
from portal.ui.pages.review import grid_columns, pager, parse_study_ids


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
    meta = {"shape": [10, 10, 4], "labels": [{"value": 1, "name": "a", "color": [1, 2, 3]}]}
    tree = pane(detail, meta).to_plotly_json()
    assert tree["props"]["data-study-id"] == "7"
    text = str(tree)
    assert text.count("View(") == 1
    assert "/api/v1/studies/7/preview/image.vti" in text
    assert "/api/v1/studies/7/preview/labels.vti" in text
    assert pane_id(Pane.SLIDER, 7) == {"type": "pane-slider", "study": 7}
    assert "not available" in str(missing_pane(8).to_plotly_json())
