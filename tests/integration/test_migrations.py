"""The schema comes only from Alembic, matches the models, and round-trips."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from portal.db import migrate
from portal.db.base import Base


def test_models_match_migrations(database_url: str) -> None:
    engine = create_engine(database_url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    assert diff == []


def test_downgrade_and_upgrade_round_trip(database_url: str) -> None:
    migrate.downgrade(database_url, "base")
    engine = create_engine(database_url)
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    migrate.upgrade(database_url)
    tables = set(inspect(engine).get_table_names())
    engine.dispose()
    assert {"users", "studies", "segmentations", "labels", "review_events"} <= tables


def test_alembic_check_reports_nothing_to_generate(database_url: str) -> None:
    command.check(migrate.alembic_config(database_url))
