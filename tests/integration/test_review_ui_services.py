"""The service helpers behind the review panel and the case list: one decision call for
every button, the readers a lead may assign to, and the case list's assignment columns."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import update

from portal.db.models import ProjectMember, ReviewStatus, Study
from portal.db.session import Database
from portal.services import assignments, catalog, review, review_view
from portal.services.errors import Conflict, InvalidInput, PermissionDenied
from tests.integration.test_review_workflow import _seg_item, _who, trial  # noqa: F401


def test_decide_reads_while_open_then_transitions(db: Database, trial: int) -> None:  # noqa: F811
    ann, eve = _who(db, "ann"), _who(db, "eve")
    item = _seg_item(db, ann, trial)
    assert [lab["value"] for lab in item["labels"]]  # the segmentation's labels, for verdicts
    label = str(item["labels"][0]["value"])
    with db.session() as s, pytest.raises(InvalidInput, match="why"):
        review.decide(s, ann, item["id"], ReviewStatus.FLAGGED_FOR_EXPERT, " ", {}, 1)
    with db.session() as s:
        review.decide(
            s, ann, item["id"], ReviewStatus.FLAGGED_FOR_EXPERT, "leak", {label: "missing"}, 1
        )
    flagged = _seg_item(db, eve, trial)
    assert (flagged["state"], flagged["version"]) == ("flagged-for-expert", 2)
    assert flagged["reads"][0]["label_verdicts"] == {label: "missing"}
    # The reviewer cannot resolve; the expert with a stale version is told, not obeyed.
    with db.session() as s, pytest.raises(PermissionDenied):
        review.decide(s, ann, item["id"], ReviewStatus.APPROVED, "fine", None, 2)
    with db.session() as s, pytest.raises(Conflict, match="ann"):
        review.decide(s, eve, item["id"], ReviewStatus.NEEDS_EDIT, "redraw", None, 1)
    with db.session() as s, pytest.raises(InvalidInput, match="per-label"):
        review.decide(s, eve, item["id"], ReviewStatus.NEEDS_EDIT, "redraw", {label: "missing"}, 2)
    with db.session() as s:
        review.decide(s, eve, item["id"], ReviewStatus.NEEDS_EDIT, "redraw", {label: None}, 2)
    done = _seg_item(db, ann, trial)
    assert (done["state"], done["version"]) == ("needs-edit", 3)
    assert [(h["action"], h["from"], h["to"], h["reason"]) for h in done["history"]] == [
        ("read", "unreviewed", "flagged-for-expert", "leak"),
        ("transition", "flagged-for-expert", "needs-edit", "redraw"),
    ]
    with db.session() as s:
        assert s.get(Study, trial).review_status == "needs-edit"  # type: ignore[union-attr]
    image = next(i for i in review_items(db, ann, trial) if i["key"] == "image")
    assert image["labels"] == []


def review_items(db: Database, who, study_id: int) -> list[dict]:  # type: ignore[no-untyped-def]
    with db.session() as s:
        return review_view.study_review(s, who, study_id)["items"]


def test_assignable_readers_are_the_leads_readers(db: Database, trial: int) -> None:  # noqa: F811
    lead, ann, eve = _who(db, "lead"), _who(db, "ann"), _who(db, "eve")
    with db.session() as s:
        names = [r["username"] for r in assignments.assignable_readers(s, lead, [trial, trial])]
        # readers of the project only: not the viewer, not the outsider
        assert names == ["ann", "bob", "eve"]
        assert assignments.assignable_readers(s, lead, []) == []
        assert assignments.assignable_readers(s, lead, [trial + 999]) == []
        assert assignments.assignable_readers(s, ann, [trial]) == []  # not the lead
        assert assignments.can_assign_any(s, lead) and not assignments.can_assign_any(s, ann)
        s.execute(
            update(ProjectMember).where(ProjectMember.user_id == eve.user_id).values(role="lead")
        )
    with db.session() as s:
        assert assignments.can_assign_any(s, eve)
        assert [r["username"] for r in assignments.assignable_readers(s, eve, [trial])] == [
            "ann",
            "bob",
            "eve",
        ]


def test_case_list_rows_show_open_assignments(db: Database, trial: int) -> None:  # noqa: F811
    lead, ann = _who(db, "lead"), _who(db, "ann")
    with db.session() as s:
        [row] = catalog.list_studies(s, lead, catalog.StudyQuery()).items
        assert (row["assignees"], row["due_at"]) == ([], None)
        ann_id = next(
            r["id"]
            for r in assignments.assignable_readers(s, lead, [trial])
            if r["username"] == "ann"
        )
        assignments.assign(s, lead, [trial], ann_id, datetime(2030, 5, 1, 23, 59, tzinfo=UTC))
    with db.session() as s:
        [row] = catalog.list_studies(s, ann, catalog.StudyQuery(queue=catalog.Queue.MINE)).items
        assert row["assignees"] == ["ann"]
        assert row["due_at"].startswith("2030-05-01")
        assignments.unassign(s, lead, trial, ann_id)
    with db.session() as s:
        [row] = catalog.list_studies(s, lead, catalog.StudyQuery()).items
        assert row["assignees"] == []
