"""Calendar days: "tomorrow", "next Tuesday", "the 5th", "5th of December", "5/12", keyed DDMM.

Rules (docs/understanding.md has the full list):
- a bare weekday ("Tuesday", "on Tuesday") is the first such day after today (never today);
  "this Tuesday" / "coming Tuesday" is the first such day from today on (today included);
- "next Tuesday" is the first such day after today that is not tomorrow; where the British
  calendar-week reading would give a different day (the weekday is 2-6 days ahead in this week)
  the result is marked `sure=False` so the flow reads the date back;
- a day and month without a year that has already passed this year is next year's only when
  that is at most `NEXT_YEAR_DAYS` ahead ("the 5th of January" said in November); otherwise it
  is NotUnderstood("past") (the caller hears that the day has passed), never moved silently;
  a day of the month alone that has passed is next month's (`sure=False` when it passed within
  the last `RECENT_DAYS`: "the 20th" said on the 23rd is read back);
- relative weeks: "a week today", "a week on Monday", "Monday week", "Monday after next",
  "next to next Monday", "in a fortnight", "the week after next" (with a weekday);
- named days of the clinic's calendar ("Christmas Day", "New Year's Eve": `named_days`);
- "this afternoon", "this evening", "tonight" are today; "last Tuesday" is "past";
- a self-correction keeps the last day said ("Tuesday, no, Wednesday": `corrections`);
- numeric dates follow the region: M/D for US, D/M elsewhere; keyed digits are DD, DDMM,
  DDMMYY or DDMMYYYY;
- a weekday that disagrees with the date said with it gives NotUnderstood("weekday_mismatch");
- nothing before today is ever returned (NotUnderstood("past")).
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, timedelta

from flows.understanding.corrections import split_corrections
from flows.understanding.named_days import find_named_days
from flows.understanding.text import (
    canonical,
    is_num,
    is_ord,
    month_of,
    numberize,
    weekday_of,
)
from flows.understanding.types import Answer, Context, NotUnderstood, Understood

_UNITS = {"day": 1, "days": 1, "week": 7, "weeks": 7, "fortnight": 14, "fortnights": 14}
_PARTS = {"morning", "afternoon", "evening", "night"}
NEXT_YEAR_DAYS = 183
"""A passed day and month is next year's only when that is at most this many days ahead."""
RECENT_DAYS = 7
"""A day of the month alone that passed this recently is next month's with `sure=False`."""
MONTH_FIRST_REGIONS = {"US", "PH", "CA-US", "FM", "MH", "PW"}


@dataclass(frozen=True)
class DateFound:
    """A date extracted from tokens, or a reason it is not usable."""

    value: date | None
    reason: str = ""
    sure: bool = True
    used: frozenset[int] = frozenset()


def _valid(y: int, m: int, d: int) -> date | None:
    if 1 <= m <= 12 and 1 <= d <= calendar.monthrange(y, m)[1] and 1 <= y <= 9998:
        return date(y, m, d)
    return None


def resolve_day_month(d: int, m: int, y: int | None, today: date) -> DateFound:
    """Day and month, with or without a year, never in the past."""
    if y is not None:
        if y < 100:
            y += 2000
        found = _valid(y, m, d)
        if found is None:
            return DateFound(None, "no_such_date")
        return DateFound(found) if found >= today else DateFound(None, "past")
    this_year = _valid(today.year, m, d)
    if this_year is not None and this_year >= today:
        return DateFound(this_year)
    for year in (today.year + 1, today.year + 2):
        found = _valid(year, m, d)
        if found is not None:
            if this_year is not None and (found - today).days > NEXT_YEAR_DAYS:
                return DateFound(None, "past")  # "the 3rd of November" on the 23rd
            return DateFound(found)
    return DateFound(None, "no_such_date")


def resolve_day_only(d: int, today: date) -> DateFound:
    """A day of the month alone: this month, or the next month that has that day."""
    if not 1 <= d <= 31:
        return DateFound(None, "no_such_date")
    y, m = today.year, today.month
    this_month = _valid(y, m, d)
    # "the 22nd" said on the 23rd: next month's, but read back (it may be a slip for a past day)
    recent = this_month is not None and 0 < (today - this_month).days <= RECENT_DAYS
    for _ in range(3):
        found = _valid(y, m, d)
        if found is not None and found >= today:
            return DateFound(found, sure=not recent)
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return DateFound(None, "no_such_date")


def resolve_named(m: int, d: int, today: date) -> DateFound:
    """A named day's next occurrence from today on; `sure=False` when it is months away."""
    for year in (today.year, today.year + 1, today.year + 2):
        found = _valid(year, m, d)
        if found is not None and found >= today:
            return DateFound(found, sure=(found - today).days <= NEXT_YEAR_DAYS)
    return DateFound(None, "no_such_date")


def resolve_weekday(
    wd: int, modifier: str | None, today: date, next_week: int, *, weeks_on: int = 0
) -> DateFound:
    """A weekday with an optional "this"/"next" (see the module docstring).

    `modifier` "after_next" ("Monday after next", "next to next Monday") is a week after
    "next Monday", and unsure where that is. `next_week` 2 is "the week after next".
    `weeks_on` adds whole weeks to the bare weekday ("a week on Monday", "Monday week").
    """
    delta = (wd - today.weekday()) % 7
    if next_week:  # "Tuesday next week": in the next calendar week (Monday to Sunday)
        weeks = 7 * int(next_week)
        return DateFound(today + timedelta(days=weeks - today.weekday() + wd))
    if modifier in {"after_next", "after"}:  # a week after "next Monday", as unsure as that
        nxt = resolve_weekday(wd, "next", today, 0)
        sure = nxt.sure and modifier == "after_next"  # "the Monday after" (what?) is read back
        return DateFound(nxt.value + timedelta(days=7) if nxt.value else None, sure=sure)
    if weeks_on:  # said on that weekday, "a week on Monday" may mean a week today: read back
        return DateFound(today + timedelta(days=(delta or 7) + 7 * weeks_on), sure=delta != 0)
    if modifier == "this":
        return DateFound(today + timedelta(days=delta))
    if modifier == "next":
        ambiguous = delta >= 2
        if delta <= 1:
            delta += 7
        return DateFound(today + timedelta(days=delta), sure=not ambiguous)
    return DateFound(today + timedelta(days=delta or 7))


def _numeric(tok: str, region: str, today: date) -> DateFound:
    parts = [int(p) for p in tok.replace("-", "/").split("/")]
    if len(parts[0:1]) and parts[0] > 31 and len(parts) == 3:  # ISO 2026-12-05
        y, m, d = parts
        return resolve_day_month(d, m, y, today)
    a, b = parts[0], parts[1]
    year = parts[2] if len(parts) == 3 else None
    d, m = (b, a) if region.upper() in MONTH_FIRST_REGIONS else (a, b)
    return resolve_day_month(d, m, year, today)


def extract_date(
    toks: list[str],
    ctx: Context,
    skip: frozenset[int] = frozenset(),
    *,
    bare_numbers: bool = True,
) -> DateFound | None:
    """Find a date in canonical tokens; None when the tokens say nothing about a day.

    "The day after Christmas" / "the day before New Year's Eve" shift the day they name.
    A day window is not a day: "after Monday" is the day after, read back; "before
    Christmas", "by Friday", "until the 10th" are NotUnderstood("vague") (asked again).
    """
    for i, t in enumerate(toks):
        if i in skip or t not in _DAY_WINDOW_CUES or not _starts_day(toks, i + 1, ctx.region):
            continue
        if t == "before" and i and toks[i - 1] == "day":
            continue  # "the day before New Year's Eve": a shift, below
        rest = _extract_date(toks, ctx, skip | {i}, bare_numbers=bare_numbers)
        if rest is None or rest.value is None:
            return rest
        if t != "after":
            return DateFound(None, "vague", used=rest.used | {i})
        return DateFound(rest.value + timedelta(days=1), sure=False, used=rest.used | {i})
    for i, t in enumerate(toks):
        if i in skip:
            continue
        shift, width = 0, 0
        if t == "dayafterof" and i + 1 < len(toks):  # not "the day after tomorrow"
            shift, width = 1, 1
        elif t == "day" and i + 1 < len(toks) and toks[i + 1] == "before":
            shift, width = -1, 2
        if not shift:
            continue
        rest = _extract_date(toks, ctx, skip | set(range(i, i + width)), bare_numbers=bare_numbers)
        if rest is None:
            break  # "the day after" alone is the day after tomorrow
        if rest.value is None:
            return rest
        moved = rest.value + timedelta(days=shift)
        if moved < ctx.today:
            return DateFound(None, "past", used=rest.used)
        loose = i and toks[i - 1] in {"some", "any", "a", "one"}  # "some day after Thursday"
        if loose and shift < 0:
            return DateFound(None, "vague", used=rest.used)
        sure = rest.sure and not loose
        return DateFound(moved, sure=sure, used=rest.used | set(range(i, i + width)))
    return _extract_date(toks, ctx, skip, bare_numbers=bare_numbers)


_DAY_WINDOW_CUES = {"before", "after", "until", "till", "by"}


def _starts_day(toks: list[str], i: int, region: str) -> bool:
    """Whether a day is named from token i on ("Monday", "the 5th", "Christmas", "tomorrow")."""
    if i < len(toks) and toks[i] == "the":
        i += 1
    if i >= len(toks):
        return False
    t = toks[i]
    nxt = toks[i + 1] if i + 1 < len(toks) else ""
    if t in {"next", "this"}:
        return weekday_of(nxt) is not None or nxt in {"week", "weeks"}
    if t in {"today", "tomorrow", "dayafter", "dayafterof"} or is_ord(t):
        return True
    if weekday_of(t) is not None or month_of(t) is not None:
        return True
    named = find_named_days(toks[i:], region)
    return bool(named) and min(named[0][2]) == 0


def _extract_date(
    toks: list[str],
    ctx: Context,
    skip: frozenset[int] = frozenset(),
    *,
    bare_numbers: bool = True,
) -> DateFound | None:
    today = ctx.today
    n = len(toks)
    found: list[DateFound] = []
    weekdays: list[tuple[int, str | None, int]] = []
    day_hint: list[DateFound] = []  # day-of-month readings
    used: set[int] = set()

    def tok(i: int) -> str:
        return toks[i] if 0 <= i < n and i not in skip else ""

    named: list[DateFound] = []
    for m, d, idx in find_named_days(toks, ctx.region):
        if idx & skip:
            continue
        if m == 0:  # Eid, Easter: the date moves every year, so ask for it
            return DateFound(None, "movable_day", used=idx)
        r = resolve_named(m, d, today)
        named.append(DateFound(r.value, r.reason, r.sure, used=idx))
    skip = skip.union(*(f.used for f in named)) if named else skip
    weeks_on = 0  # "a week on Monday", "Monday week", "a fortnight on Friday"
    for i in range(n):  # "in 3 days", "two weeks from now", "in a week", "a week today"
        unit = tok(i + 1)
        if unit in _UNITS and (is_num(tok(i)) or tok(i) == "a"):
            count = 1 if tok(i) == "a" else int(tok(i))
            span = timedelta(days=count * _UNITS[unit])
            after = tok(i + 2) if tok(i + 2) not in {"from", "on"} else tok(i + 3)
            joined = tok(i + 2) in {"from", "on"}
            span_used = frozenset({i, i + 1, i + 2} | ({i + 3} if joined else set()))
            if after not in {"today", "now", "tomorrow", "later", "time"}:
                span_used = frozenset({i, i + 1})
            if after in {"today", "now"} or tok(i - 1) == "in" or after in {"later", "time"}:
                return DateFound(today + span, used=span_used)
            if after == "tomorrow":
                return DateFound(today + span + timedelta(days=1), used=span_used)
            if weekday_of(after) is not None and unit.startswith(("week", "fortnight")):
                weeks_on = count * _UNITS[unit] // 7
                skip = skip | {i, i + 1} | ({i + 2} if tok(i + 2) == "on" else set())
                break
            return DateFound(None, "vague")
    next_week: int = 0
    for i in range(n):
        if tok(i) in {"week", "weeks"} and tok(i - 1) == "next":
            next_week = 1
        elif tok(i) == "week" and tok(i + 1) == "after" and tok(i + 2) == "next":
            next_week = 2  # "the week after next": the calendar week after the next one
    if next_week == 2 and not any(weekday_of(t) is not None for t in toks):
        return DateFound(None, "vague")  # a week, not a day: ask which day
    for i in range(n):
        t = tok(i)
        if not t:
            continue
        if t == "today":
            found.append(DateFound(today, used=frozenset({i})))
        elif t == "tomorrow":
            found.append(DateFound(today + timedelta(days=1), used=frozenset({i})))
        elif t in {"dayafter", "dayafterof"}:  # "the day after" alone: after tomorrow
            found.append(DateFound(today + timedelta(days=2), used=frozenset({i})))
        elif t == "past" or (
            t == "last" and (weekday_of(tok(i + 1)) is not None or tok(i + 1) == "week")
        ):
            return DateFound(None, "past", used=frozenset({i}))
        elif t == "this" and i + 1 < n and toks[i + 1] in _PARTS:  # a part may be the time's
            found.append(DateFound(today, used=frozenset({i})))  # "this afternoon": today
        elif weekday_of(t) is not None and len(t) == 3:
            mod = None
            if tok(i - 1) == "next" and tok(i - 2) == "to" and tok(i - 3) == "next":
                mod = "after_next"  # "next to next Monday"
                used.update({i - 1, i - 2, i - 3})
            elif tok(i + 1) == "after" and tok(i + 2) == "next":
                mod = "after_next"  # "Monday after next"
                used.update({i + 1, i + 2})
            elif tok(i + 1) == "after" and i + 2 >= n:
                mod = "after"  # "next Monday. No, the Monday after.": read back
                used.add(i + 1)
            elif (
                tok(i + 1) in {"week", "fortnight"}
                and tok(i + 2) != "after"
                and tok(i - 1) != "next"
            ):
                weeks_on = weeks_on or (1 if tok(i + 1) == "week" else 2)  # "Tuesday fortnight"
                used.add(i + 1)
            for back in (1, 2):
                if mod is not None:
                    break
                if tok(i - back) in {"this", "next"}:
                    mod = tok(i - back)
                    used.add(i - back)
                    break
                if tok(i - back) not in {"on", "the"}:
                    break
            weekdays.append((weekday_of(t) or 0, mod, i))
            used.add(i)
        elif month_of(t) is not None:
            m = month_of(t) or 0
            day_i = None
            for j in (i + 1, i + 2, i - 1, i - 2, i - 3):
                cand = tok(j)
                if (is_num(cand) or is_ord(cand)) and len(cand.rstrip("#")) <= 2:
                    between = toks[min(i, j) + 1 : max(i, j)]
                    if all(b in {"the", "of"} for b in between):
                        day_i = j
                        break
            if day_i is None:
                continue  # "may I book..." or a month alone: not a date
            d = int(tok(day_i).rstrip("#"))
            at = {i, day_i}
            y = None
            for j in (i + 1, i + 2, day_i + 1):
                cand = tok(j)
                if j not in at and is_num(cand) and len(cand) == 4:
                    y, at = int(cand), at | {j}
                    break
            r = resolve_day_month(d, m, y, today)
            found.append(DateFound(r.value, r.reason, r.sure, used=frozenset(at)))
        elif "/" in t or ("-" in t and t[0].isdigit()):
            r = _numeric(t, ctx.region, today)
            found.append(DateFound(r.value, r.reason, r.sure, used=frozenset({i})))
    taken = set().union(*(f.used for f in found)) if found else set()
    for i in range(n):
        t = tok(i)
        if not t or i in taken:
            continue
        day_word = tok(i + 1) == "date" or tok(i - 1) == "date"
        if is_ord(t) or (
            is_num(t) and len(t) <= 2 and (bare_numbers or tok(i - 1) == "the" or day_word)
        ):
            r = resolve_day_only(int(t.rstrip("#")), today)
            day_hint.append(DateFound(r.value, r.reason, r.sure, used=frozenset({i})))
    found.extend(day_hint)
    found.extend(named)
    if not found and not weekdays:
        return None
    all_used = frozenset(used).union(*(f.used for f in found))
    errors = [f for f in found if f.value is None]
    if errors:
        return DateFound(None, errors[0].reason, used=all_used)
    values = {f.value for f in found}
    if len(values) > 1 or len({w for w, _, _ in weekdays}) > 1:
        return DateFound(None, "two_dates", used=all_used)
    if found:
        value = found[0].value
        assert value is not None
        if weekdays and weekdays[0][0] != value.weekday():
            return DateFound(None, "weekday_mismatch", used=all_used)
        return DateFound(value, sure=all(f.sure for f in found), used=all_used)
    wd, mod, _ = weekdays[0]
    r = resolve_weekday(wd, mod, today, next_week, weeks_on=weeks_on)
    return DateFound(r.value, sure=r.sure, used=all_used)


def segment_date(
    segments: list[list[str]], k: int, ctx: Context, *, bare_numbers: bool = True
) -> DateFound | None:
    """The day said in part k of a self-corrected answer (None if it says none).

    A bare number after a correction ("..., no, 3") corrects what came before it: a day of
    the month after a date ("the 2nd, no, 3", "December 4, no, 5"), a time after a time
    ("Thursday at 2, no, 3": no day here, the day stays Thursday); otherwise it is
    NotUnderstood("ambiguous"). `bare_numbers` is for the first part, as in `extract_date`.
    """
    from flows.understanding.times import extract_time

    def read(seg: list[str], bare: bool) -> DateFound | None:
        _t, time_used, _s = extract_time(seg, ctx, None, marked_only=True)
        return extract_date(seg, ctx, time_used, bare_numbers=bare)

    seg = segments[k]
    r = read(seg, bare_numbers and k == 0)
    if r is None and k and any(is_num(t) and len(t) <= 2 for t in seg):
        prev = segments[k - 1]
        if any(is_ord(t) or month_of(t) is not None for t in prev):
            r = read(seg, True)
        elif extract_time(prev, ctx, None, marked_only=True)[0] is None:
            r = DateFound(None, "ambiguous")
    return r


def corrected_date(
    segments: list[list[str]], ctx: Context, *, bare_numbers: bool = True
) -> DateFound | None:
    """The day of the last part of a self-corrected answer that says one (`segment_date`)."""
    for k in range(len(segments) - 1, -1, -1):
        r = segment_date(segments, k, ctx, bare_numbers=bare_numbers)
        if r is not None:
            return r
    return None


def keyed_date(digits: str, ctx: Context) -> DateFound:
    """Keyed DD, DDMM, DDMMYY or DDMMYYYY."""
    today = ctx.today
    if len(digits) in (1, 2):
        return resolve_day_only(int(digits), today)
    if len(digits) in (4, 6, 8):
        d, m = int(digits[:2]), int(digits[2:4])
        y = int(digits[4:]) if len(digits) > 4 else None
        return resolve_day_month(d, m, y, today)
    return DateFound(None, "bad_keyed_date")


def date_tokens(speech: str | None, language: str) -> list[str]:
    """Canonical tokens with number words joined, as the date and time parsers read them."""
    return numberize(canonical(speech, language))


def parse_date(answer: Answer, ctx: Context) -> Understood[date] | NotUnderstood:
    """A calendar day on or after today (see the module docstring for the rules)."""
    try:
        if answer.keyed:
            r = keyed_date(answer.keyed, ctx)
        else:
            toks = date_tokens(answer.speech, ctx.language)
            r = corrected_date(split_corrections(toks), ctx) or DateFound(None, "no_date")
        if r.value is None:
            return NotUnderstood(r.reason or "no_date")
        if r.value < ctx.today:
            return NotUnderstood("past")
        return Understood(r.value, sure=r.sure and not (answer.low_confidence and not answer.keyed))
    except Exception as exc:  # noqa: BLE001 - a parser never raises
        return NotUnderstood(f"error: {type(exc).__name__}")
