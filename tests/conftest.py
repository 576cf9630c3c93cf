"""Fixtures any test asks for by name: whole-call rigs, PostgreSQL, and a store per database.

- ``make_rig(now=..., **settings)`` builds the app on the sandbox with a call simulator
  (``tests/calls.py``'s ``rig``) and closes every rig it built when the test ends.
- ``pg_database`` is a throwaway PostgreSQL database for the session (skipped with a reason when
  no server answers); ``fresh_schema_url`` in ``tests/pg.py`` makes an empty schema in it.
- ``db_url`` runs a test twice: on a SQLite file and on a fresh PostgreSQL schema. ``store`` is a
  migrated store there, ``make_store`` builds more (several stores act like several processes),
  and ``clock`` is the clock those stores read.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import responses

from tests.demo import MONDAY_10AM
from tests.pg import create_database, drop_database, fresh_schema_url, postgres_url_or_skip
from tests.store_clock import Clock

if TYPE_CHECKING:
    from ivr.store import Store
    from tests.calls import Rig


@pytest.fixture
def make_rig() -> Iterator[Callable[..., Rig]]:
    """Build rigs with ``make_rig(now=MONDAY_10AM, **settings)``; all are closed after the test."""
    from tests.calls import rig  # imported here: a test without calls does not load the app

    with ExitStack() as opened:

        def build(now: datetime = MONDAY_10AM, **settings: Any) -> Rig:
            return opened.enter_context(rig(now, **settings))

        yield build


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """URL of a throwaway database for this session (skips with a reason if no server)."""
    server = postgres_url_or_skip()
    url = create_database(server)
    try:
        yield url
    finally:
        drop_database(url, server)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database: a SQLite file, or a fresh schema in the session's PostgreSQL DB."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ivr.db'}"
    return fresh_schema_url(request.getfixturevalue("pg_database"))


@pytest.fixture
def clock() -> Clock:
    """The clock the test's stores read for "now"; the test moves it."""
    return Clock()


@pytest.fixture
def make_store(db_url: str, clock: Clock) -> Iterator[Callable[..., Store]]:
    """Build (unmigrated) stores on the test database: several act like several processes."""
    from ivr.store import Store

    made: list[Store] = []

    def make(**kwargs: Any) -> Store:
        store = Store(db_url, now=kwargs.pop("now", clock), **kwargs)
        made.append(store)
        return store

    yield make
    for store in made:
        store.dispose()


@pytest.fixture
def store(make_store: Callable[..., Store]) -> Store:
    """A migrated store on the test database."""
    s = make_store()
    s.migrate()
    return s


@pytest.fixture
def twilio() -> Iterator[responses.RequestsMock]:
    """Twilio's REST API faked: every text and call accepted (tests/twilio_api.py)."""
    from tests.twilio_api import accepting_twilio

    with accepting_twilio() as mock:
        yield mock


@pytest.fixture
def stores(db_url: str, now: list[datetime]) -> Iterator[list[Store]]:
    """Four stores on one database: four worker processes. Their clock is the list `now`
    (a fixture each module using this one defines), so a test moves time by assigning now[0]."""
    from ivr.store import Store

    made = [Store(db_url, now=lambda: now[0]) for _ in range(4)]
    made[0].migrate()
    yield made
    for s in made:
        s.dispose()
