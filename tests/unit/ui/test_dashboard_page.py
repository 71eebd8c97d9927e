"""Plain-function parts of the reports UI: export links, dashboard figures, report link."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from portal.ui.components.pane import pane
from portal.ui.pages import dashboard
from portal.ui.pages.caselist import export_href
from tests.unit.ui.test_pages import _review

DATA = {
    "studies": 2,
    "items": 4,
    "states": {
        "unreviewed": 1,
        "in-review": 0,
        "approved": 2,
        "needs-edit": 0,
        "flagged-for-expert": 0,
        "rejected": 1,
    },
    "readers": {"ann": {"approved": 2}, "bob": {"approved": 1, "needs-edit": 1}},
    "throughput": [
        {"day": "2026-11-27", "reads": 3, "decisions": 1},
        {"day": "2026-11-28", "reads": 1, "decisions": 2},
    ],
    "agreement": [1.0, 0.0],
    "dice": [],
}


def test_export_links_carry_the_case_list_filter() -> None:
    assert export_href("csv", {}) == "/api/v1/exports/review.csv"
    href = export_href(
        "xlsx", {"search": "a&b c", "modality": None, "status": "approved", "project": "trial"}
    )
    parts = urlsplit(href)
    assert parts.path == "/api/v1/exports/review.xlsx"
    assert parse_qs(parts.query) == {"q": ["a&b c"], "status": ["approved"], "project": ["trial"]}


def test_dashboard_figures_plot_the_service_data() -> None:
    states = dashboard.states_figure(DATA)
    assert list(states.data[0].x) == list(DATA["states"])
    assert list(states.data[0].y) == [1, 0, 2, 0, 0, 1]
    readers = dashboard.readers_figure(DATA)
    assert readers.layout.barmode == "stack"
    assert {t.name: list(t.y) for t in readers.data} == {"approved": [2, 1], "needs-edit": [0, 1]}
    throughput = dashboard.throughput_figure(DATA)
    assert {t.name: list(t.y) for t in throughput.data} == {"reads": [3, 1], "decisions": [1, 2]}
    agreement = dashboard.agreement_figure(DATA)
    assert [t.name for t in agreement.data] == ["verdict agreement"]
    assert list(agreement.data[0].x) == [1.0, 0.0]
    with_dice = dashboard.agreement_figure({**DATA, "dice": [0.8]})
    assert [t.name for t in with_dice.data] == ["verdict agreement", "Dice"]
    assert dashboard.summary(DATA) == "2 studies · 4 review items · 3 decided · 4 reads"
    assert "not a member" in str(dashboard.layout([]).to_plotly_json())
    empty = {**DATA, "readers": {}, "throughput": [], "agreement": []}
    for figure in (
        dashboard.readers_figure(empty),
        dashboard.throughput_figure(empty),
        dashboard.agreement_figure(empty),
    ):
        assert "yet" in figure.layout.annotations[0].text
    assert not states.layout.annotations


def test_pane_links_the_printable_report() -> None:
    detail = {
        "id": 7,
        "name": "case",
        "modality": "MR",
        "dimensions": "10×10×4",
        "orientation": "RAS",
        "review_status": "unreviewed",
        "review_reason": "",
    }
    text = str(
        pane(
            detail,
            {"shape": [10, 10, 4], "spacing_mm": [1, 1, 1], "origin_mm": [0, 0, 0], "labels": []},
            _review(),
        ).to_plotly_json()
    )
    assert "/reports/study/7" in text and "_blank" in text
