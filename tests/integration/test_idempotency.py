"""`Idempotency-Key` on the create routes: a retry of the same request is answered with
the first response and does nothing twice; the same key with another request is 422;
failed attempts free their key; stored responses expire after a day."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select, update

from portal.app import create_app
from portal.config import Settings
from portal.db.models import ApiToken, Comment, IdempotencyKey, ImportJob, Role, Study, User
from portal.db.session import Database
from portal.services import catalog, idempotency
from portal.services.errors import Conflict, IdempotencyMismatch
from portal.services.importer import import_paths
from tests.conftest import login, make_user
from tests.integration.test_importer import _case, _import_settings


@pytest.fixture()
def app(settings: Settings, db: Database) -> Iterator[Flask]:
    with db.session() as s:
        catalog.ensure_project(s, "trial")
    make_user(db, "ann", Role.REVIEWER, ["trial"])
    make_user(db, "bob", Role.REVIEWER, ["trial"])
    app = create_app(settings)
    yield app
    app.extensions["portal"].db.dispose()


def _client(app: Flask, username: str) -> tuple[FlaskClient, str]:
    client = app.test_client()
    login(client, username)
    with client.session_transaction() as sess:
        return client, sess["csrf"]


def _count(db: Database, model: type) -> int:
    with db.session() as s:
        return s.scalar(select(func.count()).select_from(model)) or 0


def test_retried_token_creation_returns_the_first_answer(app: Flask, db: Database) -> None:
    client, csrf = _client(app, "ann")
    headers = {"X-CSRF-Token": csrf, "Idempotency-Key": "k-1"}
    first = client.post("/api/v1/tokens", json={"name": "ci"}, headers=headers)
    again = client.post("/api/v1/tokens", json={"name": "ci"}, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.get_json() == first.get_json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert _count(db, ApiToken) == 1
    other = client.post("/api/v1/tokens", json={"name": "cd"}, headers=headers)
    assert other.status_code == 422 and other.get_json()["code"] == "idempotency_mismatch"
    # Keys belong to their user: bob's k-1 is a new request.
    bob, bob_csrf = _client(app, "bob")
    made = bob.post(
        "/api/v1/tokens",
        json={"name": "ci"},
        headers={"X-CSRF-Token": bob_csrf, "Idempotency-Key": "k-1"},
    )
    assert made.status_code == 201 and _count(db, ApiToken) == 2
    # Without the header nothing changes: two requests, two tokens.
    for _ in range(2):
        client.post("/api/v1/tokens", json={"name": "x"}, headers={"X-CSRF-Token": csrf})
    assert _count(db, ApiToken) == 4


def test_a_failed_attempt_frees_its_key(app: Flask, db: Database) -> None:
    client, csrf = _client(app, "ann")
    headers = {"X-CSRF-Token": csrf, "Idempotency-Key": "k-2"}
    assert client.post("/api/v1/tokens", json={"name": ""}, headers=headers).status_code == 400
    fixed = client.post("/api/v1/tokens", json={"name": "ok"}, headers=headers)
    assert fixed.status_code == 201 and _count(db, ApiToken) == 1
    # A stored answer is not replayed to a request without the CSRF header.
    refused = client.post("/api/v1/tokens", json={"name": "ok"}, headers={"Idempotency-Key": "k-2"})
    assert refused.status_code == 403
    too_long = client.post(
        "/api/v1/tokens", json={"name": "ok"}, headers={**headers, "Idempotency-Key": "x" * 200}
    )
    assert too_long.status_code == 400 and too_long.get_json()["code"] == "invalid"


def test_retried_comment_and_upload_are_made_once(
    app: Flask, db: Database, settings: Settings, tmp_path: Path
) -> None:
    [study_id] = import_paths(db, _import_settings(settings), "trial", [_case(tmp_path)]).imported
    client, csrf = _client(app, "ann")
    item_id = client.get(f"/api/v1/studies/{study_id}/review").get_json()["items"][0]["id"]
    headers = {"X-CSRF-Token": csrf, "Idempotency-Key": "c-1"}
    url = f"/api/v1/review-items/{item_id}/comments"
    answers = [client.post(url, json={"body": "edge?"}, headers=headers) for _ in range(3)]
    assert {a.status_code for a in answers} == {201}
    assert len({a.get_json()["id"] for a in answers}) == 1 and _count(db, Comment) == 1

    def upload(content: bytes) -> dict:  # type: ignore[type-arg]
        data = {"project": "trial", "files": (io.BytesIO(content), "notes.txt")}
        response = client.post(
            "/api/v1/imports",
            data=data,
            content_type="multipart/form-data",
            headers={"X-CSRF-Token": csrf, "Idempotency-Key": "u-1"},
        )
        return {"status": response.status_code, "body": response.get_json()}

    first, again = upload(b"same bytes"), upload(b"same bytes")
    assert first["status"] == again["status"] == 202 and first["body"] == again["body"]
    assert _count(db, ImportJob) == 1
    changed = upload(b"other bytes")
    assert changed["status"] == 422


def test_stored_answers_expire_after_a_day(app: Flask, db: Database) -> None:
    client, csrf = _client(app, "ann")
    headers = {"X-CSRF-Token": csrf, "Idempotency-Key": "k-3"}
    assert client.post("/api/v1/tokens", json={"name": "a"}, headers=headers).status_code == 201
    with db.session() as s:
        s.execute(update(IdempotencyKey).values(created_at=datetime.now(UTC) - timedelta(hours=25)))
    # An expired key is free again, even for another request.
    assert client.post("/api/v1/tokens", json={"name": "b"}, headers=headers).status_code == 201
    with db.session() as s:
        s.execute(update(IdempotencyKey).values(created_at=datetime.now(UTC) - timedelta(hours=25)))
        assert idempotency.purge(s) == 1
    assert _count(db, IdempotencyKey) == 0


def test_retried_correction_upload_makes_one_version(
    app: Flask, db: Database, settings: Settings, tmp_path: Path
) -> None:
    src = tmp_path / "src"
    [study_id] = import_paths(db, _import_settings(settings), "trial", [_case(src)]).imported
    make_user(db, "vic", Role.VIEWER, ["trial"])
    reference = nib.load(src / "case-label.nii.gz")
    fixed = np.asanyarray(reference.dataobj).copy()
    fixed[fixed == 2] = 1
    path = tmp_path / "case-fixed.nii.gz"
    nib.save(nib.Nifti1Image(fixed, reference.affine), path)

    def send(username: str) -> tuple[int, dict]:  # type: ignore[type-arg]
        client, csrf = _client(app, username)
        response = client.post(
            f"/api/v1/studies/{study_id}/segmentations",
            data={"file": (io.BytesIO(path.read_bytes()), path.name)},
            headers={"X-CSRF-Token": csrf, "Idempotency-Key": "fix-1"},
        )
        return response.status_code, response.get_json()

    # A viewer is refused before the upload is read, key or not.
    assert send("vic")[0] == 403
    first, again = send("ann"), send("ann")
    assert first[0] == again[0] == 201 and first[1] == again[1], (first, again)
    assert _count(db, Study) == 2  # the original and one corrected version


def test_a_key_in_use_is_refused_until_its_attempt_is_stale(app: Flask, db: Database) -> None:
    with db.session() as s:
        user_id = s.scalar(select(User.id).where(User.username == "ann"))
        assert idempotency.begin(s, user_id, "r-1", "POST /api/v1/tokens", "f" * 64) is None
    with db.session() as s, pytest.raises(Conflict):  # the first attempt is still running
        idempotency.begin(s, user_id, "r-1", "POST /api/v1/tokens", "f" * 64)
    with db.session() as s, pytest.raises(IdempotencyMismatch):
        idempotency.begin(s, user_id, "r-1", "POST /api/v1/imports", "f" * 64)
    with db.session() as s:
        s.execute(update(IdempotencyKey).values(created_at=datetime.now(UTC) - timedelta(hours=1)))
    with db.session() as s:  # the first attempt died (e.g. a restart): this one takes over
        assert idempotency.begin(s, user_id, "r-1", "POST /api/v1/tokens", "f" * 64) is None
        idempotency.finish(s, user_id, "r-1", 201, '{"id": 7}')
    with db.session() as s:
        stored = idempotency.begin(s, user_id, "r-1", "POST /api/v1/tokens", "f" * 64)
    assert stored == idempotency.Stored(201, '{"id": 7}')
