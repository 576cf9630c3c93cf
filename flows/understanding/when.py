"""One utterance giving any of day, time and doctor: "next thursday afternoon with dr omar"."""

from __future__ import annotations

from flows.understanding.dates import date_tokens, extract_date
from flows.understanding.names import match_doctor
from flows.understanding.text import canonical
from flows.understanding.times import extract_time, keyed_time
from flows.understanding.types import Answer, Context, NotUnderstood, Understood, When


def parse_when(answer: Answer, ctx: Context) -> Understood[When] | NotUnderstood:
    """Any of day, time and doctor said in one utterance; at least one must be found.

    Keyed digits are read as a time (HHMM) since the flow asks for days by speech or menu.
    """
    try:
        if answer.keyed:
            t = keyed_time(answer.keyed, ctx, None)
            if isinstance(t, NotUnderstood):
                return t
            return Understood(When(time=t.value), sure=t.sure)
        toks = date_tokens(answer.speech, ctx.language)
        _t, time_used, _s = extract_time(toks, ctx, None, marked_only=True)
        found = extract_date(toks, ctx, time_used, bare_numbers=False)
        sure = not answer.low_confidence
        day = None
        skip = frozenset()
        if found is not None:
            if found.value is None:
                return NotUnderstood(found.reason)
            if found.value < ctx.today:
                return NotUnderstood("past")
            day, sure, skip = found.value, sure and found.sure, found.used
        tod, _used, tsure = extract_time(toks, ctx, day, skip)
        if isinstance(tod, NotUnderstood):
            return tod
        sure = sure and tsure
        doctor_id = None
        has_title = any(t in {"doctor", "dr", "doc"} for t in canonical(answer.speech, "en"))
        doc, score, _reason = match_doctor(
            answer.speech, ctx.doctors, cutoff=0.78 if has_title else 0.9
        )
        if doc is not None:
            doctor_id = doc
            sure = sure and score >= 0.99
        if day is None and tod is None and doctor_id is None:
            return NotUnderstood("nothing")
        return Understood(When(day=day, time=tod, doctor_id=doctor_id), sure=sure)
    except Exception as exc:  # noqa: BLE001 - a parser never raises
        return NotUnderstood(f"error: {type(exc).__name__}")
