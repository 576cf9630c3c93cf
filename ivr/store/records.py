"""What crosses the store's boundary: the vocabularies it checks (outcomes, statuses, event
kinds), the frozen records it returns (never SQLAlchemy rows) and `CallUpdate`, the one value a
webhook turn hands to `Store.save_call`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from ivr.booking_payload import BookingPayload

# --------------------------------------------------------------------------------------------
# Vocabulary

#: Call outcomes, strongest first: a stronger outcome is never replaced by a weaker one.
# "answered": the caller asked something that is not a booking (hours, address, next
# appointment) and was told.
OUTCOMES: tuple[str, ...] = (
    "booked", "transferred", "callback", "answered", "failed", "abandoned",
)

EVENT_KINDS = frozenset({"heard", "pressed", "said", "silence", "step", "transfer", "error"})

BOOKING_STATUSES: tuple[str, ...] = (
    "pending",
    "booking",
    "booked",
    "retrying",
    "failed",
    "handled",
)
#: Statuses of bookings the outbox still has to deal with.
OPEN_BOOKING_STATUSES: tuple[str, ...] = ("pending", "booking", "retrying")

CALLBACK_STATUSES: tuple[str, ...] = ("open", "handled")

#: Confirmation text statuses (``TextRecord``); the last two need an agent.
TEXT_STATUSES: tuple[str, ...] = ("waiting", "sending", "sent", "retrying", "failed", "unknown")


# --------------------------------------------------------------------------------------------
# Records returned to callers (never Row objects)


@dataclass(frozen=True)
class CallRecord:
    """One call's row: the flow state and what the agents' live view shows."""

    call_sid: str
    version: int
    step: str
    turn: int
    state: dict[str, Any]
    last_reply: str | None
    last_reply_turn: int | None
    outcome: str | None
    caller_masked: str | None
    patient_first_name: str | None
    language: str | None
    created_at: datetime
    updated_at: datetime
    ended_at: datetime | None
    outcome_step: str | None = None
    transferred_at: datetime | None = None

    @property
    def in_progress(self) -> bool:
        """True while the call has neither an outcome nor an end time."""
        return self.outcome is None and self.ended_at is None


@dataclass(frozen=True)
class CallEvent:
    """One thing that happened on a call (text already masked by whoever added it)."""

    id: int
    call_sid: str
    at: datetime
    kind: str
    step: str | None
    text: str | None


@dataclass(frozen=True)
class BookingRecord:
    """One outbox row: a booking accepted from a caller, and how far it got in Clinicea.

    ``attempts > 0`` means an earlier attempt may have reached Clinicea (look it up before
    posting again).
    """

    id: int
    idempotency_key: str
    call_sid: str | None
    created_at: datetime
    updated_at: datetime
    status: str
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    payload: BookingPayload | None  # None: the stored JSON is not a readable payload
    appointment_id: str | None
    patient_id: str | None
    claimed_by: str | None
    claimed_until: datetime | None
    failure_reason: str | None = None
    handled_by: str | None = None
    handled_at: datetime | None = None


@dataclass(frozen=True)
class CallbackRecord:
    """A caller asked to be called back (console only: holds the full number)."""

    id: int
    call_sid: str | None
    created_at: datetime
    phone_masked: str | None
    phone_e164: str | None
    reason: str | None
    status: str
    handled_by: str | None
    handled_at: datetime | None


@dataclass(frozen=True)
class AgentRecord:
    """A console user; the store keeps the password hash the caller computed."""

    id: int
    username: str
    password_hash: str
    created_at: datetime
    failed_logins: int
    locked_until: datetime | None
    session_generation: int | None = 0  # v4: raised at logout; older sessions no longer count


@dataclass(frozen=True)
class ApiKeyRecord:
    """An API key, known only by its hash."""

    id: int
    name: str
    key_hash: str
    created_at: datetime
    last_used_at: datetime | None


@dataclass(frozen=True)
class TextRecord:
    """The confirmation text of one booking (v8): queued with it, sent once it is booked.

    ``status``: ``waiting`` (for the booking, or for the send pass), ``sending`` (handed to
    Twilio: recorded before the request), ``sent``, ``retrying`` (Twilio said it did not take
    it), ``failed`` (Twilio refused it) or ``unknown`` (no answer from Twilio recorded: never
    resent on its own, an agent decides).
    """

    booking_key: str
    created_at: datetime
    updated_at: datetime
    status: str
    attempts: int
    next_attempt_at: datetime | None
    to_e164: str
    from_e164: str
    body: str
    twilio_sid: str | None
    last_error: str | None
    claimed_by: str | None
    sending_since: datetime | None


@dataclass(frozen=True)
class CallFact:
    """What the History page's figures need of one call (``ivr.insights``)."""

    call_sid: str
    created_at: datetime  # UTC, naive
    outcome: str | None
    transferred: bool
    caller_key: str | None
    steps: frozenset[str]  # every step the call visited (its "step" events)
    gave_up: bool  # the bot gave up at some step after repeated tries


@dataclass(frozen=True)
class OutcomeCount:
    """Calls started on one UTC day with one outcome (``None``: still in progress / unknown)."""

    day: date
    outcome: str | None
    count: int

    def __iter__(self) -> Iterator[Any]:
        """Unpack as ``(day, outcome, count)``."""
        return iter((self.day, self.outcome, self.count))


#: One event of a turn as `CallUpdate.events` carries it: (kind, step, masked text).
EventRow = tuple[str, str | None, str | None]


@dataclass(frozen=True)
class CallUpdate:
    """One turn's change to a call, for `Store.save_call` (compare-and-swap).

    Written only if the row is still at ``expected_version``. ``patient_first_name``,
    ``language`` and ``outcome`` leave their column unchanged when None; an outcome never
    replaces a stronger one, and ``outcome_step`` is recorded only with an outcome. The turn's
    ``events`` and ``transferred`` (as `Store.mark_transferred`) are written in the same
    transaction, and only when this turn wins: one commit per webhook.
    """

    expected_version: int
    state: dict[str, Any]
    step: str
    turn: int
    last_reply: str | None
    last_reply_turn: int | None
    patient_first_name: str | None = None
    outcome: str | None = None
    outcome_step: str | None = None
    language: str | None = None
    events: tuple[EventRow, ...] = ()
    transferred: bool = False


@dataclass(frozen=True)
class ReminderRecord:
    """One appointment reminder (v10): a patient's appointments of one day, how they were
    reminded and what they answered (docs/reminders.md).

    ``status``: `flows.reminders.status.STATUSES`. ``channel``: the channel the next send uses
    while ``queued``, then the one that delivered it. ``next_attempt_at`` is clinic-local (the
    calling schedule's time); ``created_at``, ``updated_at``, ``sending_since`` and
    ``handled_at`` are UTC. ``payload``: the stored `reminder_to_json` (parse it with
    `flows.reminders.plan.reminder_from_json`).
    """

    key: str
    day: date
    patient_id: str | None
    first_name: str | None
    phone_e164: str
    phone_masked: str | None
    channels: tuple[str, ...]
    status: str
    payload: dict[str, Any]
    channel: str | None
    call_sid: str | None
    sms_sid: str | None
    answered_by: str | None
    reply: str | None
    attempts: int
    next_attempt_at: datetime | None
    claimed_by: str | None
    sending_since: datetime | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    handled_by: str | None
    handled_at: datetime | None


@dataclass(frozen=True)
class ReminderItemRecord:
    """One appointment of a reminder (``reminder_items``): at most one reminder a day names it."""

    key: str
    reminder_key: str
    appointment_id: str
    start: datetime  # clinic-local
    doctor_id: str | None
