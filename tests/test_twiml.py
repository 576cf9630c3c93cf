"""The TwiML the app sends, checked by its structure: Twilio's rules kept on every reply."""

from __future__ import annotations

import xml.etree.ElementTree as ET

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
