"""The audit page's plain parts: filter fields to query parameters, keyset paging, table."""

from __future__ import annotations

from portal.ui.callbacks.audit import filter_params, move
from portal.ui.ids import Audit
from portal.ui.pages.audit import table


def test_filter_fields_become_query_parameters() -> None:
    assert filter_params(None, None, "", None, None, "  ") == {}
    assert filter_params(
        "2026-11-01T00:00:00", "2026-11-29", " rev ", "study.view", "ok", "ab"
    ) == {
        "from": "2026-11-01",
        "to": "2026-11-29",
        "user": "rev",
        "action": "study.view",
        "outcome": "ok",
        "study_uid": "ab",
    }


def test_paging_pushes_older_pops_newer_and_filters_reset() -> None:
    assert move(None, None) == [None]
    assert move({"stack": [None], "next": 40}, Audit.OLDER) == [None, 40]
    assert move({"stack": [None, 40], "next": None}, Audit.OLDER) == [None, 40]  # last page
    assert move({"stack": [None, 40, 20], "next": 5}, Audit.NEWER) == [None, 40]
    assert move({"stack": [None], "next": 40}, Audit.NEWER) == [None]
    assert move({"stack": [None, 40], "next": 20}, Audit.ACTION) == [None]


def test_table_rows_carry_entry_ids_and_utc_times() -> None:
    item = {
        "id": 7,
        "at": "2026-11-29T13:05:09+00:00",
        "user_id": None,
        "username": "",
        "role": "anonymous",
        "action": "auth.login",
        "target": "",
        "study_uid": "",
        "outcome": "failed",
        "address": "10.0.0.1",
        "detail": "throttled",
    }
    text = str(table([item]).to_plotly_json())
    assert "data-entry-id='7'" in text and "2026-11-29 13:05:09" in text
    assert "audit-failed" in text
    assert "No entries match" in str(table([]).to_plotly_json())
