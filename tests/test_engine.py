"""The generic engine on a small flow and a fake ClinicServices: no Flask, no HTTP, no booking.

The engine knows nothing of the booking call: where "agent" goes, where a failed lookup goes and
what prompts may mention come from the flow it is given.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pytest

from flows.clinic_services import ClinicProfile, ServiceUnavailable
from flows.domain import WeeklyHours
from flows.engine import CallState, Engine, Turn
from flows.steps import Ask, Do, Flow, FlowDefinitionError, Hangup, Say, Transfer
from flows.understanding import Answer, Understood, parse_yes_no

NOW = datetime(2026, 11, 23, 10, 0)
OPEN = WeeklyHours({d: ((datetime.min.time(), datetime.max.time()),) for d in range(7)})
CLOSED = WeeklyHours({})
PROMPTS = {
    "hello": "Hello {name}.", "q": "Ready?", "q_hint": "Say yes or no.", "fine": "Fine.",
    "bye": "Bye.", "down": "Down.", "human": "A person.", "shut": "Shut.",
    "give_up": "Giving up.", "not_understood": "Pardon?", "check_heard": "Heard {heard}?",
    "wait": "Wait.",
}


class FakeClinic:
    """Only what the small flow uses; `down` makes every lookup fail."""

    def __init__(self, *, agents: WeeklyHours = OPEN, down: bool = False) -> None:
        self.profile = ClinicProfile(
            name="Test", sites=(), doctors=(), services=(), default_service_id="s",
            hours=OPEN, agent_hours=agents, slot_minutes=20, booking_days_ahead=30,
            region="PK", language="en", languages_offered=("en",),
        )
        self.down = down
        self.looked_up = 0

    def now(self) -> datetime:
        return NOW

    def lookup(self) -> str:
        self.looked_up += 1
        if self.down:
            raise ServiceUnavailable("down")
        return "ok"


def ready(answer: Answer, turn: Turn) -> str | None:
    result = parse_yes_no(answer, turn.context())
    value = getattr(result, "value", None)
    if value is None:
        return None
    if not result.sure:  # type: ignore[union-attr]
        turn.unsure = answer.speech
    turn.data["ready"] = value
    if value:
        turn.services.lookup()  # type: ignore[attr-defined]
    return "yes" if value else "no"


def small_flow(**kw) -> Flow:
    rows = [
        Say("hello", "hello"),
        Ask("q", "q", ready, next={"yes": "work", "no": "bye"}),
        Do("work", lambda t: t.services.lookup(), hold="wait", next="fine", on_error="down"),
        Say("fine", "fine", next="bye"),
        Hangup("bye", "bye", outcome="done"),
        Say("down", "down", next="human"),
        Transfer("human", "human", on_no_answer="bye", closed="shut"),
        Hangup("shut", "shut", outcome="closed"),
    ]
    defaults = dict(person="human", unavailable="down",
                    facts=lambda turn: {"name": "Sam"}, catalogues=[PROMPTS])
    return Flow("small", rows, **{**defaults, **kw})


def engine(clinic: FakeClinic | None = None, **kw) -> tuple[Engine, FakeClinic]:
    clinic = clinic or FakeClinic()
    return Engine(small_flow(**kw), clinic, transfer_number="+920000"), clinic  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def english_prompts(monkeypatch):
    """The small flow's own wording, in place of the booking call's catalogue."""
    from flows.lang import en

    monkeypatch.setattr(en, "PROMPTS", {**en.PROMPTS, **PROMPTS})
    monkeypatch.setattr(en.English, "prompts", {**en.PROMPTS, **PROMPTS})


def test_a_call_runs_the_table_and_prompts_use_the_flows_facts():
    eng, clinic = engine()
    call = CallState("CA1")
    reply, _ = eng.start(call)
    assert reply.text == "Hello Sam. Ready?" and reply.gather and reply.gather.step == "q"
    reply, _ = eng.on_answer(call, "q", Answer(digits="1"))
    assert reply.text == "Wait." and reply.redirect == "work"  # spoken before the slow work
    reply, _ = eng.on_redirect(call, "work")
    assert reply.text == "Fine. Bye." and reply.hangup and call.outcome == "done"
    assert clinic.looked_up == 2


def test_asking_for_a_person_goes_to_the_flows_person_step():
    eng, _ = engine()
    call = CallState("CA1")
    eng.start(call)
    reply, _ = eng.on_answer(call, "q", Answer(speech="can I speak to a person"))
    assert reply.dial is not None and call.transferred
    reply, _ = eng.on_dial(call, "human", "no-answer")
    assert call.transfer_failed == "no-answer" and call.outcome == "done"
    assert "transferred" not in call.data and "transfer_failed" not in call.data


def test_a_person_out_of_agent_hours_goes_to_the_closed_step():
    eng, _ = engine(FakeClinic(agents=CLOSED))
    call = CallState("CA1")
    eng.start(call)
    reply, _ = eng.on_answer(call, "q", Answer(digits="0"))
    assert reply.text == "Shut."  # nobody is rung outside agent hours
    assert reply.dial is None and call.outcome == "closed"


def test_the_clinic_down_in_an_answer_goes_to_the_flows_unavailable_step():
    eng, _ = engine(FakeClinic(down=True, agents=CLOSED))
    call = CallState("CA1")
    eng.start(call)
    reply, events = eng.on_answer(call, "q", Answer(digits="1"))
    assert reply.text.startswith("Down.") and call.step == "shut"
    assert ("error", "q") in [(e.kind, e.step) for e in events]


def test_not_understood_reprompts_then_gives_up():
    eng, _ = engine(FakeClinic(agents=CLOSED))
    call = CallState("CA1")
    eng.start(call)
    reply, _ = eng.on_answer(call, "q", Answer(speech="purple"))
    assert reply.text == "Pardon? Say yes or no."
    eng.on_answer(call, "q", Answer(speech="purple"))
    reply, _ = eng.on_answer(call, "q", Answer(speech="purple"))
    assert reply.text.startswith("Giving up.") and call.outcome == "closed"


def test_a_low_confidence_answer_is_read_back_and_undone_on_no():
    eng, _ = engine()
    call = CallState("CA1")
    eng.start(call)
    reply, _ = eng.on_answer(call, "q", Answer(speech="no", confidence=0.2))
    assert reply.text == "Heard no?" and call.pending
    reply, _ = eng.on_answer(call, "q", Answer(digits="2"))
    assert "ready" not in call.data and reply.text == "Ready?"


def test_state_stored_by_an_older_version_keeps_its_transfer():
    call = CallState.from_dict({"call_sid": "CA1", "data": {"transferred": True, "x": 1}})
    assert call.transferred and call.data == {"x": 1}
    assert CallState.from_dict(call.to_dict()) == call


@dataclass
class Readiness:
    """A small flow's own typed frame: the engine stores it without knowing its fields."""

    ready: bool | None = None

    @classmethod
    def load(cls, raw):
        return cls(raw.get("ready") if isinstance(raw.get("ready"), bool) else None)

    def dump(self):
        return {} if self.ready is None else {"ready": self.ready}


def frame_ready(answer: Answer, turn: Turn) -> str | None:
    result = parse_yes_no(answer, turn.context())
    if not isinstance(result, Understood):
        return None
    if not result.sure:
        turn.unsure = answer.speech
    turn.data.ready = result.value  # an attribute of the flow's frame, not a key
    return "yes" if result.value else "no"


def test_a_flows_typed_frame_is_kept_stored_as_json_and_restored_on_no():
    rows = [Ask("q", "q", frame_ready, next={"yes": "bye", "no": "bye"}),
            Hangup("bye", "bye", outcome="done")]
    flow = Flow("framed", rows, person="bye", catalogues=[PROMPTS], frame=Readiness.load)
    eng = Engine(flow, FakeClinic(), transfer_number=None)  # type: ignore[arg-type]
    call = CallState("CA1")
    eng.start(call)
    assert isinstance(call.data, Readiness)
    eng.on_answer(call, "q", Answer(speech="yes", confidence=0.2))
    assert call.data.ready is True and call.to_dict()["data"] == {"ready": True}
    stored = CallState.from_dict(call.to_dict(), frame=Readiness.load)
    eng.on_answer(stored, "q", Answer(digits="2"))  # "no, that's not what I said"
    assert stored.data == Readiness() and stored.pending is None
    eng.on_answer(stored, "q", Answer(digits="1"))
    assert stored.data == Readiness(True) and stored.outcome == "done"


def test_a_prompt_key_missing_from_a_catalogue_fails_when_the_flow_is_built():
    with pytest.raises(FlowDefinitionError, match="missing from a catalogue: q_hint"):
        small_flow(catalogues=[{k: v for k, v in PROMPTS.items() if k != "q_hint"}])
    with pytest.raises(FlowDefinitionError, match="unknown step 'nobody'"):
        small_flow(person="nobody")


def test_the_booking_flow_has_every_prompt_in_every_language():
    from flows.booking import FLOW
    from flows.lang import CATALOGUES

    for lang in CATALOGUES.values():
        assert FLOW.prompt_keys() <= set(lang.prompts), lang.code
