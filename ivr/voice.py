"""The /voice blueprint: Twilio's webhooks in, TwiML out. Thin on purpose.

Each request: check the signature, read Twilio's form into a typed `Inbound`, hand it to the
call handler (`ivr.calls.CallHandler`: load, engine, render, compare-and-swap save) and answer
its TwiML. Any failure becomes a spoken apology and a transfer: callers never hear Twilio's
"application error".
"""

from __future__ import annotations

import dataclasses
import logging

from flask import Blueprint, Response, current_app, request

from ivr import security, twiml
from ivr.calls import CALL_SID, CallHandler, Inbound
from ivr.config import DEMO_TWILIO_AUTH_TOKEN
from ivr.reminders import FINAL_CALL_STATUSES, replies_for
from ivr.runtime import Runtime

log = logging.getLogger(__name__)
bp = Blueprint("voice", __name__, url_prefix="/voice")


def _runtime() -> Runtime:
    runtime: Runtime = current_app.extensions["ivr"]
    return runtime


def _calls() -> CallHandler:
    return CallHandler(_runtime())


def _xml(body: str) -> Response:
    return Response(body, status=200, mimetype="text/xml")


@bp.before_request
def check_signature() -> Response | None:
    """403 for anything Twilio did not sign (before any other work)."""
    return refuse_unsigned()


def refuse_unsigned() -> Response | None:
    """A 403 answer when the request is not signed by Twilio, else None (also `/sms`)."""
    rt = _runtime()
    token = rt.settings.twilio_auth_token
    if not rt.settings.demo_secrets_allowed and token == DEMO_TWILIO_AUTH_TOKEN:
        token = ""  # the published demo token signs nothing beside a real Clinicea
    if not security.is_valid(request, token, rt.settings.public_url,
                             rt.settings.twilio_webhook_key):
        log.warning("refused a Twilio webhook with a missing or wrong signature")
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
            _calls().finish(inbound.call_sid)
        except Exception:  # a status callback must never fail loudly
            log.exception("could not record the end of a call")
    return _xml(twiml.empty())


@bp.post("/reminder/<path:key>")
def reminder(key: str) -> Response:
    """The first webhook of an outbound reminder call (docs/reminders.md)."""
    calls = _calls()
    inbound = Inbound.from_form(request.form)
    if not CALL_SID.match(inbound.call_sid):
        return _xml(calls.apology(reason="no CallSid"))
    try:
        return _xml(calls.start_reminder(key[:200], inbound,
                                         (request.form.get("AnsweredBy") or "")[:40]))
    except Exception:
        log.exception("reminder webhook failed; apologising", extra={
            "call_sid": inbound.call_sid})
        return _xml(calls.apology(reason="error", inbound=inbound))


@bp.post("/reminder/<path:key>/status")
def reminder_status(key: str) -> Response:
    """The reminder call's status callback: the reminder's status, the text if it reached
    nobody, and the call's end as for any call."""
    inbound = Inbound.from_form(request.form)
    if CALL_SID.match(inbound.call_sid) and inbound.call_status in FINAL_CALL_STATUSES:
        try:
            replies_for(_runtime()).call_ended(
                key[:200], inbound.call_sid, inbound.call_status,
                (request.form.get("AnsweredBy") or "")[:40] or None)
            _calls().finish(inbound.call_sid)
        except Exception:  # a status callback must never fail loudly
            log.exception("could not record the end of a reminder call")
    return _xml(twiml.empty())


@bp.post("/fallback")
def fallback() -> Response:
    """Twilio's fallback URL: the primary answer failed. Apologise and offer a person; a
    caller whose number we know and who reaches nobody gets a callback request."""
    calls = _calls()
    inbound = Inbound.from_form(request.form)
    if not CALL_SID.match(inbound.call_sid):
        inbound = dataclasses.replace(inbound, call_sid="")
    if request.args.get("after") == "dial":  # the apology's own transfer has ended
        return _xml(calls.after_dial(inbound))
    return _xml(calls.apology(reason="fallback", inbound=inbound))


def _handle(kind: str, step: str | None) -> Response:
    calls = _calls()
    inbound = Inbound.from_form(request.form)
    if not CALL_SID.match(inbound.call_sid):
        return _xml(calls.apology(reason="no CallSid"))
    try:
        turn = int(request.args.get("t", "0"))
    except ValueError:
        turn = -1
    try:
        return _xml(calls.turn(inbound, kind, step, turn))
    except Exception:
        log.exception("webhook failed; apologising and handing over", extra={
            "call_sid": inbound.call_sid})
        return _xml(calls.apology(reason="error", inbound=inbound))
