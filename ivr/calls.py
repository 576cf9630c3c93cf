"""The call handler: what the IVR answers to each of Twilio's webhooks, as TwiML text.

`Inbound` is the typed part of Twilio's request. `CallHandler` owns a turn: load the call by
CallSid (or start it), let the engine run one turn, render the reply, save the call with a
compare-and-swap on its version, then settle the call's holds. It also speaks the apology
(and its transfer or callback), the goodbye, and records how a call ended. No Flask here:
`ivr.voice` is the blueprint that checks the signature, parses the form and calls this.

Idempotency: every action URL carries the turn number (`?t=N`). A request for the turn the
call is waiting for runs; a repeat of the turn just answered (Twilio's retry, a double key
press, a second process) gets the same TwiML again and runs nothing. A CallSid we do not know
mid-flow starts the call over politely.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote

from flows.engine import CallState, Line, Reply, dump_frame
from flows.lang import catalogue_for, text
from flows.reminders.frame import start_frame
from flows.reminders.plan import reminder_from_json
from flows.understanding import Answer
from ivr import insights, twiml
from ivr.phone import mask, parse_phone
from ivr.runtime import Runtime
from ivr.store import CallUpdate

__all__ = ["CALL_SID", "DIAL_STATUSES", "STORE_OUTCOME", "CallHandler", "Inbound"]

log = logging.getLogger(__name__)

CALL_SID = re.compile(r"^CA[0-9a-fA-F]{32}$")
MAX_DIGITS = 64  # nobody keys more; longer input is cut, not rejected
MAX_SPEECH = 500
# The call's outcome as the store records it (a booking recorded for the worker counts as
# booked by phone: the outbox tracks whether Clinicea confirmed it).
# A reminder call's choices: confirmed or a machine's message is "answered"; a cancel or move
# left for the desk is a callback request (docs/reminders.md).
STORE_OUTCOME = {"booked": "booked", "recorded": "booked", "transferred": "transferred",
                 "callback": "callback", "abandoned": "abandoned", "failed": "failed",
                 "answered": "answered", "reminder_confirmed": "answered",
                 "reminder_machine": "answered", "reminder_cancelled": "callback",
                 "reminder_move": "callback"}
DIAL_STATUSES = {"completed", "answered", "busy", "no-answer", "failed", "canceled"}


@dataclass(frozen=True)
class Inbound:
    """The parts of Twilio's request the IVR uses, bounded and cleaned."""

    call_sid: str
    caller: str
    called: str  # the clinic's Twilio number: confirmation texts come from it
    answer: Answer
    dial_status: str | None
    call_status: str

    @classmethod
    def from_form(cls, form: Mapping[str, str]) -> Inbound:
        """Parse Twilio's form parameters; never raises on odd input."""
        get = form.get
        digits = _clean(get("Digits"), MAX_DIGITS)
        speech = _clean(get("SpeechResult"), MAX_SPEECH)
        raw_confidence = get("Confidence")
        try:
            confidence = float(raw_confidence) if raw_confidence is not None else None
        except ValueError:
            confidence = None
        if confidence is not None and not 0.0 <= confidence <= 1.0:  # NaN fails this too
            confidence = None
        dial = (get("DialCallStatus") or "").strip().lower()
        return cls(
            call_sid=(get("CallSid") or "").strip(),
            caller=_clean(get("From"), 64) or "",
            called=_clean(get("To"), 64) or "",
            answer=Answer(digits=digits or None, speech=speech or None, confidence=confidence),
            dial_status=dial if dial in DIAL_STATUSES else ("failed" if dial else None),
            call_status=(get("CallStatus") or "").strip().lower(),
        )


def _clean(value: object, limit: int) -> str:
    if not isinstance(value, str):
        return ""
    # Control characters never belong in keys or transcripts.
    return "".join(ch for ch in value[: limit * 2] if ch.isprintable()).strip()[:limit]


class CallHandler:
    """Answers a call's webhooks on one runtime; every method returns TwiML text."""

    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime

    def turn(self, inbound: Inbound, kind: str, step: str | None, turn: int) -> str:
        """TwiML for one webhook; its Clinicea lookups share one time limit.

        The limit is `webhook_budget` in `ivr.clinicea_services`.
        """
        services = self.rt.services
        with services.webhook_budget(), services.for_call(inbound.call_sid):
            return self._run(inbound, kind, step, turn)

    def _run(self, inbound: Inbound, kind: str, step: str | None, turn: int) -> str:
        rt = self.rt
        store = rt.store
        record = store.load_call(inbound.call_sid)
        restarted = False
        if record is None:
            caller = parse_phone(inbound.caller, rt.settings.clinic.default_region)
            state = CallState(call_sid=inbound.call_sid, caller=caller.e164 if caller else None,
                              language=rt.settings.clinic.language)
            clinic_number = parse_phone(inbound.called, rt.settings.clinic.default_region)
            if clinic_number is not None:
                state.data["clinic_number"] = clinic_number.e164
            record = store.create_call(
                inbound.call_sid,
                caller_masked=caller.masked if caller else mask(inbound.caller),
                state=state.to_dict(), step="", language=state.language,
                caller_key=insights.caller_key(rt.settings.secret_key,
                                               caller.e164 if caller else None),
            )
            restarted = kind != "incoming"
        # A repeat of a turn already answered, or a stale one: say the same thing again.
        if record.last_reply is not None and turn != record.turn:
            return record.last_reply
        # A call scrubbed by the retention purge has an empty state: the SID is the row's key.
        # The flow is the one the call started in (a reminder call's state names it).
        flow_name = record.state.get("flow")
        engine = rt.engine_for(flow_name if isinstance(flow_name, str) else None)
        call = CallState.from_dict({**record.state, "call_sid": inbound.call_sid},
                                   frame=engine.flow.frame)
        before = dump_frame(call.data)  # the engine changes call.data in place; holds compare
        if record.last_reply is None:
            reply, events = engine.start(call)
            if restarted:
                reply = Reply((Line(self.say_restart(call.language), call.language),
                               *reply.lines),
                              reply.gather, reply.redirect, reply.dial, reply.hangup,
                              reply.language)
        elif kind == "dial":
            reply, events = engine.on_dial(call, step or "", inbound.dial_status or "failed")
        elif kind == "resume":
            reply, events = engine.on_redirect(call, step or "")
        else:
            reply, events = engine.on_answer(call, step or "", inbound.answer)
        next_turn = record.turn + 1
        xml = self.render(reply, next_turn)
        outcome = STORE_OUTCOME.get(call.outcome or "")
        state_now = call.to_dict()
        if isinstance(flow_name, str):
            state_now["flow"] = flow_name
        patient = state_now["data"].get("patient") or {}
        saved = store.save_call(inbound.call_sid, CallUpdate(
            expected_version=record.version, state=state_now,
            step=call.step, turn=next_turn, last_reply=xml, last_reply_turn=record.turn,
            patient_first_name=patient.get("first_name"), outcome=outcome,
            outcome_step=call.step if outcome else None, language=call.language,
            events=tuple((e.kind, e.step, e.text) for e in events),
            transferred=reply.dial is not None,
        ))
        if not saved:
            # Another process answered this turn first: give Twilio that answer.
            winner = store.load_call(inbound.call_sid)
            return winner.last_reply if winner and winner.last_reply else xml
        try:
            rt.services.settle_holds(inbound.call_sid, before, state_now["data"])
        except Exception:  # the holds then simply expire; the caller's turn is answered
            log.exception("could not settle the call's holds", extra={
                "call_sid": inbound.call_sid})
        return xml

    def start_reminder(self, key: str, inbound: Inbound, answered_by: str | None) -> str:
        """The first webhook of an outbound reminder call (`/voice/reminder/<key>`): the call
        is stored with the reminder's frame and flow "reminder", then runs as any call.

        For an outbound call Twilio's `From` is the clinic and `To` the patient."""
        rt = self.rt
        row = rt.store.get_reminder(key)
        if row is None:
            log.warning("reminder call for an unknown reminder")
            return self.goodbye()
        if rt.store.load_call(inbound.call_sid) is None:
            clinic = rt.settings.clinic
            settings = clinic.reminders
            language = settings.language if settings else clinic.language
            if language not in rt.voices:
                language = clinic.language
            number = parse_phone(inbound.caller, clinic.default_region)
            frame = start_frame(reminder_from_json(row.payload), rt.services.profile,
                                clinic_number=number.e164 if number else None,
                                answered_by=answered_by or None)
            state = CallState(call_sid=inbound.call_sid, caller=row.phone_e164,
                              language=language, data=frame).to_dict()
            state["flow"] = "reminder"
            rt.store.create_call(inbound.call_sid, caller_masked=row.phone_masked,
                                 state=state, step="", language=language)
        return self.turn(inbound, "incoming", None, 0)

    def render(self, reply: Reply, next_turn: int) -> str:
        """A reply as TwiML, its action URLs carrying the next turn number."""
        base = (self.rt.settings.public_url or "").rstrip("/")

        def url_for(kind: str, step: str) -> str:
            return f"{base}/voice/step/{quote(step)}?t={next_turn}&k={kind}"

        return twiml.render(reply, url_for, self.rt.voices)

    def default_voice(self) -> twiml.Voice:
        """The clinic's main language voice."""
        return self.rt.voices[self.rt.settings.clinic.language]

    def say_restart(self, language: str) -> str:
        """ "Sorry, let's start again." for a call we lost track of."""
        return text(catalogue_for(language), "restart", {})

    def apology(self, *, reason: str, inbound: Inbound | None = None) -> str:
        """Something failed: apologise and hand over to a person, never an application error.

        During agent hours the transfer number is rung (its end comes back to
        `/voice/fallback?after=dial`, see `after_dial`); otherwise a caller whose number we
        know (Twilio's `From`) gets a callback request, anyone else is asked to call again.
        """
        log.warning("answering with an apology (%s)", reason)
        self.rt.metrics.apology(reason)
        settings = self.rt.settings
        lang = catalogue_for(settings.clinic.language)
        voice = self.default_voice()
        clinic = settings.clinic
        now = self.rt.clock.now()
        sorry = text(lang, "fallback", {})
        if clinic.transfer_number and clinic.agent_hours.is_open(now):
            return twiml.apology_with_transfer(
                f"{sorry} {text(lang, 'connecting', {})}", voice, clinic.transfer_number,
                action=f"{(settings.public_url or '').rstrip('/')}/voice/fallback?after=dial",
            )
        return twiml.say_only(f"{sorry} {self._callback(inbound, reason)}", voice, hangup=True)

    def after_dial(self, inbound: Inbound) -> str:
        """The apology's transfer ended: goodbye if someone answered, else a callback."""
        status = inbound.dial_status
        if status in ("busy", "no-answer", "failed"):
            said = self._callback(inbound, f"nobody answered the transfer, {status}")
            return twiml.say_only(said, self.default_voice(), hangup=True)
        return self.goodbye()

    def _callback(self, inbound: Inbound | None, reason: str) -> str:
        """Record a callback for the caller's number if known; what to tell the caller."""
        settings = self.rt.settings
        lang = catalogue_for(settings.clinic.language)
        caller = (parse_phone(inbound.caller, settings.clinic.default_region)
                  if inbound is not None and inbound.caller else None)
        if caller is None or inbound is None or not inbound.call_sid:
            return text(lang, "callback_no_number", {})
        try:
            self.rt.services.request_callback(inbound.call_sid, caller.e164,
                                              f"after an error: {reason}")
        except Exception:  # the store is down too: say so, and promise no call back
            log.exception("could not record a callback after an error")
            self.rt.metrics.apology("callback_not_recorded")
            return text(lang, "callback_not_recorded", {})
        return text(lang, "callback_done", {})

    def goodbye(self) -> str:
        """Thank the caller and hang up."""
        lang = catalogue_for(self.rt.settings.clinic.language)
        return twiml.say_only(text(lang, "thanks_goodbye", {}), self.default_voice(), hangup=True)

    def finish(self, call_sid: str) -> None:
        """The call ended (status callback): record its outcome, or where it was abandoned."""
        store = self.rt.store
        self.rt.services.end_call(call_sid)  # the times it held are free for others now
        record = store.load_call(call_sid)
        if record is None:
            return
        call = CallState.from_dict({**record.state, "call_sid": call_sid})  # purged: {}
        outcome = STORE_OUTCOME.get(call.outcome or "")
        if outcome is None:
            outcome = "transferred" if call.transferred else "abandoned"
        store.finish_call(call_sid, outcome, call.step or None)
