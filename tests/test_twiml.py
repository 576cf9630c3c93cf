"""The TwiML the app sends, checked by its structure: Twilio's rules kept on every reply."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping

from hypothesis import given, settings
from hypothesis import strategies as st
from twilio.twiml.voice_response import Gather, VoiceResponse

from flows.engine import DialSpec, GatherSpec, Line, Reply
from ivr import twiml
from ivr.sandbox.seed import DEMO_PATIENTS
from tests.calls import rig

BILAL = DEMO_PATIENTS["Bilal Ahmed"].e164


def replies_of_a_whole_call() -> list[tuple[str, str]]:
    """(content type, body) of every TwiML reply of a keypad booking and a transfer."""
    out: list[tuple[str, str]] = []
    with rig() as r:
        original = r.phone.http.send

        def recording_send(request, **kw):
            response = original(request, **kw)
            if "/voice/" in str(request.url) and "/status" not in str(request.url):
                out.append((response.headers.get("content-type", ""), response.text))
            return response

        r.phone.http.send = recording_send  # watch the wire, like a proxy would
        call = r.call(BILAL)
        for keys in ("1", "1", "1"):
            call.press(keys)
        call.silence()
        call.press("1")
        r.call(BILAL).press("0")
    return out


def test_every_reply_is_small_xml_twiml():
    replies = replies_of_a_whole_call()
    assert len(replies) >= 8
    for content_type, body in replies:
        assert content_type.startswith("text/xml")
        assert len(body.encode()) < 64 * 1024
        assert body.startswith("<?xml")
        assert ET.fromstring(body).tag == "Response"


def test_every_gather_and_dial_has_an_action_and_gathers_handle_silence():
    gathers = dials = 0
    for _, body in replies_of_a_whole_call():
        root = ET.fromstring(body)
        for gather in root.iter("Gather"):
            gathers += 1
            assert gather.get("action", "").startswith("/voice/step/")
            assert gather.get("actionOnEmptyResult") == "true"
            if "speech" in gather.get("input", ""):
                assert gather.get("hints") and gather.get("language") == "en-GB"
            children = list(root)
            after = children[children.index(gather) + 1:]
            assert after and after[0].tag == "Redirect"  # silence still reaches the step
        for dial in root.iter("Dial"):
            dials += 1
            assert dial.get("action")
    assert gathers >= 5 and dials == 1


def test_prompts_say_digits_as_press_n_in_the_clinic_voice():
    for _, body in replies_of_a_whole_call():
        for say in ET.fromstring(body).iter("Say"):
            assert say.get("voice") == "Polly.Amy" and say.get("language") == "en-GB"
            text = say.text or ""
            if "1" in text and "book" in text.lower() and "press" in text.lower():
                assert "press 1" in text.lower()


# --- ivr.twiml writes its XML itself: byte for byte what the twilio library writes -----------


def library_render(reply: Reply, url_for: twiml.UrlFor, voices: Mapping[str, twiml.Voice]) -> str:
    """The same document built with twilio's VoiceResponse (how ivr.twiml used to build it)."""
    response = VoiceResponse()
    default = voices.get(reply.language) or next(iter(voices.values()))

    def say(parent: VoiceResponse | Gather, line: Line) -> None:
        if line.text:
            voice = voices.get(line.language, default)
            parent.say(line.text, voice=voice.voice, language=voice.say_language)

    if reply.gather is not None:
        spec = reply.gather
        attrs: dict[str, object] = {
            "action": url_for("answer", spec.step), "method": "POST", "input": spec.input,
            "timeout": spec.timeout, "action_on_empty_result": True,
        }
        if "speech" in spec.input:
            attrs["barge_in"] = True
            attrs["speech_timeout"] = "auto"
            attrs["language"] = default.speech_language
            if spec.hints:
                attrs["hints"] = ", ".join(
                    h.replace(",", " ") for h in spec.hints[: twiml.MAX_HINTS])
        if spec.num_digits:
            attrs["num_digits"] = spec.num_digits
        attrs["finish_on_key"] = spec.finish_on_key or ""
        gather = Gather(**attrs)
        for line in reply.lines:
            say(gather, line)
        response.append(gather)
        response.redirect(url_for("answer", spec.step), method="POST")
    else:
        for line in reply.lines:
            say(response, line)
        if reply.redirect is not None:
            response.redirect(url_for("resume", reply.redirect), method="POST")
        elif reply.dial is not None:
            dial = response.dial(action=url_for("dial", reply.dial.step), method="POST",
                                 timeout=reply.dial.ring_seconds)
            dial.number(reply.dial.number)
        elif reply.hangup:
            response.hangup()
    return response.to_xml()


# Text with everything XML escapes (& < > " and the whitespace attributes encode), Urdu and
# the empty string (a <Say> that is left out).
_TEXT = st.text(alphabet=st.sampled_from(list("ab &<>\"'\r\n\t,#*0یہ")), max_size=12)
_VOICES = {
    "en-GB": twiml.Voice("en-GB", "Polly.Amy", "en-GB"),
    "ur-PK": twiml.Voice("ur-IN", "Google.ur-IN-Wavenet-A", "ur-PK"),
}
_LANG = st.sampled_from(["en-GB", "ur-PK", "fr-FR"])  # fr-FR: no voice, the default's
_GATHER = st.builds(
    GatherSpec, step=_TEXT, input=st.sampled_from(["dtmf", "speech", "dtmf speech"]),
    num_digits=st.none() | st.integers(0, 12), finish_on_key=st.none() | _TEXT,
    timeout=st.integers(0, 10), hints=st.lists(_TEXT, max_size=4).map(tuple),
)
_REPLY = st.builds(
    Reply,
    lines=st.lists(st.builds(Line, text=_TEXT, language=_LANG), max_size=3).map(tuple),
    gather=st.none() | _GATHER,
    redirect=st.none() | _TEXT,
    dial=st.none() | st.builds(DialSpec, number=_TEXT, step=_TEXT,
                               ring_seconds=st.integers(0, 60)),
    hangup=st.booleans(),
    language=_LANG,
)


def _url_for(kind: str, step: str) -> str:
    return f"https://ivr.example/voice/step/{step}?t=3&k={kind}"


@settings(max_examples=300, deadline=None)
@given(reply=_REPLY)
def test_render_writes_what_the_twilio_library_writes(reply: Reply) -> None:
    assert twiml.render(reply, _url_for, _VOICES) == library_render(reply, _url_for, _VOICES)


@settings(max_examples=100, deadline=None)
@given(text=_TEXT, number=_TEXT, hangup=st.booleans())
def test_fixed_documents_match_the_twilio_library(text: str, number: str, hangup: bool) -> None:
    voice = _VOICES["ur-PK"]
    expected = VoiceResponse()
    expected.say(text, voice=voice.voice, language=voice.say_language)
    if hangup:
        expected.hangup()
    assert twiml.say_only(text, voice, hangup=hangup) == expected.to_xml()

    expected = VoiceResponse()
    expected.say(text, voice=voice.voice, language=voice.say_language)
    expected.dial(action="/voice/fallback?after=dial&x=<1>", method="POST",
                  timeout=25).number(number)
    assert twiml.apology_with_transfer(
        text, voice, number, action="/voice/fallback?after=dial&x=<1>"
    ) == expected.to_xml()
    assert twiml.empty() == VoiceResponse().to_xml()
