"""Keyset paging of the case list: walking `next_cursor` visits every study exactly once,
for every sort key in both directions, even when many studies share a sort value (and
when the sort value is NULL), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from flask import Flask

from portal.app import create_app
from portal.config import Settings
from portal.db.models import Role, Study, User
from portal.db.session import Database
from portal.services import catalog
from portal.services.auth import Principal
from portal.services.errors import InvalidInput
from tests.conftest import login, make_user

COUNT = 23


def _world(db: Database) -> Principal:
    """COUNT studies in two projects whose sort values repeat (and are NULL for some)."""
    make_user(db, "root", Role.ADMIN)
    stamps = [datetime(2026, 1, d, tzinfo=UTC) for d in (1, 2, 3)]
    with db.session() as s:
        projects = [catalog.ensure_project(s, "alpha"), catalog.ensure_project(s, "beta")]
        s.flush()
        for n in range(COUNT):
            s.add(
                Study(
                    uid=f"uid{n:03d}",
                    project_id=projects[n % 2].id,
                    name=f"case {n % 4}",
                    patient_name=["", "Doe^J", "Roe^R"][n % 3],
                    modality=["MR", "CT"][n % 2],
                    dim_i=2,
                    dim_j=2,
                    dim_k=2,
                    spacing_mm=[1.0, 1.0, 1.0],
                    affine_ras=[[1.0, 0, 0, 0], [0, 1.0, 0, 0], [0, 0, 1.0, 0], [0, 0, 0, 1.0]],
                    orientation="RAS",
                    dtype="int16",
                    source_hash=f"h{n}",
                    segmentation_count=n % 3,
                    review_status=["unreviewed", "approved"][n % 2],
                    reviewed_at=None if n % 3 == 0 else stamps[n % 2],
                    created_at=stamps[n % 3],
                )
            )
        s.flush()
        user = s.query(User).filter_by(username="root").one()
        return Principal.of(user)


@pytest.mark.parametrize("descending", [False, True])
@pytest.mark.parametrize("sort", list(catalog.SortKey))
def test_cursor_walk_visits_every_study_once(
    db: Database, sort: catalog.SortKey, descending: bool
) -> None:
    who = _world(db)
    with db.session() as s:
        whole = catalog.list_studies(
            s, who, catalog.StudyQuery(sort=sort, descending=descending, limit=100)
        )
    assert whole.total == COUNT and whole.next_cursor is None
    seen: list[int] = []
    after = ""
    pages = 0
    while True:
        with db.session() as s:
            page = catalog.list_studies(
                s, who, catalog.StudyQuery(sort=sort, descending=descending, limit=4, after=after)
            )
        assert page.total == COUNT
        seen += [item["id"] for item in page.items]
        pages += 1
        if page.next_cursor is None:
            break
        after = page.next_cursor
    assert pages == -(-COUNT // 4)
    assert len(seen) == len(set(seen)) == COUNT
    # The same order as one big page: the cursor continues the sort, it does not re-sort.
    assert seen == [item["id"] for item in whole.items]


def test_cursor_is_tied_to_its_order(db: Database) -> None:
    who = _world(db)
    with db.session() as s:
        page = catalog.list_studies(s, who, catalog.StudyQuery(sort=catalog.SortKey.NAME, limit=5))
        assert page.next_cursor
        for query in (
            catalog.StudyQuery(sort=catalog.SortKey.ID, after=page.next_cursor),
            catalog.StudyQuery(sort=catalog.SortKey.NAME, descending=True, after=page.next_cursor),
            catalog.StudyQuery(sort=catalog.SortKey.NAME, after="not-a-cursor"),
            catalog.StudyQuery(sort=catalog.SortKey.NAME, after=page.next_cursor, offset=5),
        ):
            with pytest.raises(InvalidInput):
                catalog.list_studies(s, who, query)


def test_api_sorts_and_pages_by_cursor(settings: Settings, db: Database) -> None:
    _world(db)
    app: Flask = create_app(settings)
    client = app.test_client()
    login(client, "root")
    seen: list[str] = []
    url = "/api/v1/studies?sort=created_at&desc=true&limit=5"
    while url:
        body = client.get(url).get_json()
        seen += [item["created_at"] for item in body["items"]]
        cursor = body["next_cursor"]
        url = f"/api/v1/studies?sort=created_at&desc=true&limit=5&after={cursor}" if cursor else ""
    assert len(seen) == COUNT and seen == sorted(seen, reverse=True)
    wrong = client.get("/api/v1/studies?sort=nope")
    assert wrong.status_code == 400 and wrong.get_json()["code"] == "invalid"
    bad = client.get("/api/v1/studies?after=zzz")
    assert bad.status_code == 400 and bad.get_json()["code"] == "invalid"
    app.extensions["portal"].db.dispose()


@pytest.mark.parametrize("descending", [False, True])
def test_review_selection_follows_the_case_list_order(db: Database, descending: bool) -> None:
    """The grid opens a selection in the case list's sort, whatever order it was ticked in;
    ids that are not (or no longer) there keep their place at the end."""
    who = _world(db)
    with db.session() as s:
        rows = catalog.list_studies(s, who, catalog.StudyQuery(limit=100)).items
        picked = [rows[n]["id"] for n in (17, 3, 11, 0, 8, 20, 5)] + [9999]
        ordered = catalog.in_case_list_order(s, who, picked, catalog.SortKey.NAME, descending)
    by_id = {row["id"]: row for row in rows}
    # Names repeat ("case 0".."case 3"); the id breaks ties in the sort's direction.
    expected = sorted(picked[:-1], key=lambda i: (by_id[i]["name"], i), reverse=descending)
    assert ordered == [*expected, 9999]
