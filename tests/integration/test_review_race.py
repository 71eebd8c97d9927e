"""Two reviewers race on one review item through a real HTTP server, many times over.

Each round both clients read the item's version, then send a transition carrying it at
the same moment (a barrier releases both threads). The compare-and-set on the version
must let exactly one through and tell the other with a 409 naming the winner; nothing
is lost (the item's version and its event history count every success), and the
database never answers "database is locked" (a 5xx) on SQLite or PostgreSQL. The pane's
quick review form (a Dash callback, no version sent) is raced the same way.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from flask import Flask
from sqlalchemy import func, select
from werkzeug.serving import make_server

from portal.app import create_app
from portal.config import Settings
from portal.db.models import ReviewEvent, ReviewItem, Role
from portal.db.session import Database
from portal.services.importer import import_paths
from tests.conftest import PASSWORD, make_user
from tests.integration.test_importer import _case, _import_settings
from tests.support.dash_calls import pane_decision

ROUNDS = 50  # the issue asks for at least 50
PANE_ROUNDS = 20
TIMEOUT_S = 30

# From each state, the move both experts try (a cycle: start, escalate, resolve, reopen).
NEXT_MOVE = {
    "unreviewed": ("in-review", ""),
    "in-review": ("flagged-for-expert", "boundary unclear"),
    "flagged-for-expert": ("approved", "checked slice by slice"),
    "approved": ("in-review", "second look"),
}


@dataclass
class Live:
    url: str
    app: Flask
    study_id: int


@pytest.fixture()
def live(settings: Settings, db: Database, tmp_path: Path) -> Iterator[Live]:
    """The real app behind werkzeug's threaded server on 127.0.0.1 (one thread per request)."""
    [study_id] = import_paths(db, _import_settings(settings), "trial", [_case(tmp_path)]).imported
    make_user(db, "amy", Role.EXPERT, ["trial"])
    make_user(db, "ben", Role.EXPERT, ["trial"])
    app = create_app(settings)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Live(f"http://127.0.0.1:{server.server_port}", app, study_id)
    finally:
        server.shutdown()
        thread.join(timeout=10)
        app.extensions["portal"].db.dispose()


def _client(live: Live, username: str) -> tuple[requests.Session, str]:
    """A signed-in HTTP client and its CSRF token (read from its own session cookie)."""
    http = requests.Session()
    form = http.get(f"{live.url}/login", timeout=TIMEOUT_S).text
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', form)
    assert match, form
    response = http.post(
        f"{live.url}/login",
        data={"username": username, "password": PASSWORD, "csrf_token": match.group(1)},
        allow_redirects=False,
        timeout=TIMEOUT_S,
    )
    assert response.status_code == 302, response.text
    # Sign-in rotates the token; the signed (not encrypted) session cookie carries it.
    serializer = live.app.session_interface.get_signing_serializer(live.app)  # type: ignore[attr-defined]
    token = serializer.loads(http.cookies["portal_session"])["csrf"]
    return http, str(token)


def _item(http: requests.Session, live: Live) -> dict[str, object]:
    response = http.get(f"{live.url}/api/v1/studies/{live.study_id}/review", timeout=TIMEOUT_S)
    assert response.status_code == 200, response.text
    return next(i for i in response.json()["items"] if str(i["key"]).startswith("seg:"))


def _race(
    writes: dict[str, tuple[requests.Session, str, dict[str, object]]], url: str
) -> dict[str, requests.Response]:
    """POST every client's body to `url` at the same moment; their answers by client."""
    barrier = threading.Barrier(len(writes))
    answers: dict[str, requests.Response] = {}

    def write(name: str) -> None:
        http, token, body = writes[name]
        barrier.wait(timeout=TIMEOUT_S)
        answers[name] = http.post(
            url, json=body, headers={"X-CSRF-Token": token}, timeout=TIMEOUT_S
        )

    threads = [threading.Thread(target=write, args=(name,)) for name in writes]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=TIMEOUT_S)
    return answers


def test_two_experts_racing_on_one_item_lose_nothing(live: Live, db: Database) -> None:
    clients = {name: _client(live, name) for name in ("amy", "ben")}
    start = _item(clients["amy"][0], live)
    item_id = start["id"]
    assert start["version"] == 1
    successes = 0
    for round_no in range(ROUNDS):
        seen = {name: _item(http, live) for name, (http, _) in clients.items()}
        assert seen["amy"]["version"] == seen["ben"]["version"] == 1 + successes
        to, reason = NEXT_MOVE[str(seen["amy"]["state"])]
        answers = _race(
            {
                name: (http, token, {"to": to, "reason": reason, "version": seen[name]["version"]})
                for name, (http, token) in clients.items()
            },
            f"{live.url}/api/v1/review-items/{item_id}/transitions",
        )
        codes = sorted(r.status_code for r in answers.values())
        assert codes == [200, 409], (
            round_no,
            {n: (r.status_code, r.text) for n, r in answers.items()},
        )
        winner = next(n for n, r in answers.items() if r.status_code == 200)
        loser = next(n for n, r in answers.items() if r.status_code == 409)
        told = answers[loser].json()
        assert told["code"] == "conflict"
        assert f"changed by {winner}" in told["error"] and "reload" in told["error"], told
        successes += 1

    final = _item(clients["amy"][0], live)
    assert final["version"] == 1 + successes == 1 + ROUNDS
    transitions = [h for h in final["history"] if h["action"] == "transition"]
    assert len(transitions) == successes
    with db.session() as s:
        assert s.scalar(select(ReviewItem.version).where(ReviewItem.id == item_id)) == 1 + ROUNDS
        events = s.scalar(
            select(func.count()).select_from(ReviewEvent).where(ReviewEvent.item_id == item_id)
        )
        assert events == successes


def test_two_experts_pressing_one_pane_at_once_are_both_told(live: Live, db: Database) -> None:
    """The pane's review panel sends the version it shows: two experts pressing a decision
    on the same item at the same moment get one save and one clear refusal, never a
    500, and every save is in the history."""
    clients = {name: _client(live, name) for name in ("amy", "ben")}
    item_id = _item(clients["amy"][0], live)["id"]
    deps = clients["amy"][0].get(f"{live.url}/_dash-dependencies", timeout=TIMEOUT_S).json()
    successes = 0
    for round_no in range(PANE_ROUNDS):
        item = _item(clients["amy"][0], live)
        # Open or approved: flag it; flagged: resolve it as approved (both need a note).
        button = "pane-approve" if item["state"] == "flagged-for-expert" else "pane-flag"
        body = pane_decision(deps, live.study_id, item_id, int(item["version"]), button, "race")
        answers = _race(
            {name: (h, token, body) for name, (h, token) in clients.items()},
            f"{live.url}/_dash-update-component",
        )
        assert all(r.status_code == 200 for r in answers.values()), (
            round_no,
            {n: (r.status_code, r.text[:300]) for n, r in answers.items()},
        )
        messages = {
            n: r.json()["response"][
                json.dumps({"study": live.study_id, "type": "pane-message"}, separators=(",", ":"))
            ]["children"]
            for n, r in answers.items()
        }
        saved = [n for n, m in messages.items() if m.startswith("Saved")]
        assert len(saved) == 1, (round_no, messages)
        [loser] = set(messages) - set(saved)
        assert f"changed by {saved[0]}" in messages[loser], messages
        successes += 1

    final = _item(clients["amy"][0], live)
    assert final["version"] == 1 + successes
    with db.session() as s:
        events = s.scalar(
            select(func.count()).select_from(ReviewEvent).where(ReviewEvent.item_id == item_id)
        )
    assert events == successes  # a read or a transition per save, nothing lost
