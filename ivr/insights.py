"""Where calls go wrong: the History page's figures, computed from the store's call facts.

A clinic's manager asks four things of the last two weeks: how far callers get (a funnel from
the answered call to a booking), when the phone is busiest (calls by weekday and hour, to staff
the desk), how many calls the robot settled alone (containment, where a caller who rang back
within a day was not settled), and how often a caller reached a person because the robot did
not understand them. Days and hours are the clinic's own (its time zone), not UTC.

The figures are pure functions of `ivr.store.CallFact` rows; the console draws them in the
browser from `/console/history.json` and `/metrics` publishes the same numbers.
"""

from __future__ import annotations

import hashlib
import hmac
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from ivr.store import CallFact

WINDOW_DAYS = 14
RANG_BACK_WITHIN = timedelta(hours=24)
SETTLED = ("booked",)  # outcomes the robot settled alone

#: The booking funnel, in order: a call reached a stage when it visited one of its steps (or a
#: later stage's). Steps are the call table's (`flows/booking.py`); a test checks they exist.
FUNNEL: tuple[tuple[str, str, frozenset[str]], ...] = (
    ("answered", "Answered", frozenset()),
    ("menu", "Heard the menu", frozenset({"menu", "new_caller"})),
    ("choosing", "Chose a doctor or time", frozenset({
        "same_doctor", "doctor", "slots_find", "slots", "day_slots", "offer_one", "key_date",
        "key_time"})),
    ("readback", "Heard the read-back", frozenset({"confirm"})),
    ("booked", "Booked", frozenset({"booked", "bye_booked", "recorded"})),
)
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def caller_key(secret: str, e164: str | None) -> str | None:
    """A keyed hash of a caller's number: equal for equal numbers, useless without the key."""
    if not e164:
        return None
    return hmac.new(secret.encode(), e164.encode(), hashlib.sha256).hexdigest()[:32]


@dataclass(frozen=True)
class FunnelStage:
    """How many calls reached one stage of the booking."""

    key: str
    label: str
    calls: int


@dataclass(frozen=True)
class Insights:
    """The History page's figures over `days` clinic-local days, today last."""

    days: tuple[date, ...]
    outcomes_by_day: dict[date, Counter[str | None]]
    funnel: tuple[FunnelStage, ...]
    by_hour: tuple[tuple[int, ...], ...]  # [weekday 0=Mon][hour 0-23]
    calls: int
    settled: int  # booked by the robot and no call back from that number within a day
    rang_back: int  # booked calls whose caller rang again within a day
    person_after_failure: int  # the robot gave up understanding, then a person took the call

    @property
    def containment(self) -> float | None:
        """Share of calls the robot settled alone (None without calls)."""
        return self.settled / self.calls if self.calls else None

    @property
    def person_after_failure_share(self) -> float | None:
        """Share of calls that reached a person after the robot failed to understand."""
        return self.person_after_failure / self.calls if self.calls else None

    def to_json(self) -> dict[str, object]:
        """The JSON the History page's charts are drawn from."""
        return {
            "days": [
                {"day": d.isoformat(),
                 "outcomes": {k or "open": n for k, n in self.outcomes_by_day[d].items()},
                 "calls": sum(self.outcomes_by_day[d].values())}
                for d in self.days
            ],
            "funnel": [{"key": s.key, "label": s.label, "calls": s.calls} for s in self.funnel],
            "by_hour": {"weekdays": list(WEEKDAYS), "calls": [list(row) for row in self.by_hour]},
            "calls": self.calls,
            "containment": {"rate": self.containment, "settled": self.settled,
                            "rang_back": self.rang_back},
            "person_after_failure": {"rate": self.person_after_failure_share,
                                     "calls": self.person_after_failure},
        }


def _stage(fact: CallFact) -> int:
    if fact.outcome in SETTLED:
        return len(FUNNEL) - 1
    reached = 0
    for i, (_, _, steps) in enumerate(FUNNEL):
        if steps & fact.steps:
            reached = i
    return reached


def _rang_back(facts: Sequence[CallFact]) -> set[str]:
    """Calls followed, within a day, by another call from the same number."""
    by_caller: dict[str, list[CallFact]] = {}
    for f in facts:
        if f.caller_key:
            by_caller.setdefault(f.caller_key, []).append(f)
    out: set[str] = set()
    for calls in by_caller.values():
        calls.sort(key=lambda f: f.created_at)
        for earlier, later in zip(calls, calls[1:], strict=False):
            if later.created_at - earlier.created_at <= RANG_BACK_WITHIN:
                out.add(earlier.call_sid)
    return out


def compute(facts: Iterable[CallFact], zone: ZoneInfo, today: date,
            days: int = WINDOW_DAYS) -> Insights:
    """The figures for the `days` clinic-local days ending `today` (calls outside are ignored,
    except that a call after the window still marks an earlier one as rung back)."""
    facts = list(facts)
    window = tuple(today - timedelta(days=days - 1 - i) for i in range(days))
    outcomes: dict[date, Counter[str | None]] = {d: Counter() for d in window}
    stages = [0] * len(FUNNEL)
    hours = [[0] * 24 for _ in WEEKDAYS]
    rang_back = _rang_back(facts)
    calls = settled = rung = person = 0
    for f in facts:
        local = f.created_at.replace(tzinfo=UTC).astimezone(zone)
        if local.date() not in outcomes:
            continue
        calls += 1
        outcomes[local.date()][f.outcome] += 1
        for i in range(_stage(f) + 1):
            stages[i] += 1
        hours[local.weekday()][local.hour] += 1
        if f.outcome in SETTLED:
            if f.call_sid in rang_back:
                rung += 1
            else:
                settled += 1
        if f.gave_up and f.transferred:
            person += 1
    funnel = tuple(FunnelStage(k, label, n) for (k, label, _), n in zip(FUNNEL, stages,
                                                                         strict=True))
    return Insights(days=window, outcomes_by_day=outcomes, funnel=funnel,
                    by_hour=tuple(tuple(row) for row in hours), calls=calls, settled=settled,
                    rang_back=rung, person_after_failure=person)


def window_start(zone: ZoneInfo, today: date, days: int = WINDOW_DAYS) -> datetime:
    """The UTC instant the window's first clinic-local day begins."""
    first = datetime.combine(today - timedelta(days=days - 1), datetime.min.time(), zone)
    return first.astimezone(UTC).replace(tzinfo=None)


def local_today(now_utc: datetime, zone: ZoneInfo) -> date:
    """Today in the clinic, from a UTC instant (naive UTC or aware)."""
    if now_utc.tzinfo is None:
        now_utc = now_utc.replace(tzinfo=UTC)
    return now_utc.astimezone(zone).date()
