"""The /voice blueprint: Twilio's webhooks in, TwiML out. Thin on purpose.

Each request: check the signature, read Twilio's form into a typed `Inbound`, load the call
by CallSid, let the engine run one turn, save the call (compare-and-swap), answer TwiML.

Idempotency: every action URL carries the turn number (`?t=N`). A request for the turn the
call is waiting for runs; a repeat of the turn just answered (Twilio's retry, a double key
press, a second process) gets the same TwiML again and runs nothing. A CallSid we do not know
mid-flow starts the call over politely. Any failure becomes a spoken apology and a transfer:
callers never hear Twilio's "application error".
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from flask import Blueprint, Response, current_app, request

from flows.engine import CallState, Line, Reply, dump_frame
from flows.understanding import Answer
from ivr import insights, security, twiml
from ivr.config import DEMO_TWILIO_AUTH_TOKEN
from ivr.phone import mask, parse_phone
from ivr.store import CallUpdate

if TYPE_CHECKING:
    from ivr.app import Runtime

log = logging.getLogger(__name__)
bp = Blueprint("voice", __name__, url_prefix="/voice")

CALL_SID = re.compile(r"^CA[0-9a-fA-F]{32}$")
MAX_DIGITS = 64  # nobody keys more; longer input is cut, not rejected
MAX_SPEECH = 500
# The call's outcome as the store records it (a booking recorded for the worker counts as
# booked by phone: the outbox tracks whether Clinicea confirmed it).
STORE_OUTCOME = {"booked": "booked", "recorded": "booked", "transferred": "transferred",
                 "callback": "callback", "abandoned": "abandoned", "failed": "failed",
                 "answered": "answered"}
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


def _runtime() -> Runtime:
    return current_app.extensions["ivr"]


def _xml(body: str) -> Response:
    return Response(body, status=200, mimetype="text/xml")


@bp.before_request
def check_signature() -> Response | None:
    """403 for anything Twilio did not sign (before any other work)."""
    rt = _runtime()
    token = rt.settings.twilio_auth_token
    if not rt.settings.demo_secrets_allowed and token == DEMO_TWILIO_AUTH_TOKEN:
        token = ""  # the published demo token signs nothing beside a real Clinicea
    if not security.is_valid(request, token, rt.settings.public_url,
                             rt.settings.twilio_webhook_key):
        log.warning("refused a /voice request with a missing or wrong signature")
        return Response("Forbidden", status=403, mimetype="text/plain")
    return None


@bp.post("/incoming")
def incoming() -> Response:
    """The number's "a call comes in" webhook."""
    return _handle("incoming", None)


@bp.post("/step/<step>")
def step(step: str) -> Response:
    """The action of a gather, redirect or dial of step `step`."""
    kind = request.args.get("k", "answer")
    return _handle(kind if kind in ("answer", "resume", "dial") else "answer", step[:64])


@bp.post("/status")
def status() -> Response:
    """Twilio's status callback: record how the call ended."""
    inbound = Inbound.from_form(request.form)
    if CALL_SID.match(inbound.call_sid) and inbound.call_status in (
        "completed", "busy", "failed", "no-answer", "canceled",
    ):
        try:
            _runtime().finish(inbound.call_sid)
        except Exception:  # a status callback must never fail loudly
            log.exception("could not record the end of a call")
    return _xml(twiml.empty())


@bp.post("/fallback")
def fallback() -> Response:
    """Twilio's fallback URL: the primary answer failed. Apologise and offer a person; a
    caller whose number we know and who reaches nobody gets a callback request."""
    rt = _runtime()
    inbound = Inbound.from_form(request.form)
    if not CALL_SID.match(inbound.call_sid):
        inbound = dataclasses.replace(inbound, call_sid="")
    if request.args.get("after") == "dial":  # the apology's own transfer has ended
        return _xml(rt.after_dial(inbound))
    return _xml(rt.apology(reason="fallback", inbound=inbound))


def _handle(kind: str, step: str | None) -> Response:
    rt = _runtime()
    inbound = Inbound.from_form(request.form)
    if not CALL_SID.match(inbound.call_sid):
        return _xml(rt.apology(reason="no CallSid"))
    try:
        turn = int(request.args.get("t", "0"))
    except ValueError:
        turn = -1
    try:
        return _xml(rt.turn(inbound, kind, step, turn))
    except Exception:
        log.exception("webhook failed; apologising and handing over", extra={
            "call_sid": inbound.call_sid})
        return _xml(rt.apology(reason="error", inbound=inbound))


class VoiceTurns:
    """Runs one webhook turn against the store and the engine (used by `Runtime`)."""

    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime

    def run(self, inbound: Inbound, kind: str, step: str | None, turn: int) -> str:
        """The TwiML for this webhook."""
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
        engine = rt.engine
        call = CallState.from_dict({**record.state, "call_sid": inbound.call_sid},
                                   frame=engine.flow.frame)
        before = dump_frame(call.data)  # the engine changes call.data in place; holds compare
        if record.last_reply is None:
            reply, events = engine.start(call)
            if restarted:
                reply = Reply((Line(rt.say_restart(call.language), call.language), *reply.lines),
                              reply.gather, reply.redirect, reply.dial, reply.hangup,
                              reply.language)
        elif kind == "dial":
            reply, events = engine.on_dial(call, step or "", inbound.dial_status or "failed")
        elif kind == "resume":
            reply, events = engine.on_redirect(call, step or "")
        else:
            reply, events = engine.on_answer(call, step or "", inbound.answer)
        next_turn = record.turn + 1
        xml = rt.render(reply, next_turn)
        outcome = STORE_OUTCOME.get(call.outcome or "")
        state_now = call.to_dict()
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
