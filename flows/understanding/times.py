"""Times of day: "4 pm", "half past ten", "16:30", "morning", keyed HHMM; snapped to the slot grid.

An hour said without am/pm ("4") is resolved with the clinic's opening hours: the reading that
falls inside the hours of `day` (or of any day when no day is known) wins.
Time windows ("between 2 and 3", "from 10 to 12", "after 4", "before noon", "not before 11",
"no later than 3") are ranges like the parts of the day (`find_window`). A self-correction
("3, no, 4 p.m.") keeps the last time said (`corrections`).
Exact times snap to the nearest slot on a grid that starts at the day's first opening time
(at midnight when the day is unknown or closed); a tie snaps to the earlier slot.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, time

from flows.understanding.corrections import corrected
from flows.understanding.text import canonical, numberize
from flows.understanding.types import Answer, Context, NotUnderstood, TimeOfDay, Understood

PARTS_OF_DAY = {
    "morning": TimeOfDay(time(8, 0), time(12, 0)),
    "afternoon": TimeOfDay(time(12, 0), time(17, 0)),
    "evening": TimeOfDay(time(17, 0), time(21, 0)),
    "night": TimeOfDay(time(17, 0), time(21, 0)),
}
_PM_HINT = {"afternoon": "pm", "evening": "pm", "night": "pm", "morning": "am"}


_PAST_TO = {1, 5, 10, 15, 20, 25, 30}
_NOT_CLOCK = {"day", "days", "week", "weeks", "month", "months", "year", "years", "hours",
              "people", "patients", "kids", "children"}  # fmt: skip


@dataclass(frozen=True)
class _Clock:
    hour: int
    minute: int
    meridiem: str | None  # "am", "pm" or None
    used: frozenset[int]
    before: int = 0  # minutes before `hour`: "quarter to one" is (1, 0, before=15)


def _minute_token(tok: str) -> int | None:
    if tok.isdigit() and len(tok) <= 2 and 0 <= int(tok) <= 59:
        return int(tok)
    return None


def _hour_token(tok: str) -> int | None:
    if tok.isdigit() and len(tok) <= 2 and 0 <= int(tok) <= 24:
        return int(tok)
    return None


def _phrase_clock(toks: list[str], hour: int, minute: int, before: int, used: set[int]) -> _Clock:
    """A "half past ten" / "ten to one" clock, with an am/pm/o'clock said after it."""
    meridiem = None
    j = max(used) + 1
    while j < len(toks) and toks[j] in {"oclock", "am", "pm", "sharp"}:
        meridiem = toks[j] if toks[j] in {"am", "pm"} else meridiem
        used.add(j)
        j += 1
    return _Clock(hour, minute, meridiem, frozenset(used), before=before)


def _clock_at(toks: list[str], i: int, marked_only: bool) -> _Clock | None:
    """A clock time starting at token i, or None."""
    n = len(toks)
    t = toks[i]
    nxt = toks[i + 1] if i + 1 < n else ""
    if nxt in _NOT_CLOCK and not (nxt == "hours" and len(t) >= 3):
        return None
    if t == "noon":
        return _Clock(12, 0, "pm", frozenset({i}))
    if t == "midnight":
        return _Clock(0, 0, "am", frozenset({i}))
    if ":" in t or ("." in t and t.replace(".", "").isdigit()):
        hh, mm = t.replace(".", ":").split(":")
        return _Clock(int(hh), int(mm), None, frozenset({i}))
    if t in {"halfpast", "quarterpast", "quarterto", "half"} and _hour_token(nxt) is not None:
        hour = int(nxt)
        if t == "quarterto":  # the hour is resolved (am/pm, open hours) before subtracting
            return _phrase_clock(toks, hour, 0, 15, {i, i + 1})
        return _phrase_clock(toks, hour, 15 if t == "quarterpast" else 30, 0, {i, i + 1})
    if t.isdigit() and len(t) in (3, 4) and not marked_only and 0 <= int(t) <= 2359:
        return _Clock(int(t) // 100, int(t) % 100, None, frozenset({i}))
    m = _minute_token(t)
    j = i + 2 if nxt in {"minutes", "minute", "mins"} else i + 1  # "ten (minutes) to one"
    rel = toks[j] if j < n else ""
    if m is not None and rel in {"past", "to", "after", "till", "before"} and m in _PAST_TO:
        h = _hour_token(toks[j + 1]) if j + 1 < n else None
        used = set(range(i, j + 2))
        if h is not None and rel in {"past", "after"}:
            return _phrase_clock(toks, h, m, 0, used)
        if h is not None and rel in {"to", "till", "before"}:
            return _phrase_clock(toks, h, 0, m, used)
    if nxt in {"minutes", "minute", "mins"}:  # "in 10 minutes" is not a time of day
        return None
    h = _hour_token(t)
    if h is None:
        return None
    used = {i}
    minute = 0
    j = i + 1
    if (
        j < n
        and toks[j] in {"oh", "o", "zero"}
        and j + 1 < n
        and toks[j + 1].isdigit()
        and len(toks[j + 1]) == 1
    ):
        minute, used = int(toks[j + 1]), used | {j, j + 1}
        j += 2
    elif j < n and toks[j] == "hundred":
        used.add(j)
        j += 1
    elif (
        j < n
        and _minute_token(toks[j]) is not None
        and toks[j] != "0"
        and (int(toks[j]) >= 10 or (toks[j].startswith("0") and len(toks[j]) == 2))
    ):
        minute, used = int(toks[j]), used | {j}
        j += 1
    meridiem = None
    marked = len(used) > 1
    while j < n and toks[j] in {"oclock", "am", "pm", "hours", "sharp"}:
        if toks[j] in {"am", "pm"}:
            meridiem = toks[j]
        used.add(j)
        marked = True
        j += 1
    prev = toks[i - 1] if i > 0 else ""
    if prev in {"at", "around", "about", "by"} and not toks[i].endswith("#"):
        marked = True
        used.add(i - 1)
    if prev in {"oclock", "morning", "afternoon", "evening", "night"} and i > 0:
        marked = marked or prev == "oclock"
    if marked_only and not marked:
        return None
    return _Clock(h, minute, meridiem, frozenset(used))


def _open_on(ctx: Context, day: date | None, t: time) -> bool:
    if day is not None:
        return any(s <= t < e for s, e in ctx.hours.on(day))
    return any(s <= t < e for ranges in ctx.hours.ranges.values() for s, e in ranges)


def _resolve(clock: _Clock, hint: str | None, ctx: Context, day: date | None) -> tuple[time, bool]:
    """The 24-hour time meant; `sure` False when it was a guess.

    A time "to" the hour ("quarter to one") resolves the hour first (1 -> 13 in clinic hours)
    and then steps back (12:45), so it is never read as 00:45.
    """
    h, m = clock.hour, clock.minute

    def at(hour: int) -> time:
        minutes = (hour * 60 + m - clock.before) % (24 * 60)
        return time(minutes // 60, minutes % 60)

    if h == 24:
        h = 0
    meridiem = clock.meridiem or hint
    if h > 12 or h == 0:
        return at(h), True
    if meridiem == "pm":
        return at(h if h == 12 else h + 12), True
    if meridiem == "am":
        return at(0 if h == 12 else h), True
    if h == 12:
        return at(12), True
    am, pm = at(h), at(h + 12)
    am_open, pm_open = _open_on(ctx, day, am), _open_on(ctx, day, pm)
    if am_open != pm_open:
        return (am if am_open else pm), True
    return (am if 7 <= am.hour <= 11 else pm), False


_DAY_START, _DAY_END = time(8, 0), time(21, 0)  # the span of the parts of the day
_RANGE_CUES = {"between", "from"}
_RANGE_JOIN = {"and", "to", "till", "until", "til"}
# Open-ended windows: cue tokens -> which side the clock is ("start": after it, "end": before it).
_OPEN_CUES: dict[tuple[str, ...], str] = {
    ("no", "earlier", "than"): "start", ("not", "earlier", "than"): "start",
    ("not", "before"): "start", ("not", "until"): "start", ("not", "till"): "start",
    ("any", "time", "after"): "start", ("anytime", "after"): "start",
    ("later", "than"): "start", ("after",): "start", ("from",): "start",
    ("no", "later", "than"): "end", ("not", "later", "than"): "end", ("not", "after"): "end",
    ("earlier", "than"): "end", ("before",): "end", ("until",): "end", ("till",): "end",
}  # fmt: skip


def _clock_in(toks: list[str], start: int, stop: int) -> _Clock | None:
    """A clock said exactly in toks[start:stop] (indices of the whole list)."""
    part = toks[start:stop]
    if not part:
        return None
    c = _clock_at(part, 0, False)
    if c is None or max(c.used) != len(part) - 1 or c.hour > 24 or c.minute > 59:
        return None
    return _Clock(c.hour, c.minute, c.meridiem, frozenset(start + k for k in c.used), c.before)


def _clock_end(toks: list[str], start: int) -> int:
    """Where a clock starting at `start` ends (exclusive), as `_clock_at` reads it."""
    c = _clock_at(toks, start, False) if start < len(toks) else None
    return max(c.used) + 1 if c is not None and min(c.used) >= start else start


def find_window(
    toks: list[str], ctx: Context, day: date | None, skip: frozenset[int] = frozenset()
) -> tuple[TimeOfDay | NotUnderstood | None, frozenset[int], bool]:
    """A time window in canonical tokens: (range or None, token indices used, sure).

    "between 2 and 3" / "from 10 to 12": both ends, the second resolved to the first reading
    after the first end (an am/pm said on the second end counts for both when it fits: "between
    11 and 1 p.m." is 11:00-13:00); "after 4", "not before 11": from the time to the end of
    the evening (21:00); "before noon", "no later than 3": from the start of the morning (08:00)
    to the time. Ends are not snapped to the slot grid; the slot finder intersects the range
    with what is free. A minute count before the cue ("20 after 3", "10 before 4") is a clock,
    not a window.
    """
    n = len(toks)
    hint = next((_PM_HINT[t] for t in toks if t in _PM_HINT), None)
    for i in range(n):
        if i in skip:
            continue
        t = toks[i]
        if t in _RANGE_CUES:
            join = next((c for c in range(i + 2, min(n, i + 6)) if toks[c] in _RANGE_JOIN), None)
            a = _clock_in(toks, i + 1, join) if join is not None else None
            b = _clock_in(toks, join + 1, _clock_end(toks, join + 1)) if a and join else None
            if a is not None and b is not None and join is not None:
                used = frozenset({i, join}) | a.used | b.used
                if used & skip:
                    continue
                if a.meridiem is None and b.meridiem is not None:
                    fits = a.hour <= b.hour or b.hour == 12
                    a = _Clock(a.hour, a.minute, b.meridiem if fits else None, a.used, a.before)
                    if not fits and b.meridiem == "pm" and a.hour <= 12:
                        a = _Clock(a.hour, a.minute, "am", a.used, a.before)
                start, sure = _resolve(a, hint, ctx, day)
                end = _after(b, start, hint)
                if end is None:
                    return NotUnderstood("bad_window"), used, False
                return TimeOfDay(start, end), used, sure
        if t in _POST_CUES and i > 0:  # Urdu: the cue follows the time ("4 بجے کے بعد")
            got = _post_window(toks, i, ctx, day, hint)
            if got is not None and not (got[1] & skip):
                return got
        if i > 0 and _minute_token(toks[i - 1]) is not None and t in {"after", "before", "till"}:
            continue  # "20 after 3" is a clock
        for cue, side in _OPEN_CUES.items():
            if tuple(toks[i : i + len(cue)]) != cue:
                continue
            at = i + len(cue)
            c = _clock_in(toks, at, _clock_end(toks, at))
            if c is None or (c.used & skip):
                break
            moment, sure = _resolve(c, hint, ctx, day)
            used = frozenset(range(i, at)) | c.used
            if side == "start":
                end = _DAY_END if moment < _DAY_END else time(23, 59)
                return TimeOfDay(moment, end), used, sure
            if moment == time(0, 0):
                return NotUnderstood("bad_window"), used, False
            return TimeOfDay(_DAY_START if moment > _DAY_START else time(0, 0), moment), used, sure
    return None, frozenset(), True


_POST_CUES = {"post_after", "post_before", "post_between", "post_until"}


def _clock_before(toks: list[str], stop: int) -> _Clock | None:
    """The clock that ends just before `stop` ("4 بجے" before "کے بعد")."""
    for start in range(max(0, stop - 3), stop):
        c = _clock_in(toks, start, stop)
        if c is not None:
            return c
    return None


def _post_window(
    toks: list[str], i: int, ctx: Context, day: date | None, hint: str | None
) -> tuple[TimeOfDay | NotUnderstood, frozenset[int], bool] | None:
    """Urdu order: "4 بجے کے بعد" (after 4), "11 سے پہلے" (before 11), "2 سے 3 کے درمیان" /
    "2 سے 3 بجے تک" (from 2 to 3)."""
    cue = toks[i]
    b = _clock_before(toks, i)
    if b is None:
        return None
    if cue in {"post_between", "post_until"}:
        k = min(b.used) - 1
        if k >= 1 and toks[k] == "se":
            a = _clock_before(toks, k)
            if a is not None:
                used = frozenset({i, k}) | a.used | b.used
                start, sure = _resolve(a, hint, ctx, day)
                end = _after(b, start, hint)
                if end is None:
                    return NotUnderstood("bad_window"), used, False
                return TimeOfDay(start, end), used, sure
        if cue == "post_between":
            return None
    moment, sure = _resolve(b, hint, ctx, day)
    used = frozenset({i}) | b.used
    if cue == "post_after":
        return TimeOfDay(moment, _DAY_END if moment < _DAY_END else time(23, 59)), used, sure
    if moment == time(0, 0):
        return NotUnderstood("bad_window"), used, False
    return TimeOfDay(_DAY_START if moment > _DAY_START else time(0, 0), moment), used, sure


def _after(clock: _Clock, start: time, hint: str | None) -> time | None:
    """The end of a window: the reading of `clock` that comes first after `start`."""
    h, m = clock.hour % 24, clock.minute
    meridiem = clock.meridiem
    if h > 12 or h == 0 or meridiem is not None:
        if meridiem == "pm" and h < 12:
            h += 12
        if meridiem == "am" and h == 12:
            h = 0
        readings = [h]
    else:
        readings = [h, h + 12] if h < 12 else [12]
    for hour in readings:
        minutes = hour * 60 + m - clock.before
        if 0 < minutes < 24 * 60 and minutes > start.hour * 60 + start.minute:
            return time(minutes // 60, minutes % 60)
    return None


def snap(t: time, ctx: Context, day: date | None) -> time:
    """The nearest slot start on the grid (from the day's first opening time, or midnight)."""
    step = max(1, ctx.slot_minutes)
    origin = 0
    if day is not None and ctx.hours.on(day):
        first = min(s for s, _ in ctx.hours.on(day))
        origin = first.hour * 60 + first.minute
    minutes = t.hour * 60 + t.minute
    k, rest = divmod(minutes - origin, step)
    if rest * 2 > step:
        k += 1
    snapped = min(max(origin + k * step, 0), 23 * 60 + 59)
    return time(snapped // 60, snapped % 60)


def extract_time(
    toks: list[str],
    ctx: Context,
    day: date | None,
    skip: frozenset[int] = frozenset(),
    *,
    marked_only: bool = False,
) -> tuple[TimeOfDay | NotUnderstood | None, frozenset[int], bool]:
    """Find a time in canonical tokens: (value or None, token indices used, sure).

    A window ("between 2 and 3") wins over the clocks inside it; it counts as marked.
    """
    window = find_window(toks, ctx, day, skip)
    if window[0] is not None:
        return window
    hint = next((_PM_HINT[t] for t in toks if t in _PM_HINT), None)
    clocks: list[_Clock] = []
    i = 0
    while i < len(toks):
        if i not in skip:
            c = _clock_at(toks, i, marked_only)
            if c is not None and not (c.used & skip):
                clocks.append(c)
                i = max(c.used) + 1
                continue
        i += 1
    if clocks:
        c = clocks[0]
        if len({(x.hour, x.minute, x.meridiem, x.before) for x in clocks}) > 1:
            return NotUnderstood("two_times"), c.used, False
        if c.hour > 24 or c.minute > 59:
            return NotUnderstood("no_such_time"), c.used, False
        t, sure = _resolve(c, hint, ctx, day)
        snapped = snap(t, ctx, day)
        return TimeOfDay(snapped), c.used, sure and snapped == t
    used = frozenset(i for i, t in enumerate(toks) if t in PARTS_OF_DAY and i not in skip)
    parts = {toks[i] for i in used}
    if len({PARTS_OF_DAY[p] for p in parts}) > 1:
        return NotUnderstood("two_parts_of_day"), used, False
    if parts:
        return PARTS_OF_DAY[parts.pop()], used, True
    return None, frozenset(), True


def keyed_time(
    digits: str, ctx: Context, day: date | None
) -> Understood[TimeOfDay] | NotUnderstood:
    """Keyed HHMM (24-hour), HMM, or an hour alone (resolved like a spoken hour)."""
    if len(digits) in (3, 4):
        h, m = int(digits[:-2]), int(digits[-2:])
        if h > 23 or m > 59:
            return NotUnderstood("no_such_time")
        t = time(h, m)
        snapped = snap(t, ctx, day)
        return Understood(TimeOfDay(snapped), sure=snapped == t)
    if len(digits) in (1, 2) and int(digits) <= 23:
        t, _sure = _resolve(_Clock(int(digits), 0, None, frozenset()), None, ctx, day)
        return Understood(TimeOfDay(snap(t, ctx, day)))
    return NotUnderstood("bad_keyed_time")


def parse_time(
    answer: Answer, ctx: Context, *, day: date | None = None
) -> Understood[TimeOfDay] | NotUnderstood:
    """An exact time (snapped to the slot grid) or a part of the day ("morning")."""
    try:
        if answer.keyed:
            return keyed_time(answer.keyed, ctx, day)
        toks = numberize(canonical(answer.speech, ctx.language))

        def read(seg: list[str]) -> tuple[TimeOfDay | NotUnderstood | None, frozenset[int], bool]:
            found = extract_time(seg, ctx, day)
            return found if found[0] is not None else None  # type: ignore[return-value]

        value, _used, sure = corrected(toks, read) or (None, frozenset(), True)
        if value is None:
            return NotUnderstood("no_time")
        if isinstance(value, NotUnderstood):
            return value
        return Understood(value, sure=sure and not answer.low_confidence)
    except Exception as exc:  # noqa: BLE001 - a parser never raises
        return NotUnderstood(f"error: {type(exc).__name__}")
