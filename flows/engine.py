"""Runs a flow table, one webhook at a time.

The engine keeps the per-call state (`CallState`, stored as JSON keyed by CallSid) apart from
the flow definition (an immutable `Flow`). What the flow collects lives in `CallState.data`: a
plain dict by default, or the flow's own typed frame (`Flow(frame=Loader)`: a function from the
stored JSON to an object with `dump()`), which the engine stores and snapshots without knowing
its fields.

Each webhook is one *turn*: the engine applies the caller's answer to the current step, then
runs rows until one needs the caller again (an Ask), hands the call over (Transfer), ends it
(Hangup) or must speak before slow work (a Do with `hold`, answered with a redirect). The
result is a `Reply`; `ivr.twiml` turns it into XML. Retries, reprompts, giving up and
low-confidence read-backs are decided here, once.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from datetime import date, datetime
from typing import Any

from flows.clinic_services import ClinicProfile, ClinicServices, ServiceUnavailable
from flows.lang import Catalogue, catalogue_for, text
from flows.steps import Ask, Do, Flow, Hangup, Say, Step, Transfer
from flows.understanding import Answer, Context, parse_yes_no, wants_person

log = logging.getLogger(__name__)

MAX_ROWS_PER_TURN = 30  # a loop in the table must not hang a webhook
ALWAYS_HINTS = ("yes", "no", "agent", "reception")
_ATOMS = (str, int, float, bool, type(None))


def copy_plain(value: Any) -> Any:
    """A deep copy of JSON-like data (dicts, lists, tuples, strings, numbers, None).

    What `copy.deepcopy` and `dataclasses.asdict` give for such data, at a fraction of their
    cost (they dispatch through generic hooks for every leaf; a call's state is copied twice
    per webhook). Anything else falls back to them: a dataclass becomes a dict as `asdict`
    would make it, other objects are deep-copied.
    """
    kind = type(value)
    if kind is dict:
        return {k: copy_plain(v) for k, v in value.items()}
    if kind is list:
        return [copy_plain(v) for v in value]
    if kind in _ATOMS:
        return value
    if kind is tuple:
        return tuple(copy_plain(v) for v in value)
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    return copy.deepcopy(value)


def dump_frame(data: Any) -> dict[str, Any]:
    """The JSON of a call's data: a flow's frame dumps itself, a plain dict is copied."""
    dump = getattr(data, "dump", None)
    return dump() if callable(dump) else copy_plain(data)


@dataclass
class CallState:
    """Everything the call has said and done so far; JSON-serialisable."""

    call_sid: str
    caller: str | None = None  # E.164 from caller ID or keyed in; None when withheld
    language: str = "en-GB"  # a locale from the clinic's languages_offered
    step: str = ""
    tries: int = 0
    data: Any = field(default_factory=dict)  # a dict, or the flow's frame (see `Flow.frame`)
    trail: list[str] = field(default_factory=list)
    outcome: str | None = None
    pending: dict[str, Any] | None = None  # a low-confidence answer awaiting "is that right?"
    held: str | None = None  # a Do whose hold message went out; it runs on the redirect
    transferred: bool = False  # a Transfer row dialled a person
    transfer_failed: str | None = None  # the DialCallStatus when nobody answered

    @classmethod
    def _upgrade(cls, raw: dict[str, Any]) -> dict[str, Any]:
        """State stored before the engine kept its own fields out of `data`."""
        data = raw.get("data")
        if isinstance(data, dict) and ("transferred" in data or "transfer_failed" in data):
            data = dict(data)
            raw = {**raw, "data": data}
            raw.setdefault("transferred", bool(data.pop("transferred", False)))
            raw.setdefault("transfer_failed", data.pop("transfer_failed", None))
        return raw

    def to_dict(self) -> dict[str, Any]:
        """Plain data for the store (a deep copy: later changes to the state do not leak in)."""
        out = {f.name: copy_plain(getattr(self, f.name)) for f in _CALL_STATE_FIELDS
               if f.name != "data"}
        out["data"] = dump_frame(self.data)
        return out

    @classmethod
    def from_dict(
        cls, raw: Mapping[str, Any], frame: Callable[[Mapping[str, Any]], Any] | None = None
    ) -> CallState:
        """Rebuild from the store's JSON, ignoring fields a newer version may have added.

        `frame` (the flow's `Flow.frame`) turns the stored data into the flow's typed frame."""
        known = {f for f in cls.__dataclass_fields__}
        call = cls(**{k: v for k, v in cls._upgrade(dict(raw)).items() if k in known})
        if not isinstance(call.data, dict):
            call.data = {}
        if frame is not None:
            call.data = frame(call.data)
        return call


_CALL_STATE_FIELDS = fields(CallState)


@dataclass(frozen=True)
class Line:
    """One sentence to speak, in one language."""

    text: str
    language: str  # a locale such as "en-GB": picks the Twilio voice


@dataclass(frozen=True)
class GatherSpec:
    """Listen for keys and/or speech; the answer goes to step `step`."""

    step: str
    input: str
    num_digits: int | None
    finish_on_key: str | None
    timeout: int
    hints: tuple[str, ...]


@dataclass(frozen=True)
class DialSpec:
    """Ring a person; the result (DialCallStatus) goes to step `step`."""

    number: str
    step: str
    ring_seconds: int


@dataclass(frozen=True)
class Reply:
    """What the caller hears next and what happens after."""

    lines: tuple[Line, ...] = ()
    gather: GatherSpec | None = None
    redirect: str | None = None  # continue at this step's redirect URL
    dial: DialSpec | None = None
    hangup: bool = False
    language: str = "en"

    @property
    def text(self) -> str:
        """Everything spoken, joined (for logs and tests)."""
        return " ".join(line.text for line in self.lines)


@dataclass(frozen=True)
class Event:
    """Something worth recording about the call (no names or numbers in `text`)."""

    kind: str  # heard (a prompt key) / pressed / said / silence / step / transfer / error
    step: str
    text: str = ""


class Turn:
    """One webhook's view of the call, handed to answer handlers and actions."""

    def __init__(
        self,
        call: CallState,
        services: ClinicServices,
        facts: Callable[[Turn], dict[str, object]] | None = None,
    ) -> None:
        self.call = call
        self._facts = facts
        self.services = services
        self.profile: ClinicProfile = services.profile
        self.lines: list[Line] = []
        self.events: list[Event] = []
        self.unsure: str | None = None  # set by a handler: read this back before going on
        self.problem: str | None = None  # set by a handler: a specific "not understood" prompt
        self._now: datetime | None = None

    @property
    def data(self) -> Any:
        """The call's collected facts: a dict, or the flow's frame."""
        return self.call.data

    @property
    def lang(self) -> Catalogue:
        """The caller's language catalogue."""
        return catalogue_for(self.call.language)

    def now(self) -> datetime:
        """Clinic-local now, read once per turn."""
        if self._now is None:
            self._now = self.services.now()
        return self._now

    @property
    def today(self) -> date:
        """Clinic-local today."""
        return self.now().date()

    def context(self) -> Context:
        """What the parsers may know."""
        return Context(
            now=self.now(),
            region=self.profile.region,
            hours=self.profile.hours,
            slot_minutes=self.profile.slot_minutes,
            doctors=self.profile.doctors,
            language=self.lang.code,
        )

    def say(self, key: str, **extra: object) -> None:
        """Queue the prompt `key` in the caller's language."""
        self.lines.append(Line(self.render(key, **extra), self.call.language))
        self.events.append(Event("heard", self.call.step, key))

    def render(self, key: str, **extra: object) -> str:
        """The text of prompt `key` with the call's facts."""
        return text(self.lang, key, {**self.facts(), **extra})

    def facts(self) -> dict[str, object]:
        """Fields prompts may use: the flow's `facts` function computes them."""
        return self._facts(self) if self._facts else {}


class Engine:
    """Runs `flow` for calls against `services`."""

    def __init__(
        self, flow: Flow, services: ClinicServices, *, transfer_number: str | None
    ) -> None:
        self.flow = flow
        self.services = services
        self.transfer_number = transfer_number

    def _turn(self, call: CallState) -> Turn:
        if self.flow.frame is not None and isinstance(call.data, dict):
            call.data = self.flow.frame(call.data)  # a CallState made without the flow's frame
        return Turn(call, self.services, self.flow.facts)

    def _restore(self, snapshot: Any) -> Any:
        """The call's data from a snapshot (`dump_frame`) taken earlier this call."""
        if self.flow.frame is not None:
            return self.flow.frame(snapshot)
        return copy_plain(snapshot)

    # --- entry points, one per kind of webhook -------------------------------------------

    def start(self, call: CallState) -> tuple[Reply, list[Event]]:
        """A new call: run from the first row."""
        call.step = self.flow.start
        turn = self._turn(call)
        return self._run(turn), turn.events

    def on_answer(self, call: CallState, step: str, answer: Answer) -> tuple[Reply, list[Event]]:
        """The caller answered (or stayed silent at) the gather of `step`."""
        turn = self._turn(call)
        row = self.flow[call.step] if call.step in self.flow else None
        if step != call.step or not isinstance(row, Ask):
            return self._current(turn), turn.events
        self._record_answer(turn, row, answer)
        if call.pending is not None:
            return self._resolve_pending(turn, row, answer), turn.events
        if row.person_ok and wants_person(answer):
            call.tries = 0
            call.step = self.flow.person or self.flow.give_up(row)
            return self._run(turn), turn.events
        if not (answer.digits or (answer.speech or "").strip()):
            if row.on_silence:
                call.tries = 0
                call.step = row.on_silence
                return self._run(turn), turn.events
            return self._retry(turn, row), turn.events
        snapshot = dump_frame(call.data)
        try:
            label = row.handle(answer, turn)
        except ServiceUnavailable:
            log.warning("clinic system unavailable at step %s", row.key)
            turn.events.append(Event("error", row.key, "clinic system unavailable"))
            call.step = self.flow.unavailable or self.flow.give_up(row)
            return self._run(turn), turn.events
        if label is None:
            call.data = self._restore(snapshot)
            return self._retry(turn, row), turn.events
        if turn.unsure:
            call.pending = {"label": label, "heard": turn.unsure, "snapshot": snapshot}
            turn.lines.clear()
            return self._ask_pending(turn, row), turn.events
        call.tries = 0
        call.step = self.flow.route(row.key, label)
        return self._run(turn), turn.events

    def on_redirect(self, call: CallState, step: str) -> tuple[Reply, list[Event]]:
        """Twilio followed our redirect: run the held action of `step`."""
        turn = self._turn(call)
        if step != call.step or call.held != step:
            return self._current(turn), turn.events
        return self._run(turn), turn.events

    def on_dial(self, call: CallState, step: str, status: str) -> tuple[Reply, list[Event]]:
        """The person we rang answered and hung up, or did not answer."""
        turn = self._turn(call)
        row = self.flow[call.step] if call.step in self.flow else None
        if step != call.step or not isinstance(row, Transfer):
            return self._current(turn), turn.events
        turn.events.append(Event("transfer", step, status))
        if status in ("completed", "answered"):
            call.outcome = "transferred"
            return Reply(hangup=True, language=call.language), turn.events
        call.transfer_failed = status
        call.step = row.on_no_answer
        return self._run(turn), turn.events

    def current(self, call: CallState) -> tuple[Reply, list[Event]]:
        """Say the current step again without changing anything."""
        turn = self._turn(call)
        return self._current(turn), turn.events

    # --- internals -----------------------------------------------------------------------

    def _current(self, turn: Turn) -> Reply:
        call = turn.call
        row = self.flow[call.step] if call.step in self.flow else None
        if row is None or call.outcome:
            return Reply(hangup=True, language=call.language)
        if isinstance(row, Ask):
            if call.pending is not None:
                return self._ask_pending(turn, row)
            return self._gather(turn, row)
        if isinstance(row, Do) and call.held == row.key:
            turn.say(row.hold or "")
            return Reply(tuple(turn.lines), redirect=row.key, language=call.language)
        return self._run(turn)

    def _run(self, turn: Turn) -> Reply:
        call = turn.call
        for _ in range(MAX_ROWS_PER_TURN):
            row: Step = self.flow[call.step]
            if row.when is not None and not row.when(turn):
                # A skipped row passes on to its fixed `next`, else to the row below.
                nxt = getattr(row, "next", None)
                call.step = nxt if isinstance(nxt, str) else self.flow.below(row.key) or ""
                continue
            if not call.trail or call.trail[-1] != row.key:
                call.trail.append(row.key)
                turn.events.append(Event("step", row.key))
            if isinstance(row, Say):
                turn.say(row.text)
                call.step = self.flow.route(row.key, None)
            elif isinstance(row, Do):
                if row.hold and call.held != row.key:
                    call.held = row.key
                    turn.say(row.hold)
                    return Reply(tuple(turn.lines), redirect=row.key, language=call.language)
                call.held = None
                try:
                    outcome = row.run(turn)
                except ServiceUnavailable:
                    log.warning("clinic system unavailable at step %s", row.key)
                    turn.events.append(Event("error", row.key, "clinic system unavailable"))
                    call.step = row.on_error
                    continue
                call.step = self.flow.route(row.key, outcome)
            elif isinstance(row, Ask):
                return self._gather(turn, row)
            elif isinstance(row, Transfer):
                now = turn.now()
                if self.transfer_number and turn.profile.agent_hours.is_open(now):
                    turn.say(row.text)
                    call.transferred = True
                    turn.events.append(Event("transfer", row.key, "dial"))
                    return Reply(
                        tuple(turn.lines),
                        dial=DialSpec(self.transfer_number, row.key, row.ring_seconds),
                        language=call.language,
                    )
                call.step = row.closed
            elif isinstance(row, Hangup):
                turn.say(row.text)
                call.outcome = row.outcome
                return Reply(tuple(turn.lines), hangup=True, language=call.language)
        log.error("flow %s looped at step %s", self.flow.name, call.step)
        turn.say("give_up")
        call.outcome = "failed"
        return Reply(tuple(turn.lines), hangup=True, language=call.language)

    def _gather(self, turn: Turn, row: Ask, *, prompt: str | None = None) -> Reply:
        extra = row.facts(turn) if row.facts else {}
        if row.each_language:
            for n, code in enumerate(turn.profile.languages_offered, 1):
                lang = catalogue_for(code)
                turn.lines.append(Line(text(lang, prompt or row.prompt, {"n": n}), code))
        else:
            turn.say(prompt or row.prompt, **extra)
        hints = row.hints(turn) if callable(row.hints) else row.hints
        # Every speech gather can hear "agent", and yes/no where the prompt asks for it.
        hints = (*hints, *ALWAYS_HINTS)
        return Reply(
            tuple(turn.lines),
            gather=GatherSpec(
                step=row.key,
                input=row.input,
                num_digits=row.digits,
                finish_on_key=row.finish_on_key,
                timeout=row.timeout,
                hints=tuple(hints),
            ),
            language=turn.call.language,
        )

    def _retry(self, turn: Turn, row: Ask) -> Reply:
        call = turn.call
        call.tries += 1
        if call.tries >= row.attempts:
            call.tries = 0
            turn.say("give_up")
            turn.events.append(Event("error", row.key, "gave up after repeated tries"))
            call.step = self.flow.give_up(row)
            return self._run(turn)
        turn.say(turn.problem or "not_understood")
        return self._gather(turn, row, prompt=row.reprompt or f"{row.prompt}_hint")

    def _ask_pending(self, turn: Turn, row: Ask) -> Reply:
        heard = (turn.call.pending or {}).get("heard", "")
        turn.say("check_heard", heard=heard)
        return Reply(
            tuple(turn.lines),
            gather=GatherSpec(row.key, "dtmf speech", 1, None, row.timeout, ("yes", "no")),
            language=turn.call.language,
        )

    def _resolve_pending(self, turn: Turn, row: Ask, answer: Answer) -> Reply:
        call = turn.call
        pending = call.pending or {}
        result = parse_yes_no(answer, turn.context())
        value = getattr(result, "value", None)
        if value is True:
            call.pending = None
            call.tries = 0
            call.step = self.flow.route(row.key, pending.get("label"))
            return self._run(turn)
        if value is False:
            call.pending = None
            call.data = self._restore(pending.get("snapshot", dump_frame(call.data)))
            return self._gather(turn, row)
        call.tries += 1
        if call.tries >= row.attempts:
            call.pending = None
            call.data = self._restore(pending.get("snapshot", dump_frame(call.data)))
            call.tries = 0
            turn.say("give_up")
            call.step = self.flow.give_up(row)
            return self._run(turn)
        turn.say("not_understood")
        return self._ask_pending(turn, row)

    def _record_answer(self, turn: Turn, row: Ask, answer: Answer) -> None:
        if answer.digits:
            shown = f"{len(answer.digits)} digits" if row.private else answer.digits
            turn.events.append(Event("pressed", row.key, shown[:40]))
        elif answer.speech:
            shown = "(not kept: identifies the caller)" if row.private else answer.speech
            turn.events.append(Event("said", row.key, shown[:200]))
        else:
            turn.events.append(Event("silence", row.key))
