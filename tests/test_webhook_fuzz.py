"""Hostile input on every webhook: validly signed, randomly malformed requests.

Whatever arrives (huge Digits and SpeechResult, control characters, unknown steps, odd turn
numbers, unknown or reused CallSids, no From, a non-numeric Confidence, a made-up
DialCallStatus), the answer is 200 TwiML (or 403/404/405/413 from the web layer), never a
500, and never a Clinicea write: booking needs the caller's confirmation at the confirm step
of a call that got there, which a random webhook cannot give.

One app (a module-scoped rig) serves every example, so the store fills with the odd calls the
fuzzing makes and later examples meet them (reused CallSids).
"""

from __future__ import annotations

import dataclasses
import string
import xml.etree.ElementTree as ET
from urllib.parse import quote, urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flows.booking import FLOW
from ivr.app import MAX_REQUEST_BYTES
from ivr.config import DEMO_CLINIC
from ivr.sandbox.seed import DEMO_PATIENTS
from tests.calls import Rig, rig

WRITES = ("book", "register_and_book")
FUZZ = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow, HealthCheck.data_too_large])
STEPS = [row.key for row in FLOW.rows]
KNOWN_NUMBERS = [p.e164 for p in DEMO_PATIENTS.values()]
TRANSFER = DEMO_CLINIC.transfer_number


class _QuietRig(Rig):
    """The module's rig, with a short repr for hypothesis's failure reports."""

    def __repr__(self) -> str:
        return "<rig>"


@pytest.fixture(scope="module")
def r():
    with rig() as rig_:
        yield _QuietRig(**{f.name: getattr(rig_, f.name) for f in dataclasses.fields(rig_)})


def _no_writes(r) -> None:
    writes = [q for q in r.sandbox.requests() if q.operation in WRITES]
    assert writes == [], f"a random webhook reached Clinicea: {writes}"
    assert r.runtime.store.bookings() == [], "a random webhook recorded a booking"


def _check_answer(reply) -> None:
    assert reply.status_code in (200, 403, 404, 405, 413), (reply.status_code, reply.text[:300])
    if reply.status_code == 200:
        assert reply.headers["content-type"].startswith("text/xml")
        root = ET.fromstring(reply.content)
        assert root.tag == "Response"


# ----------------------------------------------------------------------------- strategies

# Any text httpx can send (no lone surrogates), control characters included.
any_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
controls = st.text(st.sampled_from([chr(c) for c in (*range(0, 32), 127, 0x85, 0x2028, 0x202E,
                                                     0xFEFF, 0x200B)] + list("1#*")),
                   max_size=30)
huge = st.builds(lambda ch, n: ch * n, st.sampled_from(["1", "9", "#", "a", "\u0000", "é", " "]),
                 st.integers(min_value=500, max_value=20_000))
values = st.one_of(any_text, controls, huge, st.sampled_from(["", " ", "1", "0", "#", "*"]))
confidence = st.one_of(st.floats(allow_nan=True, allow_infinity=True).map(repr), any_text,
                       st.sampled_from(["nan", "inf", "-inf", "1e309", "-0.5", "2", "0.9",
                                        "", "high"]))
dial_status = st.one_of(any_text, st.sampled_from(["completed", "busy", "no-answer", "failed",
                                                   "canceled", "answered", "COMPLETED", "ringing",
                                                   "queued", "in-progress", ""]))
call_status = st.sampled_from(["ringing", "in-progress", "completed", "busy", "failed",
                               "no-answer", "canceled", "queued", "", "weird"])
# A small pool so CallSids are reused across examples; plus fresh and malformed ones.
sid_pool = [f"CA{n:032x}" for n in range(1, 6)]
call_sid = st.one_of(st.sampled_from(sid_pool),
                     st.text("0123456789abcdef", min_size=32, max_size=32).map("CA".__add__),
                     any_text, st.sampled_from(["", "CA", "CA" + "z" * 32, "ca" + "0" * 32]))
caller = st.one_of(st.sampled_from(KNOWN_NUMBERS + ["anonymous", "+266696687", "Restricted",
                                                    "client:alice", "sip:x@y", "+92", ""]),
                   any_text, huge)
step = st.one_of(st.sampled_from(STEPS),
                 st.text(string.ascii_letters + string.digits + "_-.~", min_size=1, max_size=80)
                 .filter(lambda s: s not in (".", "..")))  # dot segments: the client drops them
query_value = st.one_of(st.integers(-5, 10).map(str),
                        st.text(string.ascii_letters + string.digits + "-_.~", max_size=30),
                        st.sampled_from(["99999999999999999999999", "-0", "1e3", " 1", ""]))
kind = st.one_of(st.sampled_from(["answer", "resume", "dial", ""]), query_value)


@st.composite
def forms(draw) -> dict[str, str]:
    """Twilio-ish form parameters, any of them missing, odd or huge, plus junk keys."""
    form: dict[str, str] = {}
    optional = {
        "CallSid": call_sid, "From": caller, "Caller": caller, "To": caller,
        "Digits": values, "SpeechResult": values, "Confidence": confidence,
        "DialCallStatus": dial_status, "CallStatus": call_status, "AccountSid": any_text,
        "DialCallDuration": query_value, "CallDuration": query_value,
    }
    for key, strategy in optional.items():
        if draw(st.booleans()) or key == "CallSid" and draw(st.booleans()):
            form[key] = draw(strategy)
    junk = draw(st.dictionaries(st.text(string.ascii_letters, min_size=1, max_size=12), any_text,
                                max_size=3))
    return {**junk, **form}


def _post(r, path: str, form: dict[str, str]):
    """Post a validly signed request: 200 TwiML, or 413 when the body is over the bound."""
    reply = r.phone.post_raw(path, form)
    _check_answer(reply)
    size = len(urlencode(form).encode())
    if size > MAX_REQUEST_BYTES:
        assert reply.status_code == 413
    elif size < MAX_REQUEST_BYTES - 1024:
        assert reply.status_code == 200, (reply.status_code, reply.text[:300])
    return reply


# ----------------------------------------------------------------------------- properties


@FUZZ
@given(form=forms())
def test_incoming_answers_twiml_for_any_form(r, form):
    _post(r, "/voice/incoming", form)
    _no_writes(r)


@FUZZ
@given(step=step, t=query_value, k=kind, form=forms(), extra=st.booleans())
def test_step_answers_twiml_for_any_step_turn_and_form(r, step, t, k, form, extra):
    query = {"t": t, "k": k}
    if extra:
        query["after"] = "dial"
    _post(r, f"/voice/step/{quote(step, safe='')}?{urlencode(query)}", form)
    _no_writes(r)


@FUZZ
@given(form=forms(), after=st.one_of(st.none(), query_value))
def test_status_and_fallback_answer_twiml_for_any_form(r, form, after):
    for route in ("/voice/status", "/voice/fallback"):
        path = route if after is None else f"{route}?{urlencode({'after': after})}"
        _post(r, path, form)
    _no_writes(r)


@FUZZ
@given(sid=st.sampled_from(sid_pool), who=st.sampled_from(KNOWN_NUMBERS[:6]),
       turns=st.lists(st.tuples(st.sampled_from(STEPS), st.integers(0, 8),
                                st.sampled_from(["answer", "resume", "dial"]),
                                st.sampled_from(["1", "2", "0", "9", "11", "#", "", "1" * 64])),
                      min_size=1, max_size=8))
def test_random_walks_on_reused_calls_never_book(r, sid, who, turns):
    """Plausible keys at real steps with guessed turn numbers: still no booking, because the
    confirm step is only reached by answering every question before it, in order."""
    base = r.phone.webhook_params(from_=who, call_sid=sid, call_status="in-progress")
    _post(r, "/voice/incoming", base)
    for step_, t, k, digits in turns:
        form = {**base, "Digits": digits, "DialCallStatus": "completed"}
        _post(r, f"/voice/step/{step_}?t={t}&k={k}", form)
    _no_writes(r)


# ----------------------------------------------------------------------------- examples


def test_a_body_over_64_kb_is_refused_with_413(r):
    assert MAX_REQUEST_BYTES == 64 * 1024
    params = r.phone.webhook_params(from_=KNOWN_NUMBERS[0], SpeechResult="x" * (70 * 1024))
    for path in ("/voice/incoming", "/voice/step/menu?t=1&k=answer", "/voice/status",
                 "/voice/fallback"):
        assert r.phone.post_raw(path, params).status_code == 413
        assert r.phone.post_raw(path, params, signature=None).status_code in (403, 413)
    assert r.runtime.store.load_call(params["CallSid"]) is None
    # Just under the bound is served (cut to the speech limit, not rejected).
    ok = r.phone.webhook_params(from_=KNOWN_NUMBERS[0], SpeechResult="x" * (60 * 1024))
    assert _post(r, "/voice/incoming", ok).status_code == 200


def test_other_methods_are_not_served(r):
    params = r.phone.webhook_params(from_=KNOWN_NUMBERS[0])
    for method in ("GET", "PUT", "DELETE", "PATCH", "OPTIONS"):
        reply = r.phone.post_raw("/voice/incoming", params, method=method)
        assert reply.status_code in (403, 405)
        assert r.runtime.store.load_call(params["CallSid"]) is None


def test_a_confirm_press_on_a_call_that_never_reached_confirm_does_not_book(make_rig):
    fresh = make_rig()
    bilal = DEMO_PATIENTS["Bilal Ahmed"].e164
    call = fresh.call(bilal)  # waiting at the menu, turn 1
    sid = call.sid
    for t in range(0, 12):
        form = fresh.phone.webhook_params(from_=bilal, call_sid=sid,
                                          call_status="in-progress", Digits="1")
        _post(fresh, f"/voice/step/confirm?t={t}&k=answer", form)
        _post(fresh, f"/voice/step/book?t={t}&k=resume", form)
    _no_writes(fresh)


@FUZZ
@given(speech=st.one_of(any_text, controls, huge,
                        st.sampled_from(["]]></Say><Dial>+19005550100</Dial><Say>",
                                         "<Hangup/>", "&amp; &lt;Dial&gt;", "ali\u0000 khan",
                                         "\u202eNAHK ILA", "Bilal Ahmed" * 200])))
def test_spoken_text_that_is_read_back_cannot_inject_twiml(r, speech):
    """The new caller's name is read back ("X. Is that right?"): whatever they say stays text."""
    call = r.call("+923009998877")
    assert call.waiting
    call.press("1")  # register me
    path = call.gather_url.replace("http://testserver", "")
    form = r.phone.webhook_params(from_="+923009998877", call_sid=call.sid,
                                  call_status="in-progress", SpeechResult=speech,
                                  Confidence="0.9")
    reply = _post(r, path, form)
    if reply.status_code == 200:
        root = ET.fromstring(reply.content)
        # Only the clinic's own number is ever dialled (asking for "agent" is a real request).
        for dial in root.iter("Dial"):
            numbers = [dial.text or "", *(n.text or "" for n in dial)]
            assert {n.strip() for n in numbers if n.strip()} == {TRANSFER}
        assert [el.tag for el in root] and all(el.tag in ("Say", "Gather", "Dial", "Pause",
                                                         "Redirect", "Hangup") for el in root)
        said = " ".join(el.text or "" for el in root.iter("Say"))
        assert all(ch.isprintable() for ch in said)
        assert len(said) < 2000
    _no_writes(r)


@pytest.mark.parametrize("fields", [1_000, 5_000])
def test_thousands_of_small_fields_are_answered_or_bounded(r, fields):
    params = r.phone.webhook_params(from_=KNOWN_NUMBERS[0])
    params |= {f"x{i}": "" for i in range(fields)}
    reply = r.phone.post_raw("/voice/incoming", params)
    _check_answer(reply)


def test_a_multipart_body_is_handled_like_a_form(r):
    params = r.phone.webhook_params(from_=KNOWN_NUMBERS[0])
    url = r.phone.absolute("/voice/incoming")
    request = r.phone.http.build_request("POST", url, data=params,
                                         files={"upload": ("x.bin", b"\0" * 1024)})
    request.headers["X-Twilio-Signature"] = r.phone.sign(url, params)
    reply = r.phone.http.send(request)
    _check_answer(reply)
    assert reply.status_code in (200, 403)
    big = r.phone.http.build_request("POST", url, data=params,
                                     files={"upload": ("x.bin", b"\0" * (80 * 1024))})
    big.headers["X-Twilio-Signature"] = r.phone.sign(url, params)
    assert r.phone.http.send(big).status_code == 413
