"""Tests for ivr.simulator against small Flask TwiML apps defined here (not the real IVR)."""

from __future__ import annotations

import random
import re
import threading
from collections.abc import Callable
from datetime import UTC, datetime

import httpx
import pytest
from flask import Flask, Response, request, session
from twilio.request_validator import RequestValidator
from twilio.twiml.voice_response import Dial, Gather, VoiceResponse

from ivr.simulator import (
    APP_ERROR_MESSAGE,
    AppError,
    Dialed,
    Heard,
    HungUp,
    Paused,
    Played,
    Pressed,
    Redirected,
    Said,
    Silence,
    SimulatorError,
    TwilioSimulator,
    Warning,
    raw_signature,
    sign,
)

TOKEN = "test-auth-token-0123456789abcdef"
CALLER = "+923216315551"
CLINIC = "+922135550199"
START = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


# --------------------------------------------------------------------------- toy app helpers


def xml(resp: VoiceResponse | str, status: int = 200, mimetype: str = "text/xml") -> Response:
    return Response(str(resp), status=status, mimetype=mimetype)


def toy_app(public_url: str | None = None) -> Flask:
    """A Flask app that checks X-Twilio-Signature like a real one and logs what it saw.

    ``public_url``: the app's public base URL behind a TLS-terminating proxy (it then validates
    against that instead of ``request.url``).
    """
    app = Flask(__name__)
    app.testing = True
    app.secret_key = "toy"
    seen: list[dict] = []
    app.config["SEEN"] = seen
    validator = RequestValidator(TOKEN)

    @app.before_request
    def check_signature() -> Response | None:
        url = request.url
        if public_url:
            query = request.query_string.decode()
            url = public_url.rstrip("/") + request.path + (f"?{query}" if query else "")
        params = request.form if request.method == "POST" else {}
        valid = validator.validate(url, params, request.headers.get("X-Twilio-Signature", ""))
        seen.append(
            {"method": request.method, "path": request.path, "args": dict(request.args),
             "form": dict(request.form), "valid": valid, "url": url}
        )
        if not valid:
            return Response("bad signature", status=403)
        return None

    @app.post("/voice/status")
    def status() -> Response:
        return Response(status=204)

    @app.post("/voice/fallback")
    def fallback() -> Response:
        r = VoiceResponse()
        r.say("Sorry, our phone system is having trouble.")
        r.hangup()
        return xml(r)

    return app


def make_sim(app: Flask, **kwargs) -> TwilioSimulator:
    client = httpx.Client(transport=httpx.WSGITransport(app=app), base_url="http://testserver")
    kwargs.setdefault("now", lambda: START)
    return TwilioSimulator(base_url="http://testserver", auth_token=TOKEN, http=client,
                           to=CLINIC, **kwargs)


def seen(app: Flask, path: str | None = None) -> list[dict]:
    return [s for s in app.config["SEEN"] if path is None or s["path"] == path]


def menu_app(gather_kwargs: dict | None = None, after: Callable[[VoiceResponse], None] | None = None
             ) -> Flask:
    """/voice/incoming: a Gather to /voice/menu; /voice/menu echoes what it received."""
    app = toy_app()

    @app.post("/voice/incoming")
    def incoming() -> Response:
        r = VoiceResponse()
        r.say("Welcome to City Clinic.", voice="Polly.Amy", language="en-GB")
        kwargs = {"num_digits": 1} if gather_kwargs is None else gather_kwargs
        g = Gather(action="/voice/menu", **kwargs)
        g.say("Press 1 to book, 2 for an agent.")
        r.append(g)
        if after:
            after(r)
        else:
            r.say("We did not hear anything.")
            r.hangup()
        return xml(r)

    @app.post("/voice/menu")
    def menu() -> Response:
        f = request.form
        r = VoiceResponse()
        if "Digits" in f:
            r.say(f"You pressed {f['Digits']}.")
        elif "SpeechResult" in f:
            r.say(f"You said {f['SpeechResult']}.")
        else:
            r.say("No input.")
        r.hangup()
        return xml(r)

    return app


# --------------------------------------------------------------------------- signing


def test_sign_matches_twilio_doc_vector() -> None:
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    params = {"CallSid": "CA1234567890ABCDE", "Digits": "1234", "From": "+14158675309",
              "To": "+18005551212", "Caller": "+14158675309"}
    assert sign(url, params, "12345") == "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    assert raw_signature(url, params, "12345") == "RSOYDt4T1cUTdK1PDd93/VVr8B8="


def test_every_request_is_signed_and_the_app_accepts_it() -> None:
    app = menu_app()
    call = make_sim(app).call(from_=CALLER)
    call.press("1")
    assert call.ended and "You pressed 1." in call.heard
    log = seen(app)
    assert [s["path"] for s in log] == ["/voice/incoming", "/voice/menu", "/voice/status"]
    assert all(s["valid"] for s in log)


def test_post_raw_sends_good_bad_and_missing_signatures() -> None:
    app = menu_app()
    sim = make_sim(app)
    params = sim.webhook_params(CALLER)
    assert sim.post_raw("/voice/incoming", params).status_code == 200
    assert sim.post_raw("/voice/incoming", params, signature="bm9wZQ==").status_code == 403
    assert sim.post_raw("/voice/incoming", params, signature=None).status_code == 403
    wrong = TwilioSimulator("http://testserver", "wrong-token", http=sim.http)
    assert wrong.post_raw("/voice/incoming", params).status_code == 403
    # a tampered body: valid signature for other params
    good = sim.sign("http://testserver/voice/incoming", params)
    tampered = {**params, "From": "+14155550000"}
    assert sim.post_raw("/voice/incoming", tampered, signature=good).status_code == 403


def test_signing_base_url_simulates_a_tls_terminating_proxy() -> None:
    app = menu_app()
    # the app validates against request.url (http://testserver/...): a proxy signature fails
    proxied = make_sim(app, signing_base_url="https://public.example", fallback_url=None)
    call = proxied.call(from_=CALLER)
    assert call.ended and call.heard == APP_ERROR_MESSAGE
    assert call.errors[0].code == 11217 and "403" in call.errors[0].text

    # an app told its public URL accepts it
    public_app = toy_app(public_url="https://public.example")

    @public_app.post("/voice/incoming")
    def incoming() -> Response:
        r = VoiceResponse()
        r.say("Hello through the proxy.")
        return xml(r)

    call = make_sim(public_app, signing_base_url="https://public.example").call(from_=CALLER)
    assert call.heard == "Hello through the proxy."
    assert all(s["valid"] for s in seen(public_app))
    assert seen(public_app)[0]["url"] == "https://public.example/voice/incoming"
    # the wire URL stays the real one
    assert call.requests[0][1] == "http://testserver/voice/incoming"


# --------------------------------------------------------------------------- parameters


def test_first_webhook_carries_twilio_parameters() -> None:
    app = menu_app()
    call = make_sim(app).call(from_=CALLER)
    first = seen(app, "/voice/incoming")[0]["form"]
    assert re.fullmatch(r"CA[0-9a-f]{32}", first["CallSid"])
    assert re.fullmatch(r"AC[0-9a-f]{32}", first["AccountSid"])
    assert first["CallSid"] == call.sid
    assert first["From"] == first["Caller"] == CALLER
    assert first["To"] == first["Called"] == CLINIC
    assert first["CallStatus"] == "ringing"
    assert first["Direction"] == "inbound"
    assert first["ApiVersion"] == "2010-04-01"
    assert first["FromCountry"] == first["ToCountry"] == "PK"
    call.press("2")
    menu = seen(app, "/voice/menu")[0]["form"]
    assert menu["CallStatus"] == "in-progress"
    assert menu["CallSid"] == call.sid and menu["From"] == CALLER


def test_extra_params_and_withheld_caller() -> None:
    app = menu_app()
    make_sim(app).call(from_="anonymous", extra_params={"CallerName": "ALI"})
    first = seen(app, "/voice/incoming")[0]["form"]
    assert first["From"] == "anonymous" and first["CallerName"] == "ALI"
    assert first["FromCountry"] == ""


def test_call_sids_are_deterministic_with_a_seed() -> None:
    app = menu_app()
    a = [make_sim(app, seed=7).call().sid for _ in range(2)]
    b = make_sim(app, rng=random.Random(7))
    assert a[0] == a[1] == b.call().sid
    sim = make_sim(app, seed=7)
    assert sim.call().sid != sim.call().sid


# --------------------------------------------------------------------------- gather


def test_gather_digits_and_what_was_heard() -> None:
    app = menu_app()
    call = make_sim(app).call(from_=CALLER)
    assert not call.ended
    assert call.gather == {"action": "/voice/menu", "numDigits": "1"}
    assert call.gather_url == "http://testserver/voice/menu"
    assert call.last_heard == "Welcome to City Clinic. Press 1 to book, 2 for an agent."
    call.press("1")
    form = seen(app, "/voice/menu")[0]["form"]
    assert form["Digits"] == "1" and form["FinishedOnKey"] == "" and form["msg"] == "Gather End"
    assert call.last_heard == "You pressed 1."
    assert call.heard.startswith("Welcome to City Clinic.")
    assert call.heard.endswith("You pressed 1.")
    assert call.gather is None and call.ended and call.status == "completed"


def test_finish_on_key_is_stripped_from_digits() -> None:
    app = menu_app({})
    call = make_sim(app).call()
    call.press("12345#")
    form = seen(app, "/voice/menu")[0]["form"]
    assert form["Digits"] == "12345" and form["FinishedOnKey"] == "#"
    assert call.transcript[-3] == Pressed("12345#", "12345")


def test_num_digits_truncates() -> None:
    app = menu_app({"num_digits": 4})
    make_sim(app).call().press("123456")
    form = seen(app, "/voice/menu")[0]["form"]
    assert form["Digits"] == "1234" and form["FinishedOnKey"] == ""


def test_custom_and_empty_finish_on_key() -> None:
    app = menu_app({"finish_on_key": "*"})
    make_sim(app).call().press("12#4*9")
    assert seen(app, "/voice/menu")[0]["form"]["Digits"] == "12#4"
    app = menu_app({"finish_on_key": ""})
    make_sim(app).call().press("12#")
    form = seen(app, "/voice/menu")[0]["form"]
    assert form["Digits"] == "12#" and form["FinishedOnKey"] == ""


def test_finish_on_key_first_is_no_input() -> None:
    app = menu_app({})
    call = make_sim(app).call()
    call.press("#")
    assert not seen(app, "/voice/menu")
    assert call.last_heard == "We did not hear anything."
    assert call.ended


def test_speech_input() -> None:
    app = menu_app({"input": "dtmf speech", "hints": "tuesday, wednesday"})
    call = make_sim(app).call()
    call.say("next tuesday at 4 pm", confidence=0.92)
    form = seen(app, "/voice/menu")[0]["form"]
    assert form["SpeechResult"] == "next tuesday at 4 pm"
    assert form["Confidence"] == "0.92"
    assert "Digits" not in form
    assert call.last_heard == "You said next tuesday at 4 pm."
    assert Said("next tuesday at 4 pm", 0.92) in call.transcript


def test_silence_falls_through_to_the_next_verb() -> None:
    app = menu_app()
    call = make_sim(app).call()
    call.silence()
    assert not seen(app, "/voice/menu")
    assert call.last_heard == "We did not hear anything."
    assert call.ended and call.status == "completed"
    assert Silence() in call.transcript


def test_silence_with_action_on_empty_result_posts_without_input() -> None:
    app = menu_app({"num_digits": 1, "action_on_empty_result": True})
    call = make_sim(app).call()
    call.silence()
    form = seen(app, "/voice/menu")[0]["form"]
    assert "Digits" not in form and "SpeechResult" not in form
    assert form["msg"] == "Gather End"
    assert call.last_heard == "No input."


def test_silence_at_the_end_of_the_document_ends_the_call() -> None:
    app = menu_app(after=lambda r: None)
    call = make_sim(app).call()
    call.silence()
    assert call.ended and call.transcript[-1] == HungUp("end-of-twiml")


def test_gather_without_action_posts_to_the_current_document() -> None:
    app = toy_app()

    @app.post("/ivr/ask")
    def ask() -> Response:
        r = VoiceResponse()
        if "Digits" in request.form:
            r.say(f"Got {request.form['Digits']} at {request.args.get('t')}.")
            return xml(r)
        r.gather(num_digits=2).say("Two digits please.")
        return xml(r)

    call = make_sim(app, voice_url="/ivr/ask?t=1").call()
    call.press("42")
    assert call.last_heard == "Got 42 at 1."
    assert call.requests[1][1] == "http://testserver/ivr/ask?t=1"


# --------------------------------------------------------------------------- urls and redirects


def test_relative_urls_resolve_against_the_document_url() -> None:
    app = toy_app()

    @app.post("/ivr/menu/start")
    def start() -> Response:
        r = VoiceResponse()
        r.gather(action="next?turn=2", num_digits=1).say("Choose.")
        return xml(r)

    @app.post("/ivr/menu/next")
    def nxt() -> Response:
        r = VoiceResponse()
        r.redirect("../done", method="GET")
        return xml(r)

    @app.get("/ivr/done")
    def done() -> Response:
        r = VoiceResponse()
        r.say(f"Done with {request.args['Digits'] if 'Digits' in request.args else 'nothing'}.")
        return xml(r)

    call = make_sim(app, voice_url="/ivr/menu/start").call()
    call.press("3")
    urls = [(m, u.split("?")[0]) for m, u, _ in call.requests]
    assert urls[:3] == [
        ("POST", "http://testserver/ivr/menu/start"),
        ("POST", "http://testserver/ivr/menu/next"),
        ("GET", "http://testserver/ivr/done"),
    ]
    assert seen(app, "/ivr/menu/next")[0]["args"] == {"turn": "2"}
    # GET: the standard params go in the (signed) query string, not the gather's Digits
    done_req = seen(app, "/ivr/done")[0]
    assert done_req["valid"] and done_req["args"]["CallSid"] == call.sid
    assert call.last_heard == "Done with nothing."
    assert Redirected("http://testserver/ivr/done") in call.transcript


def test_redirect_verb_and_verbs_after_it_are_unreachable() -> None:
    app = toy_app()

    @app.post("/voice/incoming")
    def incoming() -> Response:
        r = VoiceResponse()
        r.say("One.")
        r.redirect("/voice/two#rt=5000")
        r.say("Never.")
        return xml(r)

    @app.post("/voice/two")
    def two() -> Response:
        r = VoiceResponse()
        r.say("Two.")
        return xml(r)

    call = make_sim(app).call()
    assert call.heard == "One. Two."
    # the fragment is stripped from the wire URL and from the signed URL
    assert call.requests[1][1] == "http://testserver/voice/two"
    assert all(s["valid"] for s in seen(app))


def test_http_redirect_is_followed_without_digits_and_flagged() -> None:
    app = menu_app()

    @app.post("/voice/moved")
    def moved() -> Response:
        return Response("", status=307, headers={"Location": "/voice/menu"})

    app.view_functions["incoming"] = lambda: xml(
        VoiceResponse().append(Gather(action="/voice/moved", num_digits=1))
    )
    call = make_sim(app).call()
    call.press("5")
    assert call.last_heard == "No input."
    assert "Digits" not in seen(app, "/voice/menu")[0]["form"]
    flags = [w for w in call.warnings if w.code == "http-redirect"]
    assert flags and "Digits" in flags[0].text


def test_too_many_http_redirects_is_11215() -> None:
    app = toy_app()

    @app.route("/voice/loop/<int:n>", methods=["GET", "POST"])
    def loop(n: int) -> Response:
        return Response("", status=302, headers={"Location": f"/voice/loop/{n + 1}"})

    call = make_sim(app, voice_url="/voice/loop/0", fallback_url=None).call()
    assert call.errors[0].code == 11215
    assert call.heard == APP_ERROR_MESSAGE


def test_redirect_loop_raises_simulator_error() -> None:
    app = toy_app()

    @app.post("/voice/incoming")
    def incoming() -> Response:
        r = VoiceResponse()
        r.redirect("/voice/incoming")
        return xml(r)

    with pytest.raises(SimulatorError, match="redirect loop") as info:
        make_sim(app, max_fetches_per_turn=5).call()
    assert "redirect -> http://testserver/voice/incoming" in str(info.value)


# --------------------------------------------------------------------------- dial, hangup, reject


def dial_app(action: bool) -> Flask:
    app = toy_app()

    @app.post("/voice/incoming")
    def incoming() -> Response:
        r = VoiceResponse()
        r.say("Connecting you.")
        d = Dial(action="/voice/after-dial" if action else None, timeout=20)
        d.number("+922135550100")
        r.append(d)
        r.say("After the dial.")
        return xml(r)

    @app.post("/voice/after-dial")
    def after_dial() -> Response:
        r = VoiceResponse()
        r.say(f"Dial status {request.form['DialCallStatus']}.")
        return xml(r)

    return app


@pytest.mark.parametrize("outcome", ["completed", "busy", "no-answer", "failed"])
def test_dial_outcome_goes_to_the_action(outcome: str) -> None:
    app = dial_app(action=True)
    call = make_sim(app).call(dial_outcome=outcome)
    form = seen(app, "/voice/after-dial")[0]["form"]
    assert form["DialCallStatus"] == outcome
    assert re.fullmatch(r"CA[0-9a-f]{32}", form["DialCallSid"])
    assert form["DialBridged"] == ("true" if outcome == "completed" else "false")
    assert form["DialCallDuration"] == ("42" if outcome == "completed" else "0")
    assert call.dialed == ["+922135550100"]
    assert Dialed("+922135550100", outcome) in call.transcript
    assert call.heard == f"Connecting you. Dial status {outcome}."


def test_dial_without_action_continues_and_next_dial_scripts_one_dial() -> None:
    app = dial_app(action=False)
    call = make_sim(app).call(dial_outcomes=["busy"])
    assert call.heard == "Connecting you. After the dial."
    assert call.transcript[1] == Dialed("+922135550100", "busy")
    with pytest.raises(SimulatorError, match="unknown dial outcome"):
        call.next_dial("exploded")


def test_hangup_ends_the_call() -> None:
    app = toy_app()

    @app.post("/voice/incoming")
    def incoming() -> Response:
        r = VoiceResponse()
        r.say("Goodbye.")
        r.hangup()
        r.say("Never heard.")
        return xml(r)

    call = make_sim(app).call()
    assert call.ended and call.status == "completed" and call.heard == "Goodbye."
    assert call.transcript == [Heard("Goodbye."), HungUp("hangup")]
    assert seen(app, "/voice/status")[0]["form"]["CallStatus"] == "completed"


@pytest.mark.parametrize(("reason", "status"), [("busy", "busy"), (None, "no-answer")])
def test_reject_ends_unanswered(reason: str | None, status: str) -> None:
    app = toy_app()

    @app.post("/voice/incoming")
    def incoming() -> Response:
        r = VoiceResponse()
        r.reject(reason=reason)
        r.say("Never heard.")
        return xml(r)

    call = make_sim(app).call()
    assert call.ended and call.status == status and call.heard == ""
    cb = seen(app, "/voice/status")[0]["form"]
    assert cb["CallStatus"] == status and cb["CallDuration"] == "0"


def test_caller_hang_up_mid_gather_sends_no_action() -> None:
    app = menu_app()
    call = make_sim(app).call()
    call.hang_up()
    assert call.ended and call.status == "completed"
    assert not seen(app, "/voice/menu")
    assert [s["path"] for s in seen(app)] == ["/voice/incoming", "/voice/status"]
    assert call.transcript[-1] == HungUp("caller")


# --------------------------------------------------------------------------- invalid twiml


def _bad_responses() -> dict[str, tuple[Callable[[], Response], int]]:
    ok = str(VoiceResponse().say("Hi"))
    return {
        "leading-whitespace": (lambda: xml("\n " + ok), 12100),
        "bom": (lambda: Response(b"\xef\xbb\xbf" + ok.encode(), mimetype="text/xml"), 12100),
        "wrong-root": (lambda: xml('<?xml version="1.0"?><Reply><Say>x</Say></Reply>'), 12102),
        "malformed": (lambda: xml("<Response><Say>x</Response>"), 12100),
        "json": (lambda: Response('{"say": "x"}', mimetype="application/json"), 12300),
        "no-content-type": (lambda: _no_ctype(ok), 12300),
        "server-error": (lambda: xml("<h1>oops</h1>", status=500, mimetype="text/html"), 11217),
        "too-big": (lambda: xml(VoiceResponse().say("x" * (65 * 1024))), 11750),
        "empty": (lambda: xml(""), 12100),
    }


def _no_ctype(body: str) -> Response:
    resp = Response(body)
    del resp.headers["Content-Type"]
    return resp


@pytest.mark.parametrize("case", sorted(_bad_responses()))
def test_invalid_twiml_goes_to_the_fallback(case: str) -> None:
    make, code = _bad_responses()[case]
    app = toy_app()
    app.add_url_rule("/voice/incoming", "incoming", make, methods=["POST"])
    call = make_sim(app).call()
    assert call.errors == [call.errors[0]] and call.errors[0].code == code
    fb = seen(app, "/voice/fallback")[0]["form"]
    assert fb["ErrorCode"] == str(code)
    assert fb["ErrorUrl"] == "http://testserver/voice/incoming"
    assert fb["CallSid"] == call.sid
    assert call.heard == "Sorry, our phone system is having trouble."
    assert call.ended and APP_ERROR_MESSAGE not in call.heard


@pytest.mark.parametrize("case", ["leading-whitespace", "wrong-root", "json", "server-error"])
def test_invalid_twiml_without_fallback_plays_the_app_error(case: str) -> None:
    make, code = _bad_responses()[case]
    app = toy_app()
    app.add_url_rule("/voice/incoming", "incoming", make, methods=["POST"])
    call = make_sim(app, fallback_url=None).call()
    assert call.heard == APP_ERROR_MESSAGE
    assert call.ended and call.status == "completed"
    assert call.transcript == [
        AppError(code, call.errors[0].text, "http://testserver/voice/incoming"),
        Heard(APP_ERROR_MESSAGE),
        HungUp("app-error"),
    ]
    assert seen(app, "/voice/status")[0]["form"]["CallStatus"] == "completed"


def test_mid_call_error_and_broken_fallback_end_with_the_app_error() -> None:
    app = menu_app()
    app.view_functions["menu"] = lambda: xml("oops", status=500)
    app.view_functions["fallback"] = lambda: xml("also broken", mimetype="text/xml")
    call = make_sim(app).call()
    call.press("1")
    assert [e.code for e in call.errors] == [11217, 12100]
    assert call.errors[0].url == "http://testserver/voice/menu"
    assert seen(app, "/voice/fallback")[0]["form"]["ErrorUrl"] == "http://testserver/voice/menu"
    assert call.last_heard == APP_ERROR_MESSAGE and call.ended


def test_plain_text_and_audio_responses() -> None:
    app = toy_app()
    app.add_url_rule("/voice/text", "text",
                     lambda: Response("Hello in plain text", mimetype="text/plain"),
                     methods=["POST"])
    parsed = VoiceResponse()
    parsed.say("Parsed")
    app.add_url_rule("/voice/twiml-text", "twiml_text",
                     lambda: Response(str(parsed), mimetype="text/plain"), methods=["POST"])
    app.add_url_rule("/voice/audio", "audio",
                     lambda: Response(b"ID3", mimetype="audio/mpeg"), methods=["POST"])
    assert make_sim(app, voice_url="/voice/text").call().heard == "Hello in plain text"
    assert make_sim(app, voice_url="/voice/twiml-text").call().heard == "Parsed"
    call = make_sim(app, voice_url="/voice/audio").call()
    assert call.transcript[0] == Played("http://testserver/voice/audio")
    assert call.ended


def test_unknown_verb_and_bad_nesting_are_warnings_and_skipped() -> None:
    app = toy_app()
    body = (
        '<?xml version="1.0" encoding="UTF-8"?><Response>'
        "<say>lower case</say><Speak>unknown</Speak>"
        '<Gather numDigits="1" colour="red"><Say>Inside.</Say><Dial>+1</Dial></Gather>'
        "</Response>"
    )
    app.add_url_rule("/voice/incoming", "incoming", lambda: xml(body), methods=["POST"])
    call = make_sim(app).call()
    codes = [(w.code, w.text) for w in call.warnings]
    assert all(isinstance(w, Warning) for w in call.transcript if w in call.warnings)
    assert (12200, "unknown verb <say>; skipped") in codes
    assert (12200, "unknown verb <Speak>; skipped") in codes
    assert (12200, "unknown attribute 'colour' on <Gather>") in codes
    assert (12200, "<Dial> is not allowed inside <Gather>; ignored") in codes
    assert call.heard == "Inside."
    assert call.gather is not None and not call.dialed


def test_say_attributes_ssml_and_pause_in_transcript() -> None:
    app = toy_app()

    @app.post("/voice/incoming")
    def incoming() -> Response:
        r = VoiceResponse()
        s = r.say("Your appointment is on", voice="Polly.Amy", language="en-GB")
        s.say_as("3/4", interpret_as="date")
        s.sub("Doctor", alias="Dr.")
        r.pause(length=2)
        r.play("/audio/beep.mp3")
        return xml(r)

    call = make_sim(app).call()
    assert call.transcript[:3] == [
        Heard("Your appointment is on 3/4 Dr.", "Polly.Amy", "en-GB"),
        Paused(2),
        Played("http://testserver/audio/beep.mp3"),
    ]


# --------------------------------------------------------------------------- status callback


def test_status_callback_params() -> None:
    app = menu_app()
    call = make_sim(app).call()
    call.press("1")
    cb = seen(app, "/voice/status")
    assert len(cb) == 1
    form = cb[0]["form"]
    assert form["CallStatus"] == "completed"
    assert form["CallSid"] == call.sid and form["From"] == CALLER and form["To"] == CLINIC
    assert form["CallbackSource"] == "call-progress-events"
    assert form["SequenceNumber"] == "0"
    assert int(form["CallDuration"]) == call.duration > 0
    assert form["Timestamp"].endswith("+0000") and form["Timestamp"].startswith("Mon, 02 Mar 2026")
    assert cb[0]["valid"]


def test_no_status_callback_when_not_configured() -> None:
    app = menu_app()
    call = make_sim(app, status_callback=None).call()
    call.hang_up()
    assert not seen(app, "/voice/status")


# --------------------------------------------------------------------------- transcript, misuse


def test_transcript_records_the_whole_conversation() -> None:
    app = menu_app({"num_digits": 1, "input": "dtmf speech"})
    call = make_sim(app).call()
    call.say("book", confidence=None)
    assert call.transcript == [
        Heard("Welcome to City Clinic.", "Polly.Amy", "en-GB"),
        Heard("Press 1 to book, 2 for an agent."),
        Said("book", None),
        Heard("You said book."),
        HungUp("hangup"),
    ]
    assert "Confidence" not in seen(app, "/voice/menu")[0]["form"]


def test_misuse_raises_with_the_whole_transcript() -> None:
    app = menu_app()
    call = make_sim(app).call()
    with pytest.raises(SimulatorError) as info:
        call.say("hello")  # dtmf-only gather
    assert 'IVR says: "Welcome to City Clinic." [voice=Polly.Amy, language=en-GB]' in str(
        info.value
    )
    call.press("1")
    with pytest.raises(SimulatorError) as info:
        call.press("2")
    message = str(info.value)
    assert "the call has ended" in message
    for line in ('IVR says: "Press 1 to book, 2 for an agent."', "caller presses 1",
                 'IVR says: "You pressed 1."', "call ends (hangup)"):
        assert line in message
    with pytest.raises(SimulatorError, match="already ended"):
        call.hang_up()
    with pytest.raises(SimulatorError, match="no <Gather> is listening|has ended"):
        call.silence()


def test_press_rejects_bad_keys() -> None:
    call = make_sim(menu_app()).call()
    with pytest.raises(SimulatorError, match="keys must be"):
        call.press("1a")
    assert not call.ended


# --------------------------------------------------------------------------- concurrency, cookies


def test_concurrent_calls_from_one_simulator() -> None:
    app = menu_app()
    sim = make_sim(app, seed=1)
    results: dict[int, str] = {}
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            call = sim.call(from_=f"+92321631{i:04d}")
            call.press(str(i % 10))
            results[i] = call.last_heard
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert results == {i: f"You pressed {i % 10}." for i in range(12)}
    sids = {s["form"]["CallSid"] for s in seen(app, "/voice/menu")}
    assert len(sids) == 12


def test_cookies_are_kept_per_call() -> None:
    app = toy_app()

    @app.post("/voice/incoming")
    def incoming() -> Response:
        session["sid"] = request.form["CallSid"]
        r = VoiceResponse()
        r.gather(action="/voice/who", num_digits=1).say("Press any key.")
        return xml(r)

    @app.post("/voice/who")
    def who() -> Response:
        same = session.get("sid") == request.form["CallSid"]
        r = VoiceResponse()
        r.say("same" if same else "different")
        return xml(r)

    sim = make_sim(app)
    a, b = sim.call(), sim.call()
    a.press("1")
    b.press("1")
    assert a.last_heard == "same" and b.last_heard == "same"


# --------------------------------------------------------------------------- transport faults


class FlakyTransport(httpx.BaseTransport):
    """Delegates to the WSGI app, but fails requests to the given paths."""

    def __init__(self, app: Flask, fail: dict[str, type[httpx.TransportError]]) -> None:
        self.inner = httpx.WSGITransport(app=app)
        self.fail = fail
        self.attempts: list[str] = []

    def handle_request(self, req: httpx.Request) -> httpx.Response:
        self.attempts.append(req.url.path)
        exc = self.fail.get(req.url.path)
        if exc is not None:
            raise exc("simulated", request=req)
        return self.inner.handle_request(req)


@pytest.mark.parametrize(
    ("exc", "attempts"), [(httpx.ConnectError, 2), (httpx.ReadTimeout, 1)]
)
def test_connection_failures_are_11205_and_only_connect_is_retried(
    exc: type[httpx.TransportError], attempts: int
) -> None:
    app = menu_app()
    transport = FlakyTransport(app, {"/voice/incoming": exc})
    sim = TwilioSimulator("http://testserver", TOKEN, http=httpx.Client(transport=transport))
    call = sim.call()
    assert transport.attempts.count("/voice/incoming") == attempts
    assert call.errors[0].code == 11205
    assert call.heard == "Sorry, our phone system is having trouble."
    assert seen(app, "/voice/fallback")[0]["form"]["ErrorCode"] == "11205"


def test_dial_outcome_can_be_changed_between_turns() -> None:
    app = dial_app(action=True)

    @app.post("/voice/menu")
    def menu() -> Response:
        r = VoiceResponse()
        r.dial("+922135550100", action="/voice/after-dial")
        return xml(r)

    app.view_functions["incoming"] = lambda: xml(
        VoiceResponse().append(Gather(action="/voice/menu", num_digits=1))
    )
    call = make_sim(app).call()
    assert call.waiting
    call.dial_outcome = "no-answer"
    call.press("0")
    assert call.last_heard == "Dial status no-answer."
    assert not call.waiting and call.dialed == ["+922135550100"]


def barge_in_app() -> Flask:
    """A greeting and a menu nested in one speech gather (as the IVR plays them)."""
    app = menu_app({"input": "dtmf speech"})

    @app.post("/voice/incoming", endpoint="barge_incoming")
    def incoming() -> Response:
        r = VoiceResponse()
        g = Gather(action="/voice/menu", input="dtmf speech")
        g.say("Hello Bilal, welcome back.")
        g.say("Your last visit was in October.")
        g.say("Press 1 to book.")
        r.append(g)
        return xml(r)

    app.view_functions["incoming"] = incoming
    return app


def test_a_caller_who_speaks_over_the_prompts_hears_only_what_came_before() -> None:
    call = make_sim(barge_in_app()).call()
    assert call.prompts == ["Hello Bilal, welcome back.", "Your last visit was in October.",
                            "Press 1 to book."]
    call.say("book me on Friday at 11", barge_in=6)  # the greeting, then two words
    assert call.transcript[:3] == [
        Heard("Hello Bilal, welcome back."), Heard("Your last", cut=True),
        Said("book me on Friday at 11", 0.9)]
    assert "October" not in call.heard and "Press 1" not in call.heard
    assert call.last_heard == "You said book me on Friday at 11."
    assert call.duration < make_sim(barge_in_app()).call().say("book me on Friday at 11").duration


def test_keys_barge_in_too_and_bargein_false_plays_everything() -> None:
    call = make_sim(barge_in_app()).call()
    call.press("1", barge_in=0)
    assert call.transcript[0] == Pressed("1", "1") and call.last_heard == "You pressed 1."
    app = menu_app({"input": "dtmf speech", "barge_in": False})
    call = make_sim(app).call()
    call.say("book", barge_in=0)
    assert "Press 1 to book, 2 for an agent." in call.heard


# --------------------------------------------------------------------------- outbound calls


def outbound_app() -> Flask:
    """/remind: a Gather to /remind/answer; /remind/status takes the call's status callback."""
    app = toy_app()

    @app.post("/remind")
    def remind() -> Response:
        r = VoiceResponse()
        g = Gather(action="/remind/answer", num_digits=1)
        g.say(f"Hello, a reminder. Answered by {request.form.get('AnsweredBy', 'nobody')}.")
        r.append(g)
        return xml(r)

    @app.post("/remind/answer")
    def answer() -> Response:
        r = VoiceResponse()
        r.say(f"You pressed {request.form['Digits']}. Goodbye.")
        r.hangup()
        return xml(r)

    @app.post("/remind/status")
    def remind_status() -> Response:
        return Response(status=204)

    return app


def test_an_outbound_call_fetches_its_url_as_twilio_does_after_calls_create() -> None:
    app = outbound_app()
    call = make_sim(app).outbound("/remind", to=CALLER, status_callback="/remind/status")
    assert "Answered by human" in call.heard
    first = seen(app, "/remind")[0]
    assert first["valid"]
    form = first["form"]
    assert form["Direction"] == "outbound-api"
    assert form["From"] == CLINIC and form["To"] == CALLER
    assert form["AnsweredBy"] == "human"
    assert form["CallStatus"] == "in-progress"  # answered before Twilio fetches the Url
    call.press("1")
    assert "You pressed 1" in call.heard and call.ended
    status = seen(app, "/remind/status")
    assert [s["form"]["CallStatus"] for s in status] == ["completed"]
    assert status[0]["valid"] and status[0]["form"]["Direction"] == "outbound-api"
    # The number's own (inbound) status callback is not the outbound call's.
    assert seen(app, "/voice/status") == []


def test_an_outbound_call_to_a_machine_or_to_nobody() -> None:
    app = outbound_app()
    sim = make_sim(app)
    machine = sim.outbound("/remind", to=CALLER, answered_by="machine_end_beep")
    assert "Answered by machine_end_beep" in machine.heard
    unanswered = sim.outbound("/remind", to=CALLER, status_callback="/remind/status",
                              outcome="no-answer")
    assert unanswered.ended and unanswered.status == "no-answer" and unanswered.heard == ""
    assert len(seen(app, "/remind")) == 1  # nobody answered: the Url was never fetched
    [status] = seen(app, "/remind/status")
    assert status["form"]["CallStatus"] == "no-answer" and status["form"]["CallDuration"] == "0"
    assert "AnsweredBy" not in status["form"]  # no machine-detection verdict without an answer
