"""Accuracy of the parsers on the utterance table: `python -m tests.understanding_report [path]`.

It measures flows/understanding and lives with the tests, whose data it reads; no package ships
it. The table (tests/data/utterances.tsv) has one utterance per row: parser, language, keyed
digits, speech transcript, confidence, expected value (or `not_understood`), extra arguments
(`day=`, `length=`, `by_digit=`; `kind=` names the pattern class a row tests, e.g.
`correction`; `ask=1` marks a row whose value may be given only unsure, i.e. read back).
All rows are read against the fixed clinic below (Monday 2026-11-23 10:00, Karachi, PK).

Outcomes: right; missed (NotUnderstood where a value was expected: the caller is asked again);
wrong value (a different value, or any value for a row that must be asked again). A wrong value
is "acted on" when the parser was sure (the flow would use it without a read-back), else
"read back". Printed per parser (kind of answer) and per pattern class.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

from flows.domain import Doctor, WeeklyHours
from flows.understanding.dates import parse_date
from flows.understanding.names import parse_doctor, parse_person_name
from flows.understanding.numbers import parse_digits, parse_phone_digits
from flows.understanding.times import parse_time
from flows.understanding.types import Answer, Context, NotUnderstood, TimeOfDay, Understood
from flows.understanding.when import parse_when
from flows.understanding.yesno import (
    parse_choice,
    parse_language_choice,
    parse_yes_no,
    wants_person,
)

DEFAULT_TABLE = Path(__file__).resolve().parent / "data" / "utterances.tsv"
NOT_UNDERSTOOD = "not_understood"
MENU = {"1": ["book", "appointment"], "2": ["cancel", "change"], "0": ["agent", "reception"]}

_WEEK = ((time(9), time(17)),)
TABLE_HOURS = WeeklyHours(
    {0: _WEEK, 1: _WEEK, 2: _WEEK, 3: _WEEK, 4: ((time(9), time(13)),), 5: ((time(10), time(14)),)}
)
TABLE_DOCTORS = (
    Doctor("farooq", "Dr. Nadia Farooq", "main"),
    Doctor("sheikh", "Dr. Omar Sheikh", "main"),
    Doctor("khan", "Dr. Ayesha Khan", "main"),
    Doctor("qureshi", "Dr. Bilal Qureshi", "main"),
)
TABLE_NOW = datetime(2026, 11, 23, 10, 0)


def table_context(language: str = "en") -> Context:
    """The fixed clinic every table row is read against."""
    return Context(TABLE_NOW, "PK", TABLE_HOURS, 20, TABLE_DOCTORS, language)


@dataclass(frozen=True)
class Row:
    """One utterance of the table."""

    parser: str
    language: str
    digits: str
    speech: str
    confidence: float | None
    expected: str
    args: dict[str, str]

    @property
    def answer(self) -> Answer:
        return Answer(self.digits or None, self.speech or None, self.confidence)


def load(path: Path | str = DEFAULT_TABLE) -> list[Row]:
    """Rows of the utterance table."""
    with open(path, encoding="utf-8", newline="") as f:
        rows = []
        for rec in csv.DictReader(f, delimiter="\t"):
            args = dict(a.split("=", 1) for a in (rec.get("args") or "").split(";") if "=" in a)
            conf = rec["confidence"].strip()
            rows.append(
                Row(
                    rec["parser"], rec["language"] or "en", rec["digits"], rec["speech"],
                    float(conf) if conf else None, rec["expected"], args,
                )
            )  # fmt: skip
        return rows


def _tod(t: TimeOfDay) -> str:
    s = t.start.strftime("%H:%M")
    return f"{s}-{t.end.strftime('%H:%M')}" if t.end else s


def render(parser: str, value: Any) -> str:
    """A parsed value as the table writes it."""
    if isinstance(value, bool):
        return ("yes" if value else "no") if parser == "yes_no" else str(value).lower()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, TimeOfDay):
        return _tod(value)
    if isinstance(value, tuple):
        return "|".join(value)
    if parser == "when":
        parts = []
        if value.day:
            parts.append(f"day={value.day.isoformat()}")
        if value.time:
            parts.append(f"time={_tod(value.time)}")
        if value.doctor_id:
            parts.append(f"doctor={value.doctor_id}")
        return ";".join(parts)
    return str(value)


def run(row: Row) -> Understood[Any] | NotUnderstood | bool:
    """Run the row's parser on its answer."""
    ctx = table_context(row.language)
    a = row.answer
    parsers: dict[str, Callable[[], Any]] = {
        "yes_no": lambda: parse_yes_no(a, ctx),
        "choice": lambda: parse_choice(a, ctx, MENU),
        "wants_person": lambda: wants_person(a),
        "date": lambda: parse_date(a, ctx),
        "time": lambda: parse_time(
            a, ctx, day=date.fromisoformat(row.args["day"]) if "day" in row.args else None
        ),
        "when": lambda: parse_when(a, ctx),
        "digits": lambda: parse_digits(
            a, ctx, length=int(row.args["length"]) if "length" in row.args else None
        ),
        "phone": lambda: parse_phone_digits(a, ctx),
        "doctor": lambda: parse_doctor(a, ctx, by_digit=row.args.get("by_digit") == "1"),
        "person_name": lambda: parse_person_name(a, ctx),
        "language": lambda: parse_language_choice(a, ctx),
    }
    return parsers[row.parser]()


@dataclass
class Score:
    """Tally: right, missed (NotUnderstood where a value was expected), wrong value (of which
    `acted_on`: given as sure, so the flow would act on it without reading it back)."""

    total: int = 0
    right: int = 0
    missed: int = 0
    wrong: int = 0
    acted_on: int = 0

    @property
    def accuracy(self) -> float:
        return self.right / self.total if self.total else 1.0


def confident(row: Row) -> bool:
    """Whether the parser gave a value it is sure of (a bool from `wants_person` counts)."""
    got = run(row)
    return isinstance(got, bool) or (isinstance(got, Understood) and got.sure)


def outcome(row: Row) -> tuple[str, str]:
    """("right" | "missed" | "wrong", what the parser gave).

    A row marked `ask=1` is right only when the value is given unsure (it will be read back).
    """
    got = run(row)
    if isinstance(got, bool):
        text = render(row.parser, got)
        return ("right" if text == row.expected else "wrong"), text
    if isinstance(got, NotUnderstood):
        ok = row.expected == NOT_UNDERSTOOD
        return ("right" if ok else "missed"), f"{NOT_UNDERSTOOD}({got.reason})"
    text = render(row.parser, got.value)
    if row.args.get("ask") == "1" and got.sure:
        return "wrong", f"{text} (sure, must be read back)"
    return ("right" if text == row.expected else "wrong"), text + ("" if got.sure else " (unsure)")


def evaluate(
    rows: Iterable[Row], *, by: str = "parser"
) -> tuple[dict[str, Score], list[tuple[Row, str, str]]]:
    """Scores per parser (`by="parser"`) or per pattern class (`by="kind"`, rows without a
    `kind=` count as "other"), and the rows that were not right (row, outcome, got)."""
    scores: dict[str, Score] = {}
    misses: list[tuple[Row, str, str]] = []
    for row in rows:
        kind, got = outcome(row)
        key = row.parser if by == "parser" else row.args.get("kind", "other")
        s = scores.setdefault(key, Score())
        s.total += 1
        setattr(s, kind, getattr(s, kind) + 1)
        if kind == "wrong" and confident(row):
            s.acted_on += 1
        if kind != "right":
            misses.append((row, kind, got))
    return scores, misses


def table(scores: dict[str, Score], heading: str = "parser") -> str:
    """A Markdown accuracy table; "wrong value" is split into acted on / read back."""
    lines = [
        f"| {heading} | rows | right | missed | wrong value (acted on / read back) | accuracy |",
        "|---|---|---|---|---|---|",
    ]

    def line(name: str, s: Score) -> str:
        wrong = f"{s.wrong} ({s.acted_on} / {s.wrong - s.acted_on})"
        return f"| {name} | {s.total} | {s.right} | {s.missed} | {wrong} | {s.accuracy:.1%} |"

    for name, s in sorted(scores.items()):
        lines.append(line(name, s))
    total = Score(
        sum(s.total for s in scores.values()), sum(s.right for s in scores.values()),
        sum(s.missed for s in scores.values()), sum(s.wrong for s in scores.values()),
        sum(s.acted_on for s in scores.values()),
    )  # fmt: skip
    lines.append(line("**all**", total))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Print the accuracy table and the rows that were not right."""
    argv = sys.argv[1:] if argv is None else argv
    rows = load(argv[0] if argv else DEFAULT_TABLE)
    scores, misses = evaluate(rows)
    print(table(scores))
    if any("kind" in r.args for r in rows):
        print()
        print(table(evaluate(rows, by="kind")[0], heading="pattern"))
    print()
    for row, kind, got in misses:
        said = row.speech or f"keyed {row.digits}"
        print(
            f"{kind:6} {row.parser:12} {row.language} {said!r}: expected {row.expected}, got {got}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
