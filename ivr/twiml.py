"""Turns the engine's `Reply` into TwiML. The only module that builds TwiML.

Rules kept here, once: every <Gather> has an explicit action, `actionOnEmptyResult` (silence
comes back to the same step handler, which counts it) and a <Redirect> after it as a belt
and braces; speech gathers carry hints and the caller's language; every <Dial> has an action;
voice and language of each <Say> come from the clinic's config.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from twilio.twiml.voice_response import Gather, VoiceResponse

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
    response = VoiceResponse()
    default = voices.get(reply.language) or next(iter(voices.values()))
    if reply.gather is not None:
        spec = reply.gather
        attrs: dict[str, object] = {
            "action": url_for("answer", spec.step),
            "method": "POST",
            "input": spec.input,
            "timeout": spec.timeout,
            "action_on_empty_result": True,
        }
        if "speech" in spec.input:
            attrs["speech_timeout"] = "auto"
            attrs["language"] = default.speech_language
            if spec.hints:
                attrs["hints"] = ", ".join(h.replace(",", " ") for h in spec.hints[:MAX_HINTS])
        if spec.num_digits:
            attrs["num_digits"] = spec.num_digits
        # finishOnKey "" means only a timeout or numDigits ends the keypad input.
        attrs["finish_on_key"] = spec.finish_on_key or ""
        gather = Gather(**attrs)
        for line in reply.lines:
            _say(gather, line, voices, default)
        response.append(gather)
        # Reached only if Twilio ignores actionOnEmptyResult: counts as silence at the step.
        response.redirect(url_for("answer", spec.step), method="POST")
    else:
        for line in reply.lines:
            _say(response, line, voices, default)
        if reply.redirect is not None:
            response.redirect(url_for("resume", reply.redirect), method="POST")
        elif reply.dial is not None:
            dial = response.dial(
                action=url_for("dial", reply.dial.step),
                method="POST",
                timeout=reply.dial.ring_seconds,
            )
            dial.number(reply.dial.number)
        elif reply.hangup:
            response.hangup()
    return response.to_xml()


def say_only(text: str, voice: Voice, *, hangup: bool = False) -> str:
    """A document that only speaks (fallback URL, refusals)."""
    response = VoiceResponse()
    response.say(text, voice=voice.voice, language=voice.say_language)
    if hangup:
        response.hangup()
    return response.to_xml()


def empty() -> str:
    """The empty <Response/> status callbacks answer with."""
    return VoiceResponse().to_xml()


def _say(parent: VoiceResponse | Gather, line: Line, voices: Mapping[str, Voice],
         default: Voice) -> None:
    if not line.text:
        return
    voice = voices.get(line.language, default)
    parent.say(line.text, voice=voice.voice, language=voice.say_language)


def apology_with_transfer(text: str, voice: Voice, number: str, *, action: str) -> str:
    """Apologise and ring a person; `action` hears how the dial went."""
    response = VoiceResponse()
    response.say(text, voice=voice.voice, language=voice.say_language)
    dial = response.dial(action=action, method="POST", timeout=25)
    dial.number(number)
    return response.to_xml()
