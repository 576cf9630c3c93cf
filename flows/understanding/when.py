"""One utterance giving any of day, time and doctor: "next thursday afternoon with dr omar"."""

from __future__ import annotations

from flows.understanding.corrections import split_corrections
from flows.understanding.dates import date_tokens, segment_date
from flows.understanding.names import match_doctor
from flows.understanding.text import canonical
from flows.understanding.times import extract_time, keyed_time
from flows.understanding.types import Answer, Context, NotUnderstood, Understood, When


def parse_when(answer: Answer, ctx: Context) -> Understood[When] | NotUnderstood:
    """Any of day, time and doctor said in one utterance; at least one must be found.

    Keyed digits are read as a time (HHMM) since the flow asks for days by speech or menu.
    A self-correction replaces only what it corrects: "Wednesday at 3, no, 4" is Wednesday at
    4 p.m.; "Tuesday, no, Wednesday at 3" is Wednesday at 3 p.m. (each of day, time and doctor
    comes from the last part of the answer that says one).
    """
    try:
        if answer.keyed:
            t = keyed_time(answer.keyed, ctx, None)
            if isinstance(t, NotUnderstood):
                return t
            return Understood(When(time=t.value), sure=t.sure)
        toks = date_tokens(answer.speech, ctx.language)
        segments = split_corrections(toks)
        days = [segment_date(segments, k, ctx, bare_numbers=False) for k in range(len(segments))]
        found = next((f for f in reversed(days) if f is not None), None)
        sure = not answer.low_confidence
        day = None
        skip: frozenset[int] = frozenset()
        if found is not None:
            if found.value is None:
                return NotUnderstood(found.reason)
            if found.value < ctx.today:
                return NotUnderstood("past")
            day, sure, skip = found.value, sure and found.sure, found.used
        tod, tsure = None, True
        for seg, seg_day in reversed(list(zip(segments, days, strict=True))):
            skip = seg_day.used if seg_day is not None else frozenset()
            tod, _used, tsure = extract_time(seg, ctx, day, skip)
            if tod is not None:
                break
        if isinstance(tod, NotUnderstood):
            return tod
        sure = sure and tsure
        doctor_id = None
        said = [answer.speech or ""] if len(segments) == 1 else [" ".join(s) for s in segments]
        doc, score = None, 0.0
        for text in reversed(said):  # "Dr. Khan, sorry, Dr. Farooq": the last doctor named
            has_title = any(t in {"doctor", "dr", "doc"} for t in canonical(text, "en"))
            doc, score, _reason = match_doctor(text, ctx.doctors, cutoff=0.78 if has_title else 0.9)
            if doc is not None:
                break
        if doc is not None:
            doctor_id = doc
            sure = sure and score >= 0.99
        if day is None and tod is None and doctor_id is None:
            return NotUnderstood("nothing")
        return Understood(When(day=day, time=tod, doctor_id=doctor_id), sure=sure)
    except Exception as exc:  # noqa: BLE001 - a parser never raises
        return NotUnderstood(f"error: {type(exc).__name__}")
