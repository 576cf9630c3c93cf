"""Turns the engine's `Reply` into TwiML. The only module that builds TwiML.

Rules kept here, once: every <Gather> has an explicit action, `actionOnEmptyResult` (silence
comes back to the same step handler, which counts it) and a <Redirect> after it as a belt
and braces; speech gathers carry hints and the caller's language; every <Dial> has an action;
voice and language of each <Say> come from the clinic's config.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from flows.engine import Line, Reply

MAX_HINTS = 100  # Twilio allows 500; long hint lists slow recognition for no gain
MAX_TWIML_BYTES = 64 * 1024


@dataclass(frozen=True)
class Voice:
    """How one language is spoken and heard on Twilio."""

    say_language: str  # <Say language>, e.g. "en-GB"
    voice: str  # <Say voice>, e.g. "Polly.Amy"
    speech_language: str  # <Gather language>, e.g. "en-GB"


# (kind, step) -> URL; kind is "answer", "resume" or "dial". voice.py supplies it.
UrlFor = Callable[[str, str], str]


def render(reply: Reply, url_for: UrlFor, voices: Mapping[str, Voice]) -> str:
    """The TwiML document for `reply`."""
    default = voices.get(reply.language) or next(iter(voices.values()))
    if reply.gather is not None:
        spec = reply.gather
        attrs: dict[str, object] = {
            "action": url_for("answer", spec.step),
            "method": "POST",
            "input": spec.input,
            "timeout": spec.timeout,
            "actionOnEmptyResult": True,
        }
        if "speech" in spec.input:
            # The caller may talk over the prompts (product.md: barge-in is on); said, not left
            # to Twilio's default.
            attrs["bargeIn"] = True
            attrs["speechTimeout"] = "auto"
            attrs["language"] = default.speech_language
            if spec.hints:
                attrs["hints"] = ", ".join(h.replace(",", " ") for h in spec.hints[:MAX_HINTS])
        if spec.num_digits:
            attrs["numDigits"] = spec.num_digits
        # finishOnKey "" means only a timeout or numDigits ends the keypad input.
        attrs["finishOnKey"] = spec.finish_on_key or ""
        says = "".join(_say(line, voices, default) for line in reply.lines)
        # The <Redirect> is reached only if Twilio ignores actionOnEmptyResult: it counts as
        # silence at the step.
        body = _element("Gather", attrs, says) + _element(
            "Redirect", {"method": "POST"}, _text(url_for("answer", spec.step))
        )
    else:
        body = "".join(_say(line, voices, default) for line in reply.lines)
        if reply.redirect is not None:
            body += _element("Redirect", {"method": "POST"},
                             _text(url_for("resume", reply.redirect)))
        elif reply.dial is not None:
            body += _dial(url_for("dial", reply.dial.step), reply.dial.ring_seconds,
                          reply.dial.number)
        elif reply.hangup:
            body += _element("Hangup", {}, "")
    return _document(body)


def say_only(text: str, voice: Voice, *, hangup: bool = False) -> str:
    """A document that only speaks (fallback URL, refusals)."""
    body = _say_element(text, voice)
    if hangup:
        body += _element("Hangup", {}, "")
    return _document(body)


def empty() -> str:
    """The empty <Response/> status callbacks answer with."""
    return _document("")


def apology_with_transfer(text: str, voice: Voice, number: str, *, action: str) -> str:
    """Apologise and ring a person; `action` hears how the dial went."""
    return _document(_say_element(text, voice) + _dial(action, 25, number))


# The serialisation below writes, byte for byte, what the twilio library's VoiceResponse
# writes through ElementTree (attributes sorted by name, booleans as "true"/"false", the same
# escaping, `<X />` for an empty element): tests/test_twiml.py compares the two. Building the
# library's element objects and an ElementTree for every webhook cost about ten times more.

_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>'


def _document(body: str) -> str:
    return f"{_DECLARATION}{_element('Response', {}, body)}"


def _say(line: Line, voices: Mapping[str, Voice], default: Voice) -> str:
    if not line.text:
        return ""
    return _say_element(line.text, voices.get(line.language, default))


def _say_element(text: str, voice: Voice) -> str:
    return _element("Say", {"voice": voice.voice, "language": voice.say_language}, _text(text))


def _dial(action: str, timeout: int, number: str) -> str:
    return _element(
        "Dial",
        {"action": action, "method": "POST", "timeout": timeout},
        _element("Number", {}, _text(number)),
    )


def _element(name: str, attrs: Mapping[str, object], content: str) -> str:
    """`content` is already escaped XML (text and child elements)."""
    rendered = "".join(
        f' {key}="{_attr(value)}"' for key, value in sorted(attrs.items()) if value is not None
    )
    if not content:
        return f"<{name}{rendered} />"
    return f"<{name}{rendered}>{content}</{name}>"


def _attr(value: object) -> str:
    text = str(value).lower() if isinstance(value, bool) else str(value)
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        .replace('"', "&quot;").replace("\r", "&#13;").replace("\n", "&#10;")
        .replace("\t", "&#09;")
    )


def _text(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
