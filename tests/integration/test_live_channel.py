"""The live channel: "open these studies" for a user's tabs, and what a tab shows.

Checked through the REST API (cookie and bearer) and through `portal.client` against a
real server on 127.0.0.1; the browser side is `tests/browser/test_live_channel.py`.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select, update
from werkzeug.serving import make_server

from portal.app import create_app
from portal.client import PortalClient, PortalError
from portal.config import Settings
from portal.db import migrate
from portal.db.models import AuditEntry, LiveCommand, Role, User, UserSession
from portal.db.session import Database
from portal.services import tokens
from portal.services.auth import Principal
from portal.services.importer import import_paths
from portal.services.viewer import slice_index
from portal.ui.callbacks.router import review_view
from tests.conftest import login, make_user
from tests.integration.test_importer import _case, _import_settings


@dataclass
class World:
    app: Flask
    db: Database
    mine: int  # in project "trial", which rita belongs to
    other: int  # in project "other", which she does not


@pytest.fixture
def world(settings: Settings, tmp_path: Path) -> Iterator[World]:
    migrate.upgrade(settings.resolved_database_url)
    app = create_app(settings)
    db: Database = app.extensions["portal"].db
    [mine] = import_paths(db, _import_settings(settings), "trial", [_case(tmp_path / "a")]).imported
    [other] = import_paths(
        db, _import_settings(settings), "other", [_case(tmp_path / "b")]
    ).imported
    make_user(db, "rita", Role.REVIEWER, ["trial"])
    make_user(db, "vic", Role.VIEWER, ["trial"])
    make_user(db, "root", Role.ADMIN)
    yield World(app, db, mine, other)
    db.dispose()


def _user_id(db: Database, name: str) -> int:
    with db.session() as s:
        return int(s.scalar(select(User.id).where(User.username == name)))


def _signed_in(world: World, name: str) -> tuple[FlaskClient, dict[str, str]]:
    client = world.app.test_client()
    login(client, name)
    with client.session_transaction() as sess:
        return client, {"X-CSRF-Token": sess["csrf"]}


def _commands(db: Database) -> int:
    with db.session() as s:
        return int(s.scalar(select(func.count(LiveCommand.id))))


def _token(db: Database, name: str, scopes: list[str]) -> str:
    with db.session() as s:
        user = s.scalar(select(User).where(User.username == name))
        assert user is not None
        _, token = tokens.create_token(
            s, Principal.of(user), "live", tokens.parse_scopes(scopes), 1
        )
    return token


def test_open_is_validated_and_refuses_studies_the_target_cannot_see(world: World) -> None:
    rita, csrf = _signed_in(world, "rita")
    url = "/api/v1/sessions/me/open"
    # cookie writes need the CSRF header
    assert rita.post(url, json={"studies": [world.mine]}).status_code == 403
    refused = rita.post(url, json={"studies": [world.mine, world.other]}, headers=csrf)
    assert refused.status_code == 404 and str(world.other) in refused.get_json()["error"]
    assert rita.post(url, json={"studies": [999999]}, headers=csrf).status_code == 404
    bad = {
        "no studies": {"studies": []},
        "not ids": {"studies": ["x"]},
        "too many": {"studies": list(range(1, 50))},
        "layout": {"studies": [world.mine], "layout": "5x5"},
        "mode": {"studies": [world.mine], "state": {"mode": "4d"}},
        "slice": {"studies": [world.mine], "state": {"slice_mm": "top"}},
        "window": {"studies": [world.mine], "state": {"window": {"level": 40, "width": 400}}},
        "preset": {"studies": [world.mine], "state": {"window": "lungs"}},
        "inverted": {"studies": [world.mine], "state": {"window": [400, -100]}},
        "axis": {"studies": [world.mine], "state": {"axis": "oblique"}},
        "opacity": {"studies": [world.mine], "state": {"opacity": 1.5}},
        "overlay": {"studies": [world.mine], "state": {"overlay": "yes"}},
        "hidden": {"studies": [world.mine], "state": {"hidden_labels": [0]}},
        "labels": {"studies": [world.mine], "state": {"labels": [1]}},
        "unknown": {"studies": [world.mine], "state": {"zoom": 2}},
        "field": {"studies": [world.mine], "hanging": "x"},
    }
    for why, body in bad.items():
        r = rita.post(url, json=body, headers=csrf)
        assert r.status_code == 400, (why, r.get_json())
    window = rita.post(url, json=bad["window"], headers=csrf).get_json()["error"]
    assert "preset name or [low, high]" in window
    labels = rita.post(url, json=bad["labels"], headers=csrf).get_json()["error"]
    assert "use 'hidden_labels'" in labels
    assert (
        "unknown state key 'zoom'"
        in rita.post(url, json=bad["unknown"], headers=csrf).json["error"]
    )
    assert _commands(world.db) == 0  # nothing stored for any refusal
    ok = rita.post(
        url,
        json={"studies": [world.mine], "layout": "2x2", "state": {"slice_mm": 10, "mode": "2d"}},
        headers=csrf,
    )
    assert ok.status_code == 201, ok.get_json()
    assert ok.get_json()["state"] == {"slice_mm": 10.0, "mode": "2d"}
    full = {
        "axis": "coronal",
        "slice_mm": -12,
        "window": [-100, 300],
        "overlay": True,
        "outline": True,
        "opacity": 0.3,
        "hidden_labels": [2, 1, 2],
    }
    ok = rita.post(url, json={"studies": [world.mine], "state": full}, headers=csrf)
    assert ok.status_code == 201, ok.get_json()
    assert ok.get_json()["state"] == dict(
        full, slice_mm=-12.0, window=[-100.0, 300.0], hidden_labels=[1, 2]
    )
    with world.db.session() as s:
        entries = s.scalars(select(AuditEntry).where(AuditEntry.action == "live.open")).all()
        assert [e.detail for e in entries] == ["studies=1", "studies=1"]
        assert all(e.user_id == _user_id(world.db, "rita") for e in entries)


def test_on_behalf_is_for_administrators_and_audited_with_both_ids(world: World) -> None:
    rita_id, vic_id, root_id = (_user_id(world.db, n) for n in ("rita", "vic", "root"))
    rita, rita_csrf = _signed_in(world, "rita")
    body = {"studies": [world.mine]}
    denied = rita.post(f"/api/v1/sessions/{vic_id}/open", json=body, headers=rita_csrf)
    assert denied.status_code == 403
    root, root_csrf = _signed_in(world, "root")
    # the admin sees every study, but vic does not: refused for him
    forbidden = {"studies": [world.other]}
    r = root.post(f"/api/v1/sessions/{vic_id}/open", json=forbidden, headers=root_csrf)
    assert r.status_code == 404
    nobody = root.post("/api/v1/sessions/999999/open", json=body, headers=root_csrf)
    assert nobody.status_code == 404
    assert _commands(world.db) == 0
    done = root.post(f"/api/v1/sessions/{vic_id}/open", json=body, headers=root_csrf)
    assert done.status_code == 201 and done.get_json()["user_id"] == vic_id
    with world.db.session() as s:
        entries = s.scalars(select(AuditEntry).where(AuditEntry.action == "live.open")).all()
        assert [(e.user_id, e.target, e.detail) for e in entries] == [
            (root_id, f"user:{vic_id}", f"studies=1 for_user={vic_id} by_user={root_id}")
        ]
        denials = s.scalars(
            select(AuditEntry).where(
                AuditEntry.action == "access.denied", AuditEntry.user_id == rita_id
            )
        ).all()
        assert denials, "the refused on-behalf request is audited"
    vic, _ = _signed_in(world, "vic")
    got = vic.get("/api/v1/sessions/me/commands?after=0").get_json()["items"]
    assert [c["studies"] for c in got] == [[world.mine]]
    # a review-scope token may open for its own user, not for another
    token = _token(world.db, "root", ["review"])
    script = world.app.test_client()
    r = script.post(
        f"/api/v1/sessions/{vic_id}/open", json=body, headers={"Authorization": f"Bearer {token}"}
    )
    assert r.status_code == 403 and "'admin' scope" in r.get_json()["error"]


def test_commands_arrive_in_order_and_a_fresh_tab_replays_none(world: World) -> None:
    rita, csrf = _signed_in(world, "rita")
    first = rita.get("/api/v1/sessions/me/commands").get_json()
    assert first["items"] == [] and first["latest"] == 0
    ids = []
    for layout in ("1x1", "2x2", "3x3"):
        r = rita.post(
            "/api/v1/sessions/me/open",
            json={"studies": [world.mine], "layout": layout},
            headers=csrf,
        )
        ids.append(r.get_json()["id"])
    polled = rita.get(f"/api/v1/sessions/me/commands?after={first['latest']}").get_json()
    assert [c["id"] for c in polled["items"]] == ids
    assert [c["layout"] for c in polled["items"]] == ["1x1", "2x2", "3x3"]
    assert rita.get(f"/api/v1/sessions/me/commands?after={ids[0]}").json["items"][0]["id"] == ids[1]
    fresh = rita.get("/api/v1/sessions/me/commands").get_json()
    assert fresh["items"] == [] and fresh["latest"] == ids[-1]
    # another user's tabs see none of them
    vic, _ = _signed_in(world, "vic")
    assert vic.get("/api/v1/sessions/me/commands?after=0").get_json()["items"] == []
    assert rita.get("/api/v1/sessions/me/commands?after=x").status_code == 400


def test_state_round_trip(world: World) -> None:
    rita, csrf = _signed_in(world, "rita")
    assert rita.get("/api/v1/sessions/me/state").get_json() == {"state": None}
    shown = {
        "path": "/review",
        "studies": [world.mine],
        "layout": "2x2",
        "slices": {str(world.mine): 41},
    }
    assert rita.put("/api/v1/sessions/me/state", json=shown).status_code == 403  # no CSRF
    r = rita.put("/api/v1/sessions/me/state", json=shown, headers=csrf)
    assert r.status_code == 200, r.get_json()
    got = rita.get("/api/v1/sessions/me/state").get_json()["state"]
    assert {k: got[k] for k in shown} == shown and got["updated_at"]
    shown["slices"] = {str(world.mine): 12}
    rita.put("/api/v1/sessions/me/state", json=shown, headers=csrf)
    assert rita.get("/api/v1/sessions/me/state").json["state"]["slices"] == shown["slices"]
    for bad in ({"path": "x"}, {"path": "/", "extra": 1}, {"path": "/", "slices": {"1": "a"}}):
        assert rita.put("/api/v1/sessions/me/state", json=bad, headers=csrf).status_code == 400
    vic, _ = _signed_in(world, "vic")
    assert vic.get("/api/v1/sessions/me/state").get_json() == {"state": None}


def test_polling_does_not_keep_an_idle_session_alive(world: World) -> None:
    rita, _ = _signed_in(world, "rita")
    soon = datetime.now(UTC) + timedelta(minutes=5)  # well inside the idle timeout

    def expires() -> datetime:
        with world.db.session() as s:
            value = s.scalar(select(UserSession.expires_at))
            assert value is not None
            return value if value.tzinfo else value.replace(tzinfo=UTC)

    with world.db.session() as s:
        s.execute(update(UserSession).values(expires_at=soon))
    assert rita.get("/api/v1/sessions/me/commands?after=0").status_code == 200
    assert abs((expires() - soon).total_seconds()) < 1  # a background poll: not activity
    assert rita.get("/api/v1/studies").status_code == 200
    assert expires() > soon + timedelta(minutes=30)  # a real request slides it


def test_review_url_honours_layout_slice_and_mode() -> None:
    shape, state, keep = review_view(
        {"layout": ["2x3"], "slice_mm": ["-12.5"], "mode": ["3d"], "studies": ["1"]}
    )
    assert shape == (2, 3) and state == {"mode": "3d", "slice_mm": -12.5}
    assert keep == {"layout": "2x3", "mode": "3d", "slice_mm": "-12.5"}
    assert review_view({"layout": ["9x9"], "slice_mm": ["nan"], "mode": ["4d"]}) == (None, {}, {})
    _, state, keep = review_view(
        {
            "axis": ["sagittal"],
            "window": ["-100,300"],
            "overlay": ["0"],
            "outline": ["1"],
            "opacity": ["0.25"],
            "hidden_labels": ["3,1,x"],
        }
    )
    assert state == {
        "axis": "sagittal",
        "window": [-100.0, 300.0],
        "overlay": False,
        "outline": True,
        "opacity": 0.25,
        "hidden_labels": [1, 3],
    }
    assert (
        keep["window"] == "-100,300" and keep["overlay"] == "0" and keep["hidden_labels"] == "1,3"
    )
    # A bad value drops only itself.
    _, state, _ = review_view({"window": ["lungs"], "axis": ["coronal"], "opacity": ["7"]})
    assert state == {"axis": "coronal"}
    assert review_view({"window": ["bone"]})[1] == {"window": "bone"}
    meta = {"shape": [10, 10, 20], "origin_mm": [0, 0, -30.0], "spacing_mm": [1, 1, 2.0]}
    assert slice_index(meta, -30.0) == 0
    assert slice_index(meta, -11.2) == 9  # (-11.2 + 30) / 2 = 9.4
    assert slice_index(meta, 500.0) == 19 and slice_index(meta, -500.0) == 0


@pytest.fixture
def server(world: World) -> Iterator[str]:
    httpd = make_server("127.0.0.1", 0, world.app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_port}"
    finally:
        httpd.shutdown()
        thread.join(timeout=10)


def test_client_against_a_real_server(world: World, server: str, tmp_path: Path) -> None:
    with PortalClient(server, _token(world.db, "rita", ["review"])) as client:
        assert [s["id"] for s in client.studies()] == [world.mine]
        assert client.study(world.mine)["id"] == world.mine
        assert client.review(world.mine)["items"]
        with pytest.raises(PortalError) as caught:
            client.study(world.other)
        assert caught.value.status == 404 and caught.value.code == "not_found"
        with pytest.raises(PortalError) as caught:
            client.open([world.mine], state={"window": {"level": 1, "width": 2}})
        assert caught.value.status == 400 and "window" in caught.value.message
        command = client.open([world.mine], layout="2x2", state={"slice_mm": 5})
        assert command["studies"] == [world.mine] and command["layout"] == "2x2"
        assert client.state() is None
        seg = client.study(world.mine)["segmentations"][0]["id"]
        saved = client.download_segmentation(seg, tmp_path / "labels.nii.gz")
        assert saved.stat().st_size > 100 and saved.read_bytes()[:2] == b"\x1f\x8b"
        job = client.import_files("trial", [tmp_path / "a" / "case.nii.gz"])
        assert job["id"] and client.import_status(job["id"])["id"] == job["id"]
        with pytest.raises(PortalError) as caught:
            client.open([world.mine], user_id=_user_id(world.db, "vic"))
        assert caught.value.status == 403
    with PortalClient(server, "ptk_not-a-token") as stranger, pytest.raises(PortalError) as caught:
        stranger.studies()
    assert caught.value.status == 401
    with PortalClient(server, _token(world.db, "root", ["admin"])) as admin:
        vic = _user_id(world.db, "vic")
        assert admin.open([world.mine], user_id=vic)["user_id"] == vic
    assert json.dumps(command)  # plain JSON types throughout
