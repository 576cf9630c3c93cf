"""The tables are written twice in ivr/store/: the current schema the queries use
(`schema.metadata`) and the frozen migration steps (`migrations.MIGRATIONS`) that build it.
Alembic's `compare_metadata` reads what `Store.migrate()` built on a fresh database and lists
every difference (tables, columns, types, nullability, indexes, unique constraints): there must be
none, on SQLite and on PostgreSQL. A difference is fixed in the metadata when only the DDL has it,
or by a new migration step when the database lacks it: a released step is never edited.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from ivr.store import LATEST_VERSION, Store, schema
from tests.pg import fresh_schema_url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database: a SQLite file, or a new schema on the PostgreSQL server."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'drift.db'}"
    else:
        yield fresh_schema_url(request.getfixturevalue("pg_database"))


def _every_table() -> sa.MetaData:
    """The store's tables and its schema_version bookkeeping (a MetaData of its own) in one."""
    combined = sa.MetaData()
    for metadata in (schema.metadata, schema.schema_version_metadata):
        for table in metadata.tables.values():
            table.to_metadata(combined)
    return combined


def _differences(url: str, version: int | None = None) -> list[Any]:
    """Alembic's differences between the migrated database and the store's table metadata."""
    store = Store(url)
    try:
        store.migrate(version)
        with store.engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            return list(compare_metadata(context, _every_table()))
    finally:
        store.engine.dispose()


def test_migrated_schema_equals_the_tables_the_queries_use(database_url: str) -> None:
    assert _differences(database_url) == []


def test_the_comparison_sees_a_missing_migration_step(database_url: str) -> None:
    # One step short of the latest, the database lacks what the last step adds: the check is
    # not blind (it would catch a metadata column nobody wrote a migration for).
    differences = _differences(database_url, LATEST_VERSION - 1)
    assert differences, "a schema one migration behind compared equal to the metadata"
    assert all(d[0] in ("add_column", "add_table", "add_index") for d in _flat(differences))


def _flat(differences: list[Any]) -> list[Any]:
    # Column-level changes come grouped in lists (one per table).
    out: list[Any] = []
    for d in differences:
        out += d if isinstance(d, list) else [d]
    return out
