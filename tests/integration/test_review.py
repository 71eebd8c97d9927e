from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from portal.config import Settings
from portal.db.models import ReviewEvent, ReviewStatus, Role, User
from portal.db.session import Database
from portal.services import catalog, review
from portal.services.auth import Principal
from portal.services.errors import InvalidInput, NotFound
from portal.services.importer import import_paths
from tests.conftest import make_user
from tests.integration.test_importer import _case, _import_settings


def _principal(db: Database, name: str) -> Principal:
    with db.session() as s:
        user = s.scalar(select(User).where(User.username == name))
        assert user is not None
        return Principal.of(user)


def test_flags_are_stored_with_who_and_when_and_listed(
    db: Database, settings: Settings, tmp_path: Path
) -> None:
    [study_id] = import_paths(db, _import_settings(settings), "trial", [_case(tmp_path)]).imported
    make_user(db, "rita", Role.REVIEWER, ["trial"])
    make_user(db, "otto", Role.REVIEWER)
    rita, otto = _principal(db, "rita"), _principal(db, "otto")
    with db.session() as s, pytest.raises(InvalidInput, match="why"):
        review.set_flag(s, rita, study_id, ReviewStatus.FLAGGED_FOR_EXPERT, "  ")
    with db.session() as s, pytest.raises(NotFound):
        review.set_flag(s, otto, study_id, ReviewStatus.APPROVED)
    with db.session() as s:
        review.set_flag(s, rita, study_id, ReviewStatus.FLAGGED_FOR_EXPERT, "label leaks")
    with db.session() as s:
        page = catalog.list_studies(s, rita, catalog.StudyQuery(status="flagged-for-expert"))
        assert page.total == 1
        row = page.items[0]
        assert row["review_reason"] == "label leaks" and row["reviewed_by"] == "rita"
        events = s.scalars(select(ReviewEvent)).all()
        assert [(e.status, e.user_id) for e in events] == [("flagged-for-expert", rita.user_id)]
        assert catalog.list_studies(s, otto, catalog.StudyQuery()).total == 0


def test_case_list_search_sort_and_paging(db: Database, settings: Settings, tmp_path: Path) -> None:
    for name in ["alpha", "beta"]:
        folder = tmp_path / name
        image = _case(folder)
        image.rename(folder / f"{name}.nii.gz")
        (folder / "case-label.nii.gz").rename(folder / f"{name}-label.nii.gz")
    report = import_paths(db, _import_settings(settings), "p", [tmp_path / "alpha"])
    report2 = import_paths(db, _import_settings(settings), "q", [tmp_path / "beta"])
    assert report.imported and report2.imported
    make_user(db, "root", Role.ADMIN)
    admin = _principal(db, "root")
    with db.session() as s:
        q = catalog.StudyQuery
        assert catalog.list_studies(s, admin, q(search="ALP")).total == 1
        assert catalog.list_studies(s, admin, q(search="%")).total == 0
        assert catalog.list_studies(s, admin, q(project="q")).items[0]["name"] == "beta"
        names = [
            r["name"]
            for r in catalog.list_studies(
                s, admin, q(sort=catalog.SortKey.NAME, descending=True)
            ).items
        ]
        assert names == ["beta", "alpha"]
        page2 = catalog.list_studies(s, admin, q(sort=catalog.SortKey.NAME, offset=1, limit=1))
        assert page2.total == 2 and [r["name"] for r in page2.items] == ["beta"]
        with pytest.raises(InvalidInput):
            catalog.list_studies(s, admin, q(status="bogus"))
