"""How Twilio runs each TwiML verb: one function per verb, from the element to a :class:`Step`.

A verb writes what the caller hears (and any warning) to the transcript and returns a
:class:`Step`: the seconds it took and what the call does next (fetch a URL, wait in a
``<Gather>``, end). Verbs Twilio has but the simulator does not run are warned about and
skipped. ``heard`` holds ``<Say>`` text only (``<Play>`` is a :class:`Played` event) and a looped
``<Say>`` once.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final
from urllib.parse import urldefrag, urljoin

from ivr.simulator.document import (
    AUDIO_MARKER,
    DIAL_NOUNS,
    GATHER_CHILDREN,
    OTHER_VERBS,
    RUN_VERBS,
    SSML,
    check_attributes,
    int_or,
    method,
    no_children,
    positive_int,
    say_text,
)
from ivr.simulator.events import (
    Dialed,
    Event,
    Heard,
    HungUp,
    Paused,
    Played,
    Redirected,
    Warning,
)
from ivr.simulator.gather import check as check_gather
from ivr.simulator.wire import Fetch

DIAL_OUTCOMES: Final = frozenset({"completed", "busy", "no-answer", "failed", "canceled"})


@dataclass(frozen=True)
class Scene:
    """What a verb sees of the call it runs in."""

    transcript: list[Event]
    doc_url: str  # the document the verb came from (relative URLs resolve against it)
    answered: bool  # a verb other than <Reject> has run
    dial_duration: int  # seconds a completed <Dial> talks
    next_dial: Callable[[], str]  # the scripted outcome of this <Dial>
    new_sid: Callable[[], str]


@dataclass(frozen=True)
class Step:
    """What a verb did to the call besides its transcript events."""

    seconds: int = 0  # simulated time it took
    fetch: Fetch | None = None  # request this next (<Redirect>, <Dial action>)
    end: str | None = None  # the call ends with this CallStatus
    gather: bool = False  # a <Gather> now waits for the caller
    prompts_at: int = 0  # with gather: transcript index where its nested prompts start
    dialed: str | None = None  # what a <Dial> dialed


def runnable(verb: ET.Element, transcript: list[Event]) -> str | None:
    """The verb's tag if the simulator runs it (attributes checked); else warn and None."""
    tag = verb.tag
    if not isinstance(tag, str):  # comments / processing instructions
        return None
    if tag not in RUN_VERBS:
        if tag in OTHER_VERBS:
            transcript.append(Warning("unsupported", f"<{tag}> is not simulated; skipped"))
        else:
            transcript.append(Warning(12200, f"unknown verb <{tag}>; skipped"))
        return None
    check_attributes(verb, transcript)
    return tag


def say(el: ET.Element, scene: Scene) -> Step:
    """``<Say>``: the text heard (SSML stripped), about three words a second, times ``loop``."""
    for child in el.iter():
        if child is not el and child.tag not in SSML:
            scene.transcript.append(
                Warning(12200, f"<{child.tag}> is not allowed inside <Say>; ignored")
            )
    text = " ".join(say_text(el).split())
    loop = int_or(el.get("loop"), 1)
    scene.transcript.append(Heard(text, el.get("voice"), el.get("language"), loop))
    return Step(seconds=max(1, len(text.split()) // 3) * max(loop, 1))


def play(el: ET.Element, scene: Scene) -> Step:
    """``<Play>``: a sound (3 s) or DTMF digits; an audio answer then hangs up."""
    no_children(el, scene.transcript)
    url = (el.text or "").strip()
    digits = el.get("digits")
    if not url and not digits:
        scene.transcript.append(Warning(12200, "<Play> without a URL or digits"))
    if url:
        url = urljoin(scene.doc_url, url)
    scene.transcript.append(Played(url, digits, int_or(el.get("loop"), 1)))
    if el.get(AUDIO_MARKER):  # an audio response: played, then hang up
        scene.transcript.append(HungUp("end-of-twiml"))
        return Step(seconds=3, end="completed")
    return Step(seconds=3)


def pause(el: ET.Element, scene: Scene) -> Step:
    """``<Pause>``: ``length`` seconds (default 1)."""
    no_children(el, scene.transcript)
    length = el.get("length")
    seconds = positive_int(length) if length is not None else 1
    if seconds is None:
        scene.transcript.append(Warning(13910, f"invalid <Pause> length {length!r}"))
        seconds = 1
    scene.transcript.append(Paused(seconds))
    return Step(seconds=seconds)


_PROMPTS: dict[str, Callable[[ET.Element, Scene], Step]] = {
    "Say": say, "Play": play, "Pause": pause,
}


def gather(el: ET.Element, scene: Scene) -> Step:
    """``<Gather>``: its nested prompts play, then it waits for the caller."""
    check_gather(el, scene.transcript)
    prompts_at = len(scene.transcript)
    seconds = 0
    for child in el:
        if not isinstance(child.tag, str):
            continue
        if child.tag not in GATHER_CHILDREN:
            scene.transcript.append(
                Warning(12200, f"<{child.tag}> is not allowed inside <Gather>; ignored")
            )
            continue
        if child.tag == "Play" and child.get("digits"):
            scene.transcript.append(
                Warning(12200, "<Play digits> is not allowed inside <Gather>; ignored")
            )
            continue
        check_attributes(child, scene.transcript)
        seconds += _PROMPTS[child.tag](child, scene).seconds
    return Step(seconds=seconds, gather=True, prompts_at=prompts_at)


def redirect(el: ET.Element, scene: Scene) -> Step:
    """``<Redirect>``: fetch its URL next (verbs after it never run)."""
    no_children(el, scene.transcript)
    target = (el.text or "").strip()
    if not target:
        scene.transcript.append(Warning(12200, "<Redirect> without a URL; skipped"))
        return Step()
    url = urljoin(scene.doc_url, target)
    scene.transcript.append(Redirected(urldefrag(url)[0]))
    return Step(fetch=Fetch(url, method(el, scene.transcript)))


def hangup(el: ET.Element, scene: Scene) -> Step:
    """``<Hangup>``: the call ends, completed."""
    no_children(el, scene.transcript, frozenset({"Parameter"}))
    scene.transcript.append(HungUp("hangup"))
    return Step(end="completed")


def reject(el: ET.Element, scene: Scene) -> Step:
    """``<Reject>``: an unanswered call ends busy or no-answer (after an answer: completed)."""
    no_children(el, scene.transcript, frozenset({"Parameter"}))
    reason = el.get("reason", "rejected")
    if reason not in ("rejected", "busy"):
        scene.transcript.append(Warning(13810, f"invalid <Reject> reason {reason!r}"))
        reason = "rejected"
    scene.transcript.append(HungUp("reject"))
    if scene.answered:
        scene.transcript.append(
            Warning("reject-after-answer", "<Reject> after the call was answered")
        )
        return Step(end="completed")
    return Step(end="busy" if reason == "busy" else "no-answer")


def dial(el: ET.Element, scene: Scene) -> Step:
    """``<Dial>`` with the scripted outcome; its ``action`` gets ``DialCallStatus`` & co.

    Time: the talk (completed only) plus the ring, ``timeout`` (30 s) on no-answer, else 5 s.
    """
    numbers = []
    for child in el:
        if not isinstance(child.tag, str):
            continue
        if child.tag not in DIAL_NOUNS:
            scene.transcript.append(
                Warning(12200, f"<{child.tag}> is not allowed inside <Dial>; ignored")
            )
            continue
        numbers.append(f"{child.tag.lower()}:{(child.text or '').strip()}"
                       if child.tag != "Number" else (child.text or "").strip())
    text = (el.text or "").strip()
    if text:
        numbers.insert(0, text)
    number = ", ".join(numbers)
    if not number:
        scene.transcript.append(Warning(12200, "<Dial> with nothing to dial"))
    outcome = scene.next_dial()
    scene.transcript.append(Dialed(number, outcome))
    talk = scene.dial_duration if outcome == "completed" else 0
    ring = positive_int(el.get("timeout")) or 30
    seconds = talk + (ring if outcome == "no-answer" else 5)
    action = el.get("action")
    if not action:
        return Step(seconds=seconds, dialed=number)
    extra = {
        "DialCallStatus": outcome,
        "DialCallSid": scene.new_sid(),
        "DialCallDuration": str(talk),
        "DialBridged": "true" if outcome == "completed" else "false",
    }
    fetch = Fetch(urljoin(scene.doc_url, action), method(el, scene.transcript), extra)
    return Step(seconds=seconds, fetch=fetch, dialed=number)


RULES: Final[dict[str, Callable[[ET.Element, Scene], Step]]] = {
    **_PROMPTS,
    "Gather": gather,
    "Redirect": redirect,
    "Hangup": hangup,
    "Reject": reject,
    "Dial": dial,
}
