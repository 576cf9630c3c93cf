"""The store: the only package that touches the database (SQLAlchemy 2.x Core, SQLite or
PostgreSQL). Callers use `Store` and the records below; the parts behind it, one per concern:

- ``database``: the engine, short transactions, lock bounds, naive-UTC "now", health checks
- ``schema``: the current tables (what queries use); ``migrations``: the frozen, append-only
  steps that build them, and ``migrate()``
- ``records``: vocabularies, the frozen records returned, `CallUpdate`; ``errors``
- ``calls``: calls (compare-and-swap per turn), their events, figures and purge
- ``bookings``: the outbox; ``holds``: slot claims (holds on offered times, booking claims)
- ``booking_texts``: confirmation texts; ``callbacks``: callback requests
- ``access``: console agents and API keys; ``clinicea_tokens``: the shared Clinicea login
- ``reminders``: appointment reminders, the days planned, texting opt-outs
- ``call_pacing``: the account-wide pace of outbound calls (one queue for every process)
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import date, datetime, timedelta
from typing import Any

from flows.reminders.plan import DayPlan
from ivr.booking_payload import BookingPayload
from ivr.store import migrations
from ivr.store.access import Access
from ivr.store.booking_texts import BookingTexts
from ivr.store.bookings import Bookings
from ivr.store.call_pacing import CallPacing
from ivr.store.callbacks import Callbacks
from ivr.store.calls import Calls
from ivr.store.clinicea_tokens import CliniceaTokens, TokenSlot
from ivr.store.database import (
    DEFAULT_LOCK_SECONDS,
    STATEMENT_TIMEOUT_FACTOR,
    Database,
    normalize_url,
    system_now,
    utc_naive,
)
from ivr.store.errors import AlreadyExists, SlotUnavailable, StoreError, StoreUnavailable
from ivr.store.holds import BOOKED_CLAIM_TTL, Holds
from ivr.store.migrations import LATEST_VERSION, MIGRATIONS
from ivr.store.records import (
    BOOKING_STATUSES,
    CALLBACK_STATUSES,
    EVENT_KINDS,
    OPEN_BOOKING_STATUSES,
    OUTCOMES,
    TEXT_STATUSES,
    AgentRecord,
    ApiKeyRecord,
    BookingRecord,
    CallbackRecord,
    CallEvent,
    CallFact,
    CallRecord,
    CallUpdate,
    OutcomeCount,
    ReminderItemRecord,
    ReminderRecord,
    TextRecord,
)
from ivr.store.reminders import Reminders

__all__ = [
    "BOOKED_CLAIM_TTL",
    "BOOKING_STATUSES",
    "CALLBACK_STATUSES",
    "DEFAULT_LOCK_SECONDS",
    "EVENT_KINDS",
    "LATEST_VERSION",
    "MIGRATIONS",
    "OPEN_BOOKING_STATUSES",
    "OUTCOMES",
    "STATEMENT_TIMEOUT_FACTOR",
    "TEXT_STATUSES",
    "AgentRecord",
    "AlreadyExists",
    "ApiKeyRecord",
    "BookingRecord",
    "CallEvent",
    "CallFact",
    "CallRecord",
    "CallUpdate",
    "CallbackRecord",
    "OutcomeCount",
    "ReminderItemRecord",
    "ReminderRecord",
    "SlotUnavailable",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "TextRecord",
    "TokenSlot",
    "normalize_url",
]


class Store:
    """All database access, one method per operation; each concern's part does the work.

    Thread-safe; one instance per process is enough. Build it in the process that uses it
    (after a gunicorn fork), or call ``store.engine.dispose(close=False)`` in the child, so
    processes never share a connection.
    """

    def __init__(
        self,
        url: str,
        *,
        now: Callable[[], datetime] | None = None,
        echo: bool = False,
        lock_seconds: float | None = None,
    ) -> None:
        """`lock_seconds` (default `DEFAULT_LOCK_SECONDS`) bounds every wait for a lock:
        SQLite's busy timeout, PostgreSQL's `lock_timeout` (its `statement_timeout` is
        `STATEMENT_TIMEOUT_FACTOR` times it). Past it the operation fails (`OperationalError`)
        instead of holding a webhook past Twilio's 15 s."""
        self._clock = now or system_now
        # The parts read the time through this store's `now`, so replacing it on an instance
        # (tests move a store's clock that way) moves every part's clock, as before the split.
        self._db = db = Database(url, now=lambda: self.now(), echo=echo,
                                 lock_seconds=lock_seconds)
        self.url, self.dialect, self.engine = db.url, db.dialect, db.engine
        self._calls = Calls(db)
        self._holds = Holds(db)
        self._bookings = Bookings(db, self._holds)
        self._texts = BookingTexts(db)
        self._callbacks = Callbacks(db)
        self._access = Access(db)
        self._tokens = CliniceaTokens(db)
        self._reminders = Reminders(db)
        self._pacing = CallPacing(db)

    # -- the database --------------------------------------------------------------------------

    def now(self) -> datetime:
        """The current time as naive UTC (from the injected clock)."""
        return utc_naive(self._clock())

    def dispose(self) -> None:
        """Close every pooled connection."""
        self._db.dispose()

    def ping(self) -> bool:
        """Health check: True when ``SELECT 1`` answers."""
        return self._db.ping()

    def writable(self) -> bool:
        """Health check: True when a one-row write commits (`Database.writable`)."""
        return self._db.writable()

    def schema_version(self) -> int:
        """The highest applied migration (0 for an empty database)."""
        return migrations.current_version(self._db)

    def migrate(self, target: int | None = None) -> int:
        """Create or upgrade the schema up to ``target`` (default: latest); returns the version.
        Idempotent and safe to run from several processes at once (`migrations.migrate`)."""
        return migrations.migrate(self._db, target)

    # -- calls and their events (ivr.store.calls) ----------------------------------------------

    def load_call(self, call_sid: str) -> CallRecord | None:
        """The call's row, or None."""
        return self._calls.load_call(call_sid)

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
        """Insert a new call at version 1 / turn 0; if it exists already, return that row."""
        return self._calls.create_call(call_sid, caller_masked=caller_masked, state=state,
                                       step=step, language=language, caller_key=caller_key)

    def save_call(self, call_sid: str, update: CallUpdate) -> bool:
        """Compare-and-swap one turn's `CallUpdate`; True when this caller won."""
        return self._calls.save_call(call_sid, update)

    def finish_call(self, call_sid: str, outcome: str, outcome_step: str | None = None) -> bool:
        """Record the call's end and outcome (unless a stronger one is recorded already)."""
        return self._calls.finish_call(call_sid, outcome, outcome_step)

    def mark_transferred(self, call_sid: str) -> None:
        """The call was handed to a person (``transferred_at``, outcome unless ``booked``)."""
        self._calls.mark_transferred(call_sid)

    def calls_in_progress(self, limit: int = 100) -> list[CallRecord]:
        """Calls with no outcome and no end yet, newest first (the agents' live view)."""
        return self._calls.calls_in_progress(limit)

    def recent_calls(self, since: datetime, limit: int = 100) -> list[CallRecord]:
        """Calls created at or after ``since``, newest first."""
        return self._calls.recent_calls(since, limit)

    def outcome_counts_by_day(self, days: int) -> list[OutcomeCount]:
        """Calls per UTC day and outcome over the last ``days`` days, oldest day first."""
        return self._calls.outcome_counts_by_day(days)

    def call_facts(self, since: datetime) -> list[CallFact]:
        """Every call started at or after ``since`` (UTC) with the steps it visited."""
        return self._calls.call_facts(since)

    def add_event(self, call_sid: str, kind: str, step: str | None, text: str | None) -> None:
        """Append an event; ``text`` must already be masked (the store does not mask)."""
        self._calls.add_event(call_sid, kind, step, text)

    def events(self, call_sid: str) -> list[CallEvent]:
        """The call's events in the order they were added."""
        return self._calls.events(call_sid)

    def purge_events(self, older_than: timedelta) -> int:
        """Delete old call events and scrub calls untouched since; the number of events."""
        return self._calls.purge_events(older_than)

    # -- the shared Clinicea token (ivr.store.clinicea_tokens) ---------------------------------

    def locked_token(self, account: str, *,
                     wait: float | None) -> AbstractContextManager[TokenSlot]:
        """Hold ``account``'s token row for the block, so one process logs in at a time."""
        return self._tokens.locked_token(account, wait=wait)

    # -- the bookings outbox (ivr.store.bookings) ----------------------------------------------

    def enqueue_booking(
        self, key: str, *, call_sid: str | None, payload: BookingPayload
    ) -> BookingRecord:
        """Insert a pending booking, or return the existing one with the same key."""
        return self._bookings.enqueue_booking(key, call_sid=call_sid, payload=payload)

    def claim_booking(self, key: str, *, worker: str, lease: timedelta) -> BookingRecord | None:
        """Atomically claim one booking for ``worker``; the row only if this caller won."""
        return self._bookings.claim_booking(key, worker=worker, lease=lease)

    def claim_due_bookings(
        self, *, worker: str, lease: timedelta, limit: int = 10
    ) -> list[BookingRecord]:
        """Claim up to ``limit`` due bookings, oldest due first."""
        return self._bookings.claim_due_bookings(worker=worker, lease=lease, limit=limit)

    def mark_booked(self, key: str, appointment_id: str | None, patient_id: str | None) -> bool:
        """Clinicea stored it: status ``booked`` with its IDs; the lease is released."""
        return self._bookings.mark_booked(key, appointment_id, patient_id)

    def mark_retry(self, key: str, error: str, next_attempt_at: datetime) -> bool:
        """This attempt failed transiently: status ``retrying`` until ``next_attempt_at``."""
        return self._bookings.mark_retry(key, error, next_attempt_at)

    def mark_failed(self, key: str, reason: str) -> bool:
        """Given up: status ``failed``; a person must act."""
        return self._bookings.mark_failed(key, reason)

    def mark_handled(self, key: str, by: str) -> bool:
        """An agent dealt with a booking the outbox could not: status ``handled``."""
        return self._bookings.mark_handled(key, by)

    def get_booking(self, key_or_id: str | int) -> BookingRecord | None:
        """A booking by idempotency key (str) or id (int)."""
        return self._bookings.get_booking(key_or_id)

    def bookings(
        self, statuses: Iterable[str] | None = None, limit: int = 100
    ) -> list[BookingRecord]:
        """Bookings, newest first, optionally only those in ``statuses``."""
        return self._bookings.bookings(statuses, limit)

    def outbox_depth(self) -> dict[str, int]:
        """Number of bookings per status (every status present, zero included)."""
        return self._bookings.outbox_depth()

    def oldest_pending_age(self) -> timedelta | None:
        """Age of the oldest booking not yet settled; None when there is none."""
        return self._bookings.oldest_pending_age()

    def enqueue_claimed_booking(
        self, key: str, *, call_sid: str | None, payload: BookingPayload, doctor_id: str,
        steps: Sequence[datetime],
    ) -> BookingRecord:
        """`enqueue_booking` and the claim on the booking's time, in one transaction."""
        return self._bookings.enqueue_claimed_booking(
            key, call_sid=call_sid, payload=payload, doctor_id=doctor_id, steps=steps)

    # -- slot claims (ivr.store.holds) ---------------------------------------------------------

    def hold_slots(self, call_sid: str, doctor_id: str, slots: Sequence[Sequence[datetime]],
                   until: datetime) -> list[bool]:
        """Hold times for a call until ``until`` (UTC); per slot, whether it is now held."""
        return self._holds.hold_slots(call_sid, doctor_id, slots, until)

    def release_holds(self, call_sid: str,
                      keep: Iterable[tuple[str, datetime]] = ()) -> int:
        """End the call's holds except ``keep`` (doctor_id, grid start); returns how many."""
        return self._holds.release_holds(call_sid, keep)

    def held_by(self, call_sid: str) -> list[tuple[str, datetime]]:
        """The call's live holds as (doctor_id, grid start), earliest first."""
        return self._holds.held_by(call_sid)

    def claimed_times(self, doctor_id: str, start: datetime, end: datetime, *,
                      except_call: str | None = None) -> list[datetime]:
        """Grid starts in [start, end) the doctor has held or claimed by someone else, live."""
        return self._holds.claimed_times(doctor_id, start, end, except_call=except_call)

    def purge_claims(self) -> int:
        """Delete expired holds and claims; returns how many."""
        return self._holds.purge_claims()

    # -- callbacks (ivr.store.callbacks) -------------------------------------------------------

    def add_callback(
        self,
        call_sid: str | None,
        phone_e164: str | None,
        phone_masked: str | None,
        reason: str | None,
    ) -> int:
        """Record an open callback request (one per call); returns its id."""
        return self._callbacks.add_callback(call_sid, phone_e164, phone_masked, reason)

    def callbacks(self, status: str | None = "open", limit: int = 100) -> list[CallbackRecord]:
        """Callback requests (``status=None``: all), oldest first."""
        return self._callbacks.callbacks(status, limit)

    def mark_callback_handled(self, callback_id: int, by: str) -> bool:
        """Close an open callback request; False if unknown or already handled."""
        return self._callbacks.mark_callback_handled(callback_id, by)

    # -- agents and API keys (ivr.store.access) ------------------------------------------------

    def add_agent(self, username: str, password_hash: str) -> AgentRecord:
        """Create a console agent; raises AlreadyExists for a taken username."""
        return self._access.add_agent(username, password_hash)

    def get_agent(self, username: str) -> AgentRecord | None:
        """The agent, or None."""
        return self._access.get_agent(username)

    def set_agent_password(self, username: str, password_hash: str) -> bool:
        """Replace an agent's password hash; False when the agent is unknown."""
        return self._access.set_agent_password(username, password_hash)

    def record_login_failure(
        self, username: str, lock_until: datetime | None = None
    ) -> AgentRecord | None:
        """Count a failed login (atomically); lock the agent until ``lock_until`` if given."""
        return self._access.record_login_failure(username, lock_until)

    def reset_login_failures(self, username: str) -> None:
        """After a good login: zero the counter and lift any lock."""
        self._access.reset_login_failures(username)

    def count_login_attempt(self, username: str, now: datetime) -> AgentRecord | None:
        """Count a sign-in attempt before its password is checked (atomically)."""
        return self._access.count_login_attempt(username, now)

    def lock_agent(self, username: str, until: datetime) -> None:
        """Refuse the agent's sign-in until ``until`` (a lock already set is kept)."""
        self._access.lock_agent(username, until)

    def end_agent_sessions(self, username: str) -> bool:
        """Raise the agent's session generation: every session signed in before ends."""
        return self._access.end_agent_sessions(username)

    def remove_agent(self, username: str) -> bool:
        """Delete a console agent (its sessions end with it); False when unknown."""
        return self._access.remove_agent(username)

    def revoke_api_keys(self, name: str) -> int:
        """Delete every API key called ``name``; returns how many there were."""
        return self._access.revoke_api_keys(name)

    def add_api_key(self, name: str, key_hash: str) -> ApiKeyRecord:
        """Store an API key by its hash; raises AlreadyExists for a duplicate hash."""
        return self._access.add_api_key(name, key_hash)

    def find_api_key(self, key_hash: str) -> ApiKeyRecord | None:
        """The key with that hash (stamping ``last_used_at``), or None."""
        return self._access.find_api_key(key_hash)

    # -- confirmation texts (ivr.store.booking_texts) ------------------------------------------

    def queue_text(self, booking_key: str, *, to_e164: str, from_e164: str, body: str) -> bool:
        """Queue the booking's confirmation text (status ``waiting``); True if newly queued."""
        return self._texts.queue_text(booking_key, to_e164=to_e164, from_e164=from_e164,
                                      body=body)

    def claim_due_texts(self, *, worker: str, limit: int = 20) -> list[TextRecord]:
        """Mark up to ``limit`` due texts of booked bookings ``sending``; the rows this won."""
        return self._texts.claim_due_texts(worker=worker, limit=limit)

    def finish_text(
        self,
        booking_key: str,
        status: str,
        *,
        error: str | None = None,
        twilio_sid: str | None = None,
        next_attempt_at: datetime | None = None,
        from_statuses: Iterable[str] = ("sending",),
    ) -> bool:
        """Record what Twilio answered (``sent`` / ``retrying`` / ``failed`` / ``unknown``)."""
        return self._texts.finish_text(booking_key, status, error=error, twilio_sid=twilio_sid,
                                       next_attempt_at=next_attempt_at,
                                       from_statuses=from_statuses)

    def expire_sending_texts(self, older_than: timedelta, error: str) -> int:
        """Texts ``sending`` for longer than ``older_than``: ``unknown`` (never resent)."""
        return self._texts.expire_sending_texts(older_than, error)

    def get_text(self, booking_key: str) -> TextRecord | None:
        """The booking's confirmation text, or None (none was queued)."""
        return self._texts.get_text(booking_key)

    def texts(self, statuses: Iterable[str], limit: int = 100) -> list[TextRecord]:
        """Texts in ``statuses``, newest first."""
        return self._texts.texts(statuses, limit)

    # -- appointment reminders (ivr.store.reminders) -------------------------------------------

    def plan_reminders(
        self, plan: DayPlan, *, call_at: Mapping[str, datetime | None] | None = None
    ) -> int:
        """Write a day's planned reminders (insert-or-ignore on both keys, one transaction per
        reminder) and mark the day planned; returns how many were new."""
        return self._reminders.plan_reminders(plan, call_at=call_at)

    def reminder_day_planned(self, day: date) -> bool:
        """Whether `day`'s reminder run has been planned."""
        return self._reminders.reminder_day_planned(day)

    def claim_reminders(self, channel: str, now: datetime, worker_id: str,
                        limit: int = 20) -> list[ReminderRecord]:
        """Mark up to `limit` due ``queued`` reminders of `channel` ``sending`` (`now`:
        clinic-local); the rows this won."""
        return self._reminders.claim_reminders(channel, now, worker_id, limit)

    def reminder_sent(self, key: str, channel: str, sid: str | None) -> bool:
        """Twilio took the call or text: keep its SID, ``sending`` -> ``sent``."""
        return self._reminders.reminder_sent(key, channel, sid)

    def reminder_failed(self, key: str, error: str, retry_at: datetime | None) -> bool:
        """Not sent: ``queued`` again until `retry_at`, or ``failed`` when it is None."""
        return self._reminders.reminder_failed(key, error, retry_at)

    def expire_sending_reminders(self, older_than: timedelta) -> int:
        """Reminders left ``sending`` by a stopped sender: calls ``failed``, texts ``sent``."""
        return self._reminders.expire_sending_reminders(older_than)

    def get_reminder(self, key: str) -> ReminderRecord | None:
        """The reminder with that key, or None."""
        return self._reminders.get_reminder(key)

    def reminder_by_call(self, call_sid: str) -> ReminderRecord | None:
        """The reminder whose call has that SID, or None."""
        return self._reminders.reminder_by_call(call_sid)

    def reminder_by_phone(self, phone: str, since_day: date) -> ReminderRecord | None:
        """The newest reminder of a number on or after `since_day`, or None."""
        return self._reminders.reminder_by_phone(phone, since_day)

    def reminders(self, day: date | None = None, statuses: Iterable[str] | None = None,
                  limit: int = 500) -> list[ReminderRecord]:
        """Reminders, optionally of one day and in some statuses; by day, in planned order."""
        return self._reminders.reminders(day, statuses, limit)

    def reminder_items(self, key: str) -> list[ReminderItemRecord]:
        """The appointments of a reminder, in time order."""
        return self._reminders.reminder_items(key)

    def reminder_counts(self, day: date) -> dict[str, int]:
        """Reminders of `day` per status (zero included)."""
        return self._reminders.reminder_counts(day)

    def set_reminder_status(
        self,
        key: str,
        status: str,
        *,
        only_from: Collection[str] | None = None,
        channel: str | None = None,
        answered_by: str | None = None,
        reply: str | None = None,
        note: str | None = None,
        next_attempt_at: datetime | None = None,
    ) -> bool:
        """Set a reminder's status, only from `only_from` when given (conditional update)."""
        return self._reminders.set_reminder_status(
            key, status, only_from=only_from, channel=channel, answered_by=answered_by,
            reply=reply, note=note, next_attempt_at=next_attempt_at)

    def mark_reminder_handled(self, key: str, by: str) -> bool:
        """The desk acted on a reminder; False when unknown or already handled."""
        return self._reminders.mark_reminder_handled(key, by)

    def opt_out(self, phone: str, source: str) -> bool:
        """A number wants no more texts; True when newly opted out."""
        return self._reminders.opt_out(phone, source)

    def opt_in(self, phone: str) -> bool:
        """Lift a number's opt-out; True when it was opted out."""
        return self._reminders.opt_in(phone)

    def opted_out(self, phones: Iterable[str]) -> set[str]:
        """Which of these numbers are opted out."""
        return self._reminders.opted_out(phones)

    # -- the pace of outbound calls (ivr.store.call_pacing) ------------------------------------

    def take_call_slot(self, key: str, now: datetime, gap: timedelta) -> datetime:
        """Reserve the next moment a call of account `key` may start (naive UTC): `max(now,
        next_at)`, atomically; the account's next call then goes `gap` later. Shared by every
        process on the database."""
        return self._pacing.take_call_slot(key, now, gap)
