"""The review workflow through the services: reads, blinding, agreement, conflicts,
expert resolution, comments, assignments and the saved queues."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from sqlalchemy import select, update

from portal.config import Settings
from portal.db.models import (
    AuditEntry,
    Project,
    ReviewEvent,
    ReviewStatus,
    Role,
    Segmentation,
    Study,
    User,
)
from portal.db.session import Database
from portal.services import assignments, catalog, comments, review, review_view
from portal.services.auth import Principal
from portal.services.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from portal.services.importer import import_paths
from portal.services.segmentations import dice, label_map
from tests.conftest import make_user
from tests.integration.test_importer import _case, _import_settings


def _who(db: Database, name: str) -> Principal:
    with db.session() as s:
        user = s.scalar(select(User).where(User.username == name))
        assert user is not None
        return Principal.of(user)


@pytest.fixture()
def trial(db: Database, settings: Settings, tmp_path: Path) -> int:
    [study_id] = import_paths(db, _import_settings(settings), "trial", [_case(tmp_path)]).imported
    make_user(db, "lead", Role.ADMIN)  # admins lead every project
    make_user(db, "ann", Role.REVIEWER, ["trial"])
    make_user(db, "bob", Role.REVIEWER, ["trial"])
    make_user(db, "eve", Role.EXPERT, ["trial"])
    make_user(db, "vic", Role.VIEWER, ["trial"])
    make_user(db, "out", Role.REVIEWER)
    return study_id


def _seg_item(db: Database, who: Principal, study_id: int) -> dict:
    with db.session() as s:
        data = review_view.study_review(s, who, study_id)
    # the first segmentation's item (the Dice test adds readers' edits after it)
    return next(i for i in data["items"] if i["key"].startswith("seg:"))


def test_import_creates_items_and_single_read_decides(db: Database, trial: int) -> None:
    ann = _who(db, "ann")
    with db.session() as s:
        data = review_view.study_review(s, ann, trial)
    assert [i["key"].split(":")[0] for i in data["items"]] == ["image", "seg"]
    item = _seg_item(db, ann, trial)
    assert (item["state"], item["version"], item["reads_required"]) == ("unreviewed", 1, 1)
    with db.session() as s:
        review.submit_read(
            s, ann, item["id"], ReviewStatus.NEEDS_EDIT, "leaks", {"2": "over-segmented"}, 1
        )
    after = _seg_item(db, ann, trial)
    assert (after["state"], after["version"]) == ("needs-edit", 2)
    assert after["reads"][0]["label_verdicts"] == {"2": "over-segmented"}
    with db.session() as s:
        study = s.get(Study, trial)
        assert study.review_status == "needs-edit"
        assert catalog.list_studies(s, ann, catalog.StudyQuery(status="needs-edit")).total == 1


def test_stale_version_is_refused_and_nothing_is_lost(db: Database, trial: int) -> None:
    ann, bob = _who(db, "ann"), _who(db, "bob")
    item = _seg_item(db, ann, trial)
    with db.session() as s:
        review.submit_read(s, ann, item["id"], ReviewStatus.FLAGGED_FOR_EXPERT, "edge", None, 1)
    # bob saw version 1 and escalates from there: he is told, and ann's flag stays
    with db.session() as s, pytest.raises(Conflict, match="ann"):
        review.transition(s, bob, item["id"], ReviewStatus.FLAGGED_FOR_EXPERT, "me too", 1)
    with db.session() as s:
        events = s.scalars(select(ReviewEvent).where(ReviewEvent.item_id == item["id"])).all()
        assert [(e.action, e.user_id) for e in events] == [("read", ann.user_id)]


def test_blind_double_reads_disagree_and_expert_resolves(db: Database, trial: int) -> None:
    with db.session() as s:
        s.execute(update(Project).values(required_reads=2))
    ann, bob, eve, vic = (_who(db, n) for n in ("ann", "bob", "eve", "vic"))
    item = _seg_item(db, ann, trial)
    with db.session() as s:
        review.submit_read(s, ann, item["id"], ReviewStatus.APPROVED, "fine", None, 1)
    seen_by_bob = _seg_item(db, bob, trial)
    assert seen_by_bob["state"] == "in-review" and seen_by_bob["reads_done"] == 1
    assert seen_by_bob["reads"] == [] and seen_by_bob["agreement"] is None
    assert all(h["to"] == "hidden" for h in seen_by_bob["history"] if h["action"] == "read")
    assert _seg_item(db, eve, trial)["reads"][0]["verdict"] == "approved"  # experts see
    with db.session() as s, pytest.raises(PermissionDenied):
        review.submit_read(s, vic, item["id"], ReviewStatus.APPROVED, "", None, 2)
    with db.session() as s, pytest.raises(InvalidInput, match="already"):
        review.submit_read(s, ann, item["id"], ReviewStatus.APPROVED, "", None, 2)
    with db.session() as s:
        review.submit_read(s, bob, item["id"], ReviewStatus.NEEDS_EDIT, "hole", None, 2)
    done = _seg_item(db, bob, trial)
    assert done["state"] == "flagged-for-expert"
    assert done["agreement"]["verdict_agreement"] == 0.0
    assert "readers disagree" in done["history"][-1]["reason"]
    with db.session() as s:
        queue = catalog.list_studies(s, eve, catalog.StudyQuery(queue=catalog.Queue.EXPERT))
        assert [r["id"] for r in queue.items] == [trial]
    with db.session() as s, pytest.raises(PermissionDenied):
        review.transition(s, bob, item["id"], ReviewStatus.APPROVED, "ok", done["version"])
    with db.session() as s, pytest.raises(InvalidInput, match="note"):
        review.transition(s, eve, item["id"], ReviewStatus.REJECTED, "", done["version"])
    with db.session() as s:
        review.transition(s, eve, item["id"], ReviewStatus.REJECTED, "unusable", done["version"])
    final = _seg_item(db, ann, trial)
    assert final["state"] == "rejected"
    assert [h["action"] for h in final["history"]] == ["read", "read", "transition", "transition"]
    # reopening starts a new round of reads
    with db.session() as s:
        review.transition(s, eve, item["id"], ReviewStatus.IN_REVIEW, "new edit", final["version"])
    reopened = _seg_item(db, ann, trial)
    assert (reopened["state"], reopened["round"], reopened["reads_done"]) == ("in-review", 2, 0)


def test_comments_thread_with_anchor_and_resolve(db: Database, trial: int) -> None:
    ann, bob, vic, out = (_who(db, n) for n in ("ann", "bob", "vic", "out"))
    item = _seg_item(db, ann, trial)
    anchor = comments.Anchor(world_mm=(10.5, -3.0, 22.0), slice_index=40, label_value=2)
    with db.session() as s:
        first = comments.add_comment(s, ann, item["id"], "leak here?", anchor).id
    with db.session() as s:
        comments.add_comment(s, bob, item["id"], "agreed", parent_id=first)
    with db.session() as s, pytest.raises(PermissionDenied):
        comments.add_comment(s, vic, item["id"], "hi")
    with db.session() as s, pytest.raises(NotFound):
        comments.add_comment(s, out, item["id"], "hi")
    with db.session() as s, pytest.raises(PermissionDenied):
        comments.resolve_comment(s, bob, first)
    with db.session() as s:
        comments.resolve_comment(s, ann, first)
    [thread] = _seg_item(db, bob, trial)["comments"]
    assert thread["world_mm"] == [10.5, -3.0, 22.0] and thread["label_value"] == 2
    assert thread["resolved"] and [r["body"] for r in thread["replies"]] == ["agreed"]


def test_assignment_queues_and_reassignment(db: Database, trial: int) -> None:
    lead, ann, bob, vic = (_who(db, n) for n in ("lead", "ann", "bob", "vic"))
    past = datetime.now(UTC) - timedelta(days=1)
    with db.session() as s, pytest.raises(PermissionDenied):
        assignments.assign(s, ann, [trial], bob.user_id)
    with db.session() as s, pytest.raises(InvalidInput, match="does not read"):
        assignments.assign(s, lead, [trial], vic.user_id)
    with db.session() as s:
        assignments.assign(s, lead, [trial], ann.user_id, due_at=past)

    def queue(who: Principal, q: catalog.Queue) -> list[int]:
        with db.session() as s:
            return [
                r["id"] for r in catalog.list_studies(s, who, catalog.StudyQuery(queue=q)).items
            ]

    assert queue(ann, catalog.Queue.MINE) == [trial]
    assert queue(bob, catalog.Queue.MINE) == []
    assert queue(lead, catalog.Queue.OVERDUE) == [trial]
    with db.session() as s:
        assignments.assign(s, lead, [trial], bob.user_id, replace_id=ann.user_id)
    assert queue(ann, catalog.Queue.MINE) == [] and queue(bob, catalog.Queue.MINE) == [trial]
    item = _seg_item(db, bob, trial)
    assert [h["action"] for h in item["history"]] == ["assign", "unassign", "assign"]
    with db.session() as s:
        review.submit_read(s, bob, item["id"], ReviewStatus.APPROVED, "", None, item["version"])
    assert queue(bob, catalog.Queue.MINE) == []  # reading everything ends the assignment
    with db.session() as s:
        actions = s.scalars(select(AuditEntry.action).order_by(AuditEntry.id)).all()
    assert actions.count("review.assign") == 2 and "review.read" in actions


def test_dice_between_readers_edits_against_numpy(
    db: Database, settings: Settings, trial: int, tmp_path: Path
) -> None:
    with db.session() as s:
        study = s.get(Study, trial)
        original = study.segmentations[0]
        base = label_map(settings.store_dir, study, original)
        reference = np.asanyarray(nib.load(settings.store_dir / original.file).dataobj)
        assert np.array_equal(base, reference)  # read back exactly what was imported
        edited = base.copy()
        edited[: base.shape[0] // 2] = 0  # the second reader erased the right half
        path = settings.store_dir / "edits" / "bob.nii.gz"
        path.parent.mkdir(parents=True)
        nib.save(nib.Nifti1Image(edited, np.asarray(study.affine_ras)), path)
        s.add(
            Segmentation(study_id=trial, name="bob edit", file="edits/bob.nii.gz", content_hash="x")
        )
        s.flush()
        seg_ids = list(
            s.scalars(select(Segmentation.id).where(Segmentation.study_id == trial).order_by("id"))
        )
    expected = (
        2
        * np.count_nonzero((base != 0) & (base == edited))
        / (np.count_nonzero(base) + np.count_nonzero(edited))
    )
    assert dice(base, edited) == pytest.approx(expected)
    with db.session() as s:
        s.execute(update(Project).values(required_reads=2))
    ann, bob = _who(db, "ann"), _who(db, "bob")
    item = _seg_item(db, ann, trial)
    with db.session() as s:
        review.submit_read(
            s, ann, item["id"], ReviewStatus.APPROVED, "", None, 1, seg_ids[0], settings.store_dir
        )
    with db.session() as s:
        review.submit_read(
            s, bob, item["id"], ReviewStatus.NEEDS_EDIT, "", None, 2, seg_ids[1], settings.store_dir
        )
    with db.session() as s:
        data = review_view.study_review(s, ann, trial, settings.store_dir)
    got = next(i for i in data["items"] if i["id"] == item["id"])
    assert got["agreement"]["dice"] == pytest.approx(expected)
    assert f"Dice {expected:.3f}" in got["history"][-1]["reason"]


def test_new_version_starts_fresh_but_shows_the_earlier_review(
    db: Database, settings: Settings, trial: int, tmp_path: Path
) -> None:
    ann = _who(db, "ann")
    item = _seg_item(db, ann, trial)
    with db.session() as s:
        review.submit_read(s, ann, item["id"], ReviewStatus.NEEDS_EDIT, "hole in L2", None, 1)
    label = tmp_path / "case-label.nii.gz"
    img = nib.load(label)
    original = np.asanyarray(img.dataobj)
    edited = np.where(original == 1, 2, original).astype(original.dtype)  # the corrected map
    nib.save(nib.Nifti1Image(edited, img.affine), label)
    [new_id] = import_paths(
        db, _import_settings(settings), "trial", [tmp_path / "case.nii.gz"]
    ).imported
    with db.session() as s:
        data = review_view.study_review(s, ann, new_id)
    assert {i["state"] for i in data["items"]} == {"unreviewed"}
    [old] = data["earlier_versions"]
    assert (old["study_id"], old["version"], old["status"], old["by"]) == (
        trial,
        1,
        "needs-edit",
        "ann",
    )
    assert old["reason"] == "hole in L2"
