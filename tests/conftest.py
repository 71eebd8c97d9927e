"""Shared fixtures: migrated databases (SQLite and a real PostgreSQL), apps and demo data."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from portal.app import create_app
from portal.config import Settings
from portal.db import migrate
from portal.db.models import Role
from portal.db.session import Database
from portal.services import auth
from tests.support.postgres import PostgresCluster, PostgresUnavailable

PASSWORD = "correct horse battery"
_db_counter = itertools.count()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    try:
        cluster = PostgresCluster()
        cluster.start()
    except (PostgresUnavailable, OSError) as exc:
        if os.environ.get("PORTAL_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"PostgreSQL required but unavailable: {exc}")
        pytest.skip(f"PostgreSQL unavailable: {exc}")
    yield cluster
    cluster.stop()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database of each kind, migrated to head by Alembic."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'catalog.db'}"
    else:
        cluster: PostgresCluster = request.getfixturevalue("postgres")
        url = cluster.create_database(f"t{os.getpid()}_{next(_db_counter)}")
    migrate.upgrade(url)
    return url


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    yield database
    database.dispose()


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        secret_key="test-secret",
        preview_max_dim=96,
    )


def make_user(database: Database, name: str, role: Role, projects: list[str] | None = None) -> None:
    with database.session() as s:
        auth.create_user(s, name, PASSWORD, role, projects)


def login(client: FlaskClient, username: str, password: str = PASSWORD) -> None:
    client.get("/login")
    with client.session_transaction() as sess:
        token = sess["csrf"]
    response = client.post(
        "/login", data={"username": username, "password": password, "csrf_token": token}
    )
    assert response.status_code == 302, response.data


def csrf_headers(client: FlaskClient) -> dict[str, str]:
    """The header a cookie-authenticated API write needs: the session's CSRF token."""
    with client.session_transaction() as sess:
        return {"X-CSRF-Token": sess["csrf"]}


@pytest.fixture
def app(settings: Settings) -> Iterator[Flask]:
    """The app on a migrated catalog (each database kind), disposed afterwards."""
    migrate.upgrade(settings.resolved_database_url)
    app = create_app(settings)
    yield app
    app.extensions["portal"].db.dispose()  # no connection left for the garbage collector


def dash_post(client: FlaskClient, payload: dict[str, object]) -> TestResponse:
    """Call a Dash callback as the renderer does, with the session's CSRF header."""
    with client.session_transaction() as sess:
        token = sess["csrf"]
    return client.post("/_dash-update-component", json=payload, headers={"X-CSRF-Token": token})


@pytest.fixture(scope="session")
def demo_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A SQLite catalog with the real demo studies imported once per test session."""
    from portal.cli import prepare_demo

    data = tmp_path_factory.mktemp("demo")
    s = Settings(data_dir=data, secret_key="demo-secret", admin_password=PASSWORD)
    report, _ = prepare_demo(s)
    assert not report.refused, report.refused
    return s


@pytest.fixture(scope="session")
def demo_app(demo_settings: Settings) -> Flask:
    from portal.app import create_app

    app = create_app(demo_settings)
    app.config["TESTING"] = True
    return app
