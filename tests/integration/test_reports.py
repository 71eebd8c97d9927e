"""Review reports: CSV/XLSX exports through the API, the printable study report and the
dashboard's data, on a real imported study and both database dialects."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from flask import Flask
from flask.testing import FlaskClient
from openpyxl import load_workbook
from PIL import Image
from sqlalchemy import select, update

from portal.config import Settings
from portal.db.models import (
    AuditEntry,
    Label,
    Project,
    ReviewRead,
    ReviewStatus,
    Role,
    Segmentation,
    Study,
    User,
)
from portal.db.session import Database
from portal.services import reports, review, review_view
from portal.services.auth import Principal
from portal.services.importer import import_paths
from portal.services.segmentations import dice, label_map
from tests.conftest import dash_post, login, make_user
from tests.integration.test_importer import _case, _import_settings


def _who(db: Database, name: str) -> Principal:
    with db.session() as s:
        user = s.scalar(select(User).where(User.username == name))
        assert user is not None
        return Principal.of(user)


@pytest.fixture()
def trial(db: Database, settings: Settings, tmp_path: Path) -> int:
    imported = import_paths(db, _import_settings(settings), "trial", [_case(tmp_path / "t")])
    [study_id] = imported.imported
    make_user(db, "lead", Role.ADMIN)
    make_user(db, "ann", Role.REVIEWER, ["trial"])
    make_user(db, "bob", Role.REVIEWER, ["trial"])
    make_user(db, "eve", Role.EXPERT, ["trial"])
    return study_id


@pytest.fixture()
def app(settings: Settings, trial: int) -> Iterator[Flask]:
    from portal.app import create_app

    app = create_app(settings)
    app.config["TESTING"] = True
    yield app
    app.extensions["portal"].db.dispose()  # close the app's PostgreSQL connections


def _client(app: Flask, username: str) -> FlaskClient:
    client = app.test_client()
    login(client, username)
    return client


def _items(db: Database, who: Principal, study_id: int) -> dict[str, dict]:
    with db.session() as s:
        data = review_view.study_review(s, who, study_id)
    return {i["key"].split(":")[0]: i for i in data["items"]}


def _csv(client: FlaskClient, query: str = "") -> list[dict[str, str]]:
    response = client.get(f"/api/v1/exports/review.csv{query}")
    assert response.status_code == 200, response.data
    assert response.mimetype == "text/csv"
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith('attachment; filename="review-') and '.csv"' in disposition
    text = response.get_data().decode("utf-8")
    assert text.startswith("\ufeff")
    return list(csv.DictReader(io.StringIO(text[1:])))


def _xlsx(client: FlaskClient, query: str = "") -> list[dict[str, object]]:
    response = client.get(f"/api/v1/exports/review.xlsx{query}")
    assert response.status_code == 200, response.data
    assert response.mimetype == reports_xlsx_type()
    sheet = load_workbook(io.BytesIO(response.get_data())).active
    assert sheet is not None and sheet.freeze_panes == "A2"
    assert all(cell.font.bold for cell in sheet[1])
    rows = list(sheet.iter_rows(values_only=True))
    header = [str(h) for h in rows[0]]
    return [dict(zip(header, row, strict=True)) for row in rows[1:]]


def reports_xlsx_type() -> str:
    from portal.api.reports import XLSX_TYPE

    return XLSX_TYPE


def test_csv_and_xlsx_exports_hold_reads_verdicts_volumes_and_are_audited(
    db: Database, app: Flask, trial: int
) -> None:
    ann = _who(db, "ann")
    seg = _items(db, ann, trial)["seg"]
    with db.session() as s:
        review.submit_read(
            s, ann, seg["id"], ReviewStatus.NEEDS_EDIT, "leaks", {"2": "over-segmented"}, 1
        )
    with db.session() as s:
        read = s.scalar(select(ReviewRead))
        assert read is not None
        read_at = read.submitted_at.replace(tzinfo=read.submitted_at.tzinfo or UTC)
        labels = {lab.name: lab.volume_ml for lab in s.scalars(select(Label))}
    assert sorted(labels) == ["label 1", "label 2"]

    client = _client(app, "eve")
    rows = _csv(client, "?project=trial")
    assert [(r["item"].split(":")[0], r["state"], r["reader"]) for r in rows] == [
        ("image", "unreviewed", ""),
        ("seg", "needs-edit", "ann"),
    ]
    image_row, seg_row = rows
    assert seg_row["study_id"] == str(trial) and seg_row["study"] == "case"
    assert (seg_row["project"], seg_row["modality"]) == ("trial", "MR")
    assert seg_row["verdict"] == "needs-edit" and seg_row["note"] == "leaks"
    assert seg_row["label_verdicts"] == "label 2: over-segmented"
    assert (seg_row["round"], seg_row["reads_required"], seg_row["reads_done"]) == ("1", "1", "1")
    assert datetime.fromisoformat(seg_row["read_at"]) == read_at
    assert seg_row["decided_by"] == "ann"
    assert datetime.fromisoformat(seg_row["decided_at"]) >= read_at
    assert seg_row["verdict_agreement"] == seg_row["dice"] == ""  # one read: no agreement
    for name, ml in labels.items():
        assert float(seg_row[f"volume_ml: {name}"]) == pytest.approx(ml)
        assert image_row[f"volume_ml: {name}"] == ""  # the image item has no labels
    assert image_row["verdict"] == image_row["decided_by"] == ""

    sheet = _xlsx(client, "?project=trial")
    assert [(r["item"], r["reader"]) for r in sheet] == [
        (image_row["item"], None),
        (seg_row["item"], "ann"),
    ]
    x = sheet[1]
    assert x["study_id"] == trial and x["verdict"] == "needs-edit"
    assert x["label_verdicts"] == "label 2: over-segmented"
    assert isinstance(x["read_at (UTC)"], datetime)
    drift = abs(x["read_at (UTC)"] - read_at.astimezone(UTC).replace(tzinfo=None))
    assert drift.total_seconds() < 0.001
    assert x["volume_ml: label 2"] == pytest.approx(labels["label 2"])

    with db.session() as s:
        audits = s.scalars(
            select(AuditEntry).where(AuditEntry.action == "export.review").order_by(AuditEntry.id)
        ).all()
        assert [(a.detail, a.user_id) for a in audits] == [
            ("format=csv rows=2", _who(db, "eve").user_id),
            ("format=xlsx rows=2", _who(db, "eve").user_id),
        ]
    # the case-list filter applies: no study of this project is approved yet
    assert _csv(client, "?status=approved") == []
    assert _csv(client, "?queue=expert") == []  # nothing is flagged for an expert
    assert len(_csv(client, "?status=needs-edit&q=cas")) == 2
    assert client.get("/api/v1/exports/review.csv?status=bogus").status_code == 400


def test_exports_keep_open_rounds_blind_and_other_projects_out(
    db: Database, settings: Settings, app: Flask, trial: int, tmp_path: Path
) -> None:
    with db.session() as s:
        s.execute(update(Project).values(required_reads=2))
    [other] = import_paths(
        db, _import_settings(settings), "elsewhere", [_case(tmp_path / "e")]
    ).imported
    make_user(db, "out", Role.REVIEWER, ["elsewhere"])
    ann = _who(db, "ann")
    seg = _items(db, ann, trial)["seg"]
    with db.session() as s:
        review.submit_read(s, ann, seg["id"], ReviewStatus.APPROVED, "fine", None, 1)

    def seg_rows(username: str) -> list[dict[str, str]]:
        rows = _csv(_client(app, username))
        return [r for r in rows if r["item"].startswith("seg:") and r["study_id"] == str(trial)]

    # bob has not read yet: he sees that one read is in, not whose or what
    [bob_row] = seg_rows("bob")
    assert (bob_row["state"], bob_row["reads_done"]) == ("in-review", "1")
    assert bob_row["reader"] == bob_row["verdict"] == bob_row["note"] == ""
    assert bob_row["verdict_agreement"] == ""
    bob_sheet = _xlsx(_client(app, "bob"))
    assert not [r for r in bob_sheet if r["verdict"] or r["note"]]
    # ann sees her own read; the expert sees it too
    assert [(r["reader"], r["verdict"]) for r in seg_rows("ann")] == [("ann", "approved")]
    assert [(r["reader"], r["note"]) for r in seg_rows("eve")] == [("ann", "fine")]

    # a member of another project exports only that project's rows
    out_rows = _csv(_client(app, "out"))
    assert out_rows and {r["study_id"] for r in out_rows} == {str(other)}
    assert {r["project"] for r in out_rows} == {"elsewhere"}
    assert _csv(_client(app, "out"), "?project=trial") == []
    assert len(_csv(_client(app, "lead"))) == 4  # the admin sees both studies' items


def test_formula_injection_is_neutralised_in_csv_and_xlsx(
    db: Database, app: Flask, trial: int
) -> None:
    ann = _who(db, "ann")
    seg = _items(db, ann, trial)["seg"]
    payload = '=HYPERLINK("http://evil.example","click")'
    with db.session() as s:
        review.submit_read(s, ann, seg["id"], ReviewStatus.NEEDS_EDIT, payload, None, 1)
    client = _client(app, "eve")
    [row] = [r for r in _csv(client) if r["reader"]]
    assert row["note"] == "'" + payload
    [cell] = [r for r in _xlsx(client) if r["reader"]]
    assert cell["note"] == "'" + payload
    for dangerous in ("=1+2", "+1", "-1", "@SUM(A1)", "\t=1"):
        assert reports.neutralise(dangerous) == "'" + dangerous
    assert reports.neutralise("fine -1") == "fine -1" and reports.neutralise(-1.5) == -1.5


def test_study_report_shows_labels_verdicts_signoff_and_an_overlay_mosaic(
    db: Database, app: Flask, trial: int
) -> None:
    ann, eve = _who(db, "ann"), _who(db, "eve")
    seg = _items(db, ann, trial)["seg"]
    with db.session() as s:
        review.submit_read(
            s, ann, seg["id"], ReviewStatus.FLAGGED_FOR_EXPERT, "edge", {"1": "missing"}, 1
        )
    with db.session() as s:
        review.transition(s, eve, seg["id"], ReviewStatus.APPROVED, "fine after all", 2)
        volumes = {lab.name: lab.volume_ml for lab in s.scalars(select(Label))}
    client = _client(app, "bob")
    response = client.get(f"/reports/study/{trial}")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    for name, ml in volumes.items():
        assert name in page and f"{ml:.2f}" in page
    assert "label 1: missing" in page and "flagged-for-expert" in page
    assert "@media print" in page
    signoff = page[page.index("Sign-off") :]
    assert "approved" in signoff and "eve" in signoff

    make_user(db, "out", Role.REVIEWER)
    src = page.split('class="mosaic"')[1].split('src="')[1].split('"')[0]
    assert src == f"/reports/study/{trial}/mosaic.png"
    png = client.get(src, buffered=True)
    assert png.status_code == 200 and png.mimetype == "image/png"
    assert png.headers["Cache-Control"].startswith("private")
    pixels = np.asarray(Image.open(io.BytesIO(png.get_data())).convert("RGB")).astype(int)
    assert pixels.shape == (640, 640, 3)  # 16 labelled slices, 4 x 4 tiles of 160 px
    assert pixels.std() > 10  # not blank
    # The grey image has R == G == B; the label overlay is what makes pixels coloured,
    # and the slices are chosen among the labelled ones, so every tile has some.
    coloured = (pixels.max(axis=2) - pixels.min(axis=2)) > 40
    tiles = coloured.reshape(4, 160, 4, 160).sum(axis=(1, 3))
    assert (tiles > 20).all(), tiles
    assert _client(app, "out").get(src).status_code == 404
    assert client.get(src, buffered=True).get_data() == png.get_data()  # cached

    with db.session() as s:
        [entry] = s.scalars(select(AuditEntry).where(AuditEntry.action == "report.view")).all()
        assert entry.target == f"study:{trial}" and entry.user_id == _who(db, "bob").user_id

    assert _client(app, "out").get(f"/reports/study/{trial}").status_code == 404
    anonymous = app.test_client().get(f"/reports/study/{trial}")
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]


def test_dashboard_data_counts_states_readers_throughput_and_agreement(
    db: Database, trial: int
) -> None:
    with db.session() as s:
        s.execute(update(Project).values(required_reads=2))
    ann, bob, eve = (_who(db, n) for n in ("ann", "bob", "eve"))
    items = _items(db, ann, trial)
    image, seg = items["image"]["id"], items["seg"]["id"]
    with db.session() as s:
        review.submit_read(s, ann, image, ReviewStatus.APPROVED, "", None, 1)
        review.submit_read(s, ann, seg, ReviewStatus.APPROVED, "", None, 1)
    # bob, before reading, sees counts but not ann's verdicts
    with db.session() as s:
        blind = reports.project_dashboard(s, bob, "trial")
    assert blind["states"]["in-review"] == 2 and blind["readers"] == {}
    assert blind["agreement"] == []
    with db.session() as s:
        review.submit_read(s, bob, image, ReviewStatus.APPROVED, "", None, 2)
        review.submit_read(s, bob, seg, ReviewStatus.NEEDS_EDIT, "hole", None, 2)
    version = _items(db, eve, trial)["seg"]["version"]
    with db.session() as s:
        review.transition(s, eve, seg, ReviewStatus.REJECTED, "unusable", version)
    with db.session() as s:
        data = reports.project_dashboard(s, eve, "trial")
    today = datetime.now(UTC).date().isoformat()
    assert (data["studies"], data["items"]) == (1, 2)
    assert data["states"] == {
        "unreviewed": 0,
        "in-review": 0,
        "approved": 1,
        "needs-edit": 0,
        "flagged-for-expert": 0,
        "rejected": 1,
    }
    assert data["readers"] == {"ann": {"approved": 2}, "bob": {"approved": 1, "needs-edit": 1}}
    # decisions: image approved, seg flagged by the disagreement, seg rejected by eve
    assert data["throughput"] == [{"day": today, "reads": 4, "decisions": 3}]
    assert data["agreement"] == [1.0, 0.0] and data["dice"] == []
    with db.session() as s:
        assert reports.project_dashboard(s, eve, "elsewhere")["items"] == 0


def test_dashboard_page_and_callback_through_dash(db: Database, app: Flask, trial: int) -> None:
    ann = _who(db, "ann")
    seg = _items(db, ann, trial)["seg"]
    with db.session() as s:
        review.submit_read(s, ann, seg["id"], ReviewStatus.APPROVED, "", None, 1)
    client = _client(app, "bob")
    page = dash_post(
        client,
        {
            "output": "..shell-page.children...shell-nav.children..",
            "outputs": [
                {"id": "shell-page", "property": "children"},
                {"id": "shell-nav", "property": "children"},
            ],
            "inputs": [
                {"id": "shell-url", "property": "pathname", "value": "/dashboard"},
                {"id": "shell-url", "property": "search", "value": ""},
            ],
            "changedPropIds": ["shell-url.pathname"],
        },
    )
    assert page.status_code == 200, page.get_data(as_text=True)
    layout = page.get_data(as_text=True)
    assert "dashboard-project" in layout and "dashboard-states" in layout and "trial" in layout

    outputs = ["states", "readers", "throughput", "agreement"]
    response = dash_post(
        client,
        {
            "output": "".join(f"..dashboard-{o}.figure." for o in outputs)
            + "..dashboard-summary.children..",
            "outputs": [{"id": f"dashboard-{o}", "property": "figure"} for o in outputs]
            + [{"id": "dashboard-summary", "property": "children"}],
            "inputs": [{"id": "dashboard-project", "property": "value", "value": "trial"}],
            "changedPropIds": ["dashboard-project.value"],
        },
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    figures = response.get_json()["response"]
    states = figures["dashboard-states"]["figure"]["data"][0]
    assert dict(zip(states["x"], states["y"], strict=True))["approved"] == 1
    readers = figures["dashboard-readers"]["figure"]["data"]
    assert [(t["name"], t["x"], t["y"]) for t in readers] == [("approved", ["ann"], [1])]
    summary = figures["dashboard-summary"]["children"]
    assert summary == "1 study · 2 review items · 1 decided · 1 read"


def test_dice_of_readers_edits_reaches_the_export_and_the_dashboard(
    db: Database, settings: Settings, app: Flask, trial: int
) -> None:
    with db.session() as s:
        study = s.get(Study, trial)
        assert study is not None
        original = study.segmentations[0]
        base = label_map(settings.store_dir, study, original)
        edited = base.copy()
        edited[: base.shape[0] // 2] = 0  # the second reader erased the right half
        path = settings.store_dir / "edits" / "bob.nii.gz"
        path.parent.mkdir(parents=True)
        nib.save(nib.Nifti1Image(edited, np.asarray(study.affine_ras)), path)
        s.add(
            Segmentation(study_id=trial, name="bob edit", file="edits/bob.nii.gz", content_hash="x")
        )
        s.flush()
        original_id = original.id
        edit_id = s.scalar(select(Segmentation.id).where(Segmentation.name == "bob edit"))
        s.execute(update(Project).values(required_reads=2))
    expected = dice(base, edited)
    assert 0.2 < expected < 0.8
    ann, bob = _who(db, "ann"), _who(db, "bob")
    with db.session() as s:
        items = review_view.study_review(s, ann, trial)["items"]
    [seg] = [i for i in items if i["segmentation_id"] == original_id]
    with db.session() as s:
        review.submit_read(
            s, ann, seg["id"], ReviewStatus.APPROVED, "", None, 1, original_id, settings.store_dir
        )
    with db.session() as s:
        review.submit_read(
            s, bob, seg["id"], ReviewStatus.NEEDS_EDIT, "", None, 2, edit_id, settings.store_dir
        )
    rows = [r for r in _csv(_client(app, "eve")) if r["item"] == f"seg:{original_id}"]
    verdicts = [(r["reader"], r["verdict"]) for r in rows]
    assert verdicts == [("ann", "approved"), ("bob", "needs-edit")]
    for row in rows:
        assert row["state"] == "flagged-for-expert" and row["verdict_agreement"] == "0.0"
        assert float(row["dice"]) == pytest.approx(expected)
    with db.session() as s:
        data = reports.project_dashboard(s, _who(db, "eve"), "trial", settings.store_dir)
    assert data["agreement"] == [0.0] and data["dice"] == [pytest.approx(expected)]
