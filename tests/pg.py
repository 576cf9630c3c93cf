"""PostgreSQL for tests: find the server, or skip with a reason; throwaway databases and schemas.

Tests ask for the ``pg_database`` fixture (``tests/conftest.py``) and make a schema in it::

    from tests.pg import fresh_schema_url

    def test_something(pg_database):
        url = fresh_schema_url(pg_database)   # a new empty schema, first on the search_path

The server is ``IVR_TEST_POSTGRES_URL`` when set, else
``postgresql+psycopg://postgres@127.0.0.1:5432/test``. When it cannot be reached, every test that
asks for it is skipped with "PostgreSQL not reachable at HOST:PORT: <error>" (never silently).
``pg_database`` creates one uniquely named database ``ivr_test_<hex>`` per test session and drops
it at the end, so the shared ``test`` database is left untouched.
"""

from __future__ import annotations

import os
import uuid
from functools import lru_cache
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def server_url() -> str:
    """The PostgreSQL URL tests use to reach the server (a maintenance database on it)."""
    url = os.environ.get("IVR_TEST_POSTGRES_URL", DEFAULT_URL)
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            url = "postgresql+psycopg://" + url[len(prefix) :]
    return url


@lru_cache(maxsize=1)
def _probe(url: str) -> str | None:
    """None when the server answers, else the one-line error."""
    engine = sa.create_engine(url, connect_args={"connect_timeout": 3}, poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        return None
    except Exception as exc:  # any failure means "skip, with this reason"
        return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    finally:
        engine.dispose()


def postgres_url_or_skip() -> str:
    """The server URL, or ``pytest.skip`` with the reason it is not reachable."""
    url = server_url()
    error = _probe(url)
    if error is not None:
        parsed = make_url(url)
        pytest.skip(f"PostgreSQL not reachable at {parsed.host}:{parsed.port or 5432}: {error}")
    return url


def create_database(url: str | None = None) -> str:
    """Create a uniquely named empty database; returns its URL."""
    url = url or postgres_url_or_skip()
    name = f"ivr_test_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    finally:
        engine.dispose()
    return make_url(url).set(database=name).render_as_string(hide_password=False)


def drop_database(database_url: str, server: str | None = None) -> None:
    """Drop a database made by ``create_database`` (disconnecting whoever is still on it)."""
    name = make_url(database_url).database
    engine = sa.create_engine(
        server or server_url(), isolation_level="AUTOCOMMIT", poolclass=sa.NullPool
    )
    try:
        with engine.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        engine.dispose()


def fresh_schema_url(database_url: str) -> str:
    """Create a new empty schema in ``database_url``; returns a URL whose search_path is it."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(database_url, poolclass=sa.NullPool)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    finally:
        engine.dispose()
    sep = "&" if "?" in database_url else "?"
    return f"{database_url}{sep}options={quote(f'-csearch_path={schema}')}"
