"""Calls and their events: the per-call flow state, saved by compare-and-swap once per webhook,
what was heard / pressed / said on it, the figures the console reads of them, and the purge.
"""

from __future__ import annotations

import functools
import json
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from ivr.store.database import Database, utc_naive
from ivr.store.errors import StoreError
from ivr.store.records import (
    EVENT_KINDS,
    OUTCOMES,
    CallEvent,
    CallFact,
    CallRecord,
    CallUpdate,
    OutcomeCount,
)
from ivr.store.schema import call_events, calls

_OUTCOME_RANK = {name: len(OUTCOMES) - i for i, name in enumerate(OUTCOMES)}


def _weaker_outcomes(outcome: str) -> list[str]:
    """Outcomes that ``outcome`` may replace (strictly weaker ones)."""
    rank = _OUTCOME_RANK[outcome]
    return [name for name, r in _OUTCOME_RANK.items() if r < rank]


def _check_outcome(outcome: str) -> None:
    if outcome not in _OUTCOME_RANK:
        raise StoreError(f"unknown outcome {outcome!r}; expected one of {', '.join(OUTCOMES)}")


def _weaker_or_none(outcome: str) -> sa.ColumnElement[bool]:
    """SQL for "the row has no outcome yet, or one that ``outcome`` may replace"."""
    return sa.or_(calls.c.outcome.is_(None), calls.c.outcome.in_(_weaker_outcomes(outcome)))


def _outcome_value(outcome: str) -> sa.ColumnElement[Any]:
    """SQL for "set ``outcome`` unless the row already has a stronger one"."""
    _check_outcome(outcome)
    return sa.case((_weaker_or_none(outcome), sa.literal(outcome)), else_=calls.c.outcome)


def _dumps(value: dict[str, Any]) -> str:
    if not isinstance(value, dict):
        raise StoreError(f"expected a dict, got {type(value).__name__}")
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


# Statements of the per-webhook path, built once with bound parameters.
#
# Why: building a Core statement per call (coercions) and generating its cache key (a walk of
# the whole statement) cost more CPU than SQLite's own work. A statement object that is
# reused keeps its memoised cache key, so executing it again only binds the new values.

_CREATE_CALL_COLUMNS = (
    "call_sid", "created_at", "updated_at", "version", "step", "turn", "caller_masked", "state",
    "language", "caller_key",
)
_LOAD_CALL = sa.select(calls).where(calls.c.call_sid == sa.bindparam("p_sid"))
_INSERT_EVENTS = call_events.insert()


@functools.cache
def _save_call_stmt(
    *,
    first_name: bool,
    language: bool,
    outcome: str | None,
    outcome_step: bool,
    transferred: bool,
) -> sa.Update:
    """The compare-and-swap UPDATE of `Store.save_call` for one combination of its options.

    Parameters: ``p_sid``, ``p_expected``, ``p_now``, ``p_state``, ``p_step``, ``p_turn``,
    ``p_reply``, ``p_reply_turn`` and, when their flag is set, ``p_first_name``,
    ``p_language``, ``p_outcome_step``.
    """
    values: dict[str, Any] = {
        "version": calls.c.version + 1,
        "updated_at": sa.bindparam("p_now", type_=calls.c.updated_at.type),
        "state": sa.bindparam("p_state", type_=calls.c.state.type),
        "step": sa.bindparam("p_step", type_=calls.c.step.type),
        "turn": sa.bindparam("p_turn", type_=calls.c.turn.type),
        "last_reply": sa.bindparam("p_reply", type_=calls.c.last_reply.type),
        "last_reply_turn": sa.bindparam("p_reply_turn", type_=calls.c.last_reply_turn.type),
    }
    if first_name:
        values["patient_first_name"] = sa.bindparam(
            "p_first_name", type_=calls.c.patient_first_name.type
        )
    if language:
        values["language"] = sa.bindparam("p_language", type_=calls.c.language.type)
    if outcome is not None:
        values["outcome"] = _outcome_value(outcome)
        if outcome_step:
            values["outcome_step"] = sa.case(
                (
                    _weaker_or_none(outcome),
                    sa.bindparam("p_outcome_step", type_=calls.c.outcome_step.type),
                ),
                else_=calls.c.outcome_step,
            )
    if transferred:
        values["transferred_at"] = sa.func.coalesce(
            calls.c.transferred_at, sa.bindparam("p_now", type_=calls.c.transferred_at.type)
        )
        if outcome is None:
            values["outcome"] = _outcome_value("transferred")
    return (
        calls.update()
        .where(
            calls.c.call_sid == sa.bindparam("p_sid"),
            calls.c.version == sa.bindparam("p_expected"),
        )
        .values(**values)
    )


@functools.cache
def _finish_call_stmts(outcome: str) -> tuple[sa.Update, sa.Update]:
    """`Store.finish_call`'s two UPDATEs for ``outcome``: record it, else only stamp the end.

    Parameters: ``p_sid``, ``p_now``, ``p_outcome_step``."""
    now = sa.bindparam("p_now", type_=calls.c.updated_at.type)
    record = (
        calls.update()
        .where(calls.c.call_sid == sa.bindparam("p_sid"), _weaker_or_none(outcome))
        .values(
            outcome=outcome,
            outcome_step=sa.bindparam("p_outcome_step", type_=calls.c.outcome_step.type),
            updated_at=now,
            ended_at=sa.func.coalesce(calls.c.ended_at, now),
        )
    )
    end_only = (
        calls.update()
        .where(calls.c.call_sid == sa.bindparam("p_sid"), calls.c.ended_at.is_(None))
        .values(ended_at=now, updated_at=now)
    )
    return record, end_only


def _call(row: Any) -> CallRecord:
    m = row._mapping
    return CallRecord(
        call_sid=m["call_sid"],
        version=m["version"],
        step=m["step"],
        turn=m["turn"],
        state=json.loads(m["state"]),
        last_reply=m["last_reply"],
        last_reply_turn=m["last_reply_turn"],
        outcome=m["outcome"],
        caller_masked=m["caller_masked"],
        patient_first_name=m["patient_first_name"],
        language=m["language"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
        ended_at=m["ended_at"],
        outcome_step=m["outcome_step"],
        transferred_at=m["transferred_at"],
    )


def _event(row: Any) -> CallEvent:
    m = row._mapping
    return CallEvent(
        id=m["id"],
        call_sid=m["call_sid"],
        at=m["at"],
        kind=m["kind"],
        step=m["step"],
        text=m["text"],
    )


class Calls:
    """The ``calls`` and ``call_events`` tables."""

    def __init__(self, db: Database) -> None:
        """Work through ``db``; the INSERT of a new call is built once (values bound per call)."""
        self._db = db
        self._create_call_stmt = db.insert_ignoring_conflict(
            calls, {c: sa.bindparam(c, type_=calls.c[c].type) for c in _CREATE_CALL_COLUMNS},
            ["call_sid"],
        )

    def load_call(self, call_sid: str) -> CallRecord | None:
        """The call's row, or None."""
        with self._db.transaction(write=False) as conn:
            row = conn.execute(_LOAD_CALL, {"p_sid": call_sid}).first()
        return None if row is None else _call(row)

    def create_call(
        self,
        call_sid: str,
        *,
        caller_masked: str | None,
        state: dict[str, Any],
        step: str,
        language: str | None = None,
        caller_key: str | None = None,
    ) -> CallRecord:
        """Insert a new call at version 1 / turn 0; if it exists already, return that row.

        ``caller_key`` is a keyed hash of the caller's number (``ivr.insights.caller_key``), so
        repeat callers can be counted without keeping their number beside the figures.
        """
        now = self._db.now()
        dumped = _dumps(state)
        values = {
            "call_sid": call_sid,
            "created_at": now,
            "updated_at": now,
            "version": 1,
            "step": step,
            "turn": 0,
            "caller_masked": caller_masked,
            "state": dumped,
            "language": language,
            "caller_key": caller_key,
        }
        with self._db.transaction() as conn:
            inserted = conn.execute(self._create_call_stmt, values).rowcount == 1
            if not inserted:  # a retried webhook or another process: that row wins
                return _call(conn.execute(_LOAD_CALL, {"p_sid": call_sid}).one())
        # This caller wrote the row, so it is known without reading it back.
        return CallRecord(
            call_sid=call_sid,
            version=1,
            step=step,
            turn=0,
            state=json.loads(dumped),
            last_reply=None,
            last_reply_turn=None,
            outcome=None,
            caller_masked=caller_masked,
            patient_first_name=None,
            language=language,
            created_at=now,
            updated_at=now,
            ended_at=None,
        )

    def save_call(self, call_sid: str, update: CallUpdate) -> bool:
        """Compare-and-swap: write ``update`` only if the row is still at its
        ``expected_version``.

        Returns True and bumps the version by one when this caller won; False when the call is
        unknown or someone else already advanced it. What is written, and what None leaves
        alone: `CallUpdate`.
        """
        rows = [{"call_sid": call_sid, "kind": k, "step": st, "text": t}
                for k, st, t in update.events]
        for row in rows:
            if row["kind"] not in EVENT_KINDS:
                raise StoreError(
                    f"unknown event kind {row['kind']!r}; expected one of {sorted(EVENT_KINDS)}"
                )
        if update.outcome is not None:
            _check_outcome(update.outcome)
        now = self._db.now()
        params: dict[str, Any] = {
            "p_sid": call_sid,
            "p_expected": update.expected_version,
            "p_now": now,
            "p_state": _dumps(update.state),
            "p_step": update.step,
            "p_turn": update.turn,
            "p_reply": update.last_reply,
            "p_reply_turn": update.last_reply_turn,
        }
        if update.patient_first_name is not None:
            params["p_first_name"] = update.patient_first_name
        if update.language is not None:
            params["p_language"] = update.language
        with_outcome_step = update.outcome is not None and update.outcome_step is not None
        if with_outcome_step:
            params["p_outcome_step"] = update.outcome_step
        stmt = _save_call_stmt(
            first_name=update.patient_first_name is not None,
            language=update.language is not None,
            outcome=update.outcome,
            outcome_step=with_outcome_step,
            transferred=update.transferred,
        )
        with self._db.transaction() as conn:
            if conn.execute(stmt, params).rowcount != 1:
                return False
            if rows:
                conn.execute(_INSERT_EVENTS, [row | {"at": now} for row in rows])
        return True

    def finish_call(self, call_sid: str, outcome: str, outcome_step: str | None = None) -> bool:
        """Record the call's end and outcome (unless a stronger outcome is already recorded).

        Strength: booked > transferred > callback > answered > failed > abandoned. ``ended_at``
        is set the first time only. Returns True when this outcome was recorded. Does not bump
        the version.
        """
        _check_outcome(outcome)
        record, end_only = _finish_call_stmts(outcome)
        params = {"p_sid": call_sid, "p_now": self._db.now(), "p_outcome_step": outcome_step}
        with self._db.transaction() as conn:
            won = conn.execute(record, params).rowcount == 1
            if not won:
                conn.execute(end_only, params)
        return won

    def mark_transferred(self, call_sid: str) -> None:
        """The call was handed to a person: stamp ``transferred_at`` (first time only) and set the
        outcome to ``transferred`` unless it is already ``booked``. Does not bump the version."""
        now = self._db.now()
        with self._db.transaction() as conn:
            conn.execute(
                calls.update()
                .where(calls.c.call_sid == call_sid)
                .values(
                    transferred_at=sa.func.coalesce(calls.c.transferred_at, now),
                    outcome=_outcome_value("transferred"),
                    updated_at=now,
                )
            )

    def calls_in_progress(self, limit: int = 100) -> list[CallRecord]:
        """Calls with no outcome and no end yet, newest first (the agents' live view)."""
        stmt = (
            sa.select(calls)
            .where(calls.c.outcome.is_(None), calls.c.ended_at.is_(None))
            .order_by(calls.c.created_at.desc(), calls.c.call_sid)
            .limit(limit)
        )
        with self._db.transaction(write=False) as conn:
            return [_call(r) for r in conn.execute(stmt)]

    def recent_calls(self, since: datetime, limit: int = 100) -> list[CallRecord]:
        """Calls created at or after ``since``, newest first."""
        stmt = (
            sa.select(calls)
            .where(calls.c.created_at >= utc_naive(since))
            .order_by(calls.c.created_at.desc(), calls.c.call_sid)
            .limit(limit)
        )
        with self._db.transaction(write=False) as conn:
            return [_call(r) for r in conn.execute(stmt)]

    def outcome_counts_by_day(self, days: int) -> list[OutcomeCount]:
        """Calls per UTC day and outcome over the last ``days`` days (today included), oldest
        day first; calls without an outcome count under ``None``."""
        start = datetime.combine(
            self._db.now().date() - timedelta(days=max(days, 1) - 1), datetime.min.time()
        )
        day = sa.func.date(calls.c.created_at, type_=sa.Date())
        stmt = (
            sa.select(day.label("day"), calls.c.outcome, sa.func.count().label("n"))
            .where(calls.c.created_at >= start)
            .group_by(day, calls.c.outcome)
        )
        with self._db.transaction(write=False) as conn:
            rows = conn.execute(stmt).all()
        out = []
        for d, outcome, n in rows:
            if isinstance(d, str):  # pragma: no cover - depends on the driver
                d = date.fromisoformat(d[:10])
            elif isinstance(d, datetime):  # pragma: no cover
                d = d.date()
            out.append(OutcomeCount(day=d, outcome=outcome, count=int(n)))
        out.sort(key=lambda c: (c.day, c.outcome is None, c.outcome or ""))
        return out

    def call_facts(self, since: datetime) -> list[CallFact]:
        """Every call started at or after ``since`` (UTC), with the steps it visited, oldest
        first: two reads, whatever the number of calls."""
        since = utc_naive(since)
        call_rows = sa.select(
            calls.c.call_sid, calls.c.created_at, calls.c.outcome, calls.c.transferred_at,
            calls.c.caller_key,
        ).where(calls.c.created_at >= since).order_by(calls.c.created_at, calls.c.call_sid)
        event_rows = (
            sa.select(call_events.c.call_sid, call_events.c.kind, call_events.c.step,
                      call_events.c.text)
            .join(calls, calls.c.call_sid == call_events.c.call_sid)
            .where(calls.c.created_at >= since, call_events.c.kind.in_(("step", "error")))
        )
        steps: dict[str, set[str]] = {}
        gave_up: set[str] = set()
        with self._db.transaction(write=False) as conn:
            rows = conn.execute(call_rows).all()
            for sid, kind, step, text in conn.execute(event_rows):
                if kind == "step" and step:
                    steps.setdefault(sid, set()).add(step)
                elif kind == "error" and (text or "").startswith("gave up"):
                    gave_up.add(sid)
        return [
            CallFact(call_sid=sid, created_at=created, outcome=outcome,
                     transferred=transferred_at is not None or outcome == "transferred",
                     caller_key=key, steps=frozenset(steps.get(sid, ())), gave_up=sid in gave_up)
            for sid, created, outcome, transferred_at, key in rows
        ]

    def add_event(self, call_sid: str, kind: str, step: str | None, text: str | None) -> None:
        """Append an event; ``text`` must already be masked (the store does not mask)."""
        if kind not in EVENT_KINDS:
            raise StoreError(f"unknown event kind {kind!r}; expected one of {sorted(EVENT_KINDS)}")
        with self._db.transaction() as conn:
            conn.execute(
                call_events.insert().values(
                    call_sid=call_sid, at=self._db.now(), kind=kind, step=step, text=text
                )
            )

    def events(self, call_sid: str) -> list[CallEvent]:
        """The call's events in the order they were added."""
        stmt = (
            sa.select(call_events)
            .where(call_events.c.call_sid == call_sid)
            .order_by(call_events.c.at, call_events.c.id)
        )
        with self._db.transaction(write=False) as conn:
            return [_event(r) for r in conn.execute(stmt)]

    def purge_events(self, older_than: timedelta) -> int:
        """Delete call events older than ``older_than`` and scrub calls untouched since then.

        A scrubbed call keeps its outcome, step, masked number and times (the console's history
        and chart) but loses its flow state (the caller's number, the names and birth dates of
        the patients found), its first name and its last TwiML (which spoke them). Bookings are
        kept. Returns the number of events deleted.
        """
        cutoff = self._db.now() - older_than
        with self._db.transaction() as conn:
            removed = conn.execute(call_events.delete().where(call_events.c.at < cutoff)).rowcount
            conn.execute(
                calls.update()
                .where(calls.c.updated_at < cutoff, calls.c.last_reply.is_not(None))
                .values(
                    state="{}",
                    last_reply=None,
                    patient_first_name=None,
                    caller_key=None,
                )
            )
        return removed
