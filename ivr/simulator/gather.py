"""How an open ``<Gather>`` takes the caller's input: keys, speech, silence and barge-in.

Choices where Twilio's behaviour is undocumented ([I] in the spec): ``actionOnEmptyResult`` with
no input posts ``msg=Gather End`` and no ``Digits`` or ``SpeechResult``; a speech result carries
no ``FinishedOnKey``; keys after ``numDigits``/``finishOnKey`` are lost.

Barge-in: a caller who speaks (or presses) after hearing the first N words of the gather's
nested prompts. Twilio stops nested ``<Say>``/``<Play>`` on input (``bargeIn`` defaults to
true): the transcript keeps the words heard (the cut prompt as a :class:`Heard` with
``cut=True``), the rest is dropped, and only what was heard counts towards the call's duration.
With ``bargeIn="false"`` the caller hears it all.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from urllib.parse import urljoin

from ivr.simulator.document import positive_int
from ivr.simulator.events import Event, Heard, Played, Warning

DEFAULT_TIMEOUT = 5  # seconds Twilio waits for input when the gather names no timeout


def check(el: ET.Element, transcript: list[Event]) -> None:
    """Warn about ``<Gather>`` attribute values Twilio rejects (input, timeouts, keys)."""
    listens = inputs(el)
    if not listens or not listens <= {"dtmf", "speech"}:
        transcript.append(Warning(12200, f"invalid <Gather> input {el.get('input')!r}"))
    if el.get("numDigits") is not None and positive_int(el.get("numDigits")) is None:
        transcript.append(Warning(12200, f"invalid <Gather> numDigits {el.get('numDigits')!r}"))
    timeout = el.get("timeout")
    if timeout is not None and timeout != "auto" and positive_int(timeout) is None:
        transcript.append(Warning(12200, f"invalid <Gather> timeout {timeout!r}"))
    aoer = el.get("actionOnEmptyResult")
    if aoer is not None and aoer not in ("true", "false"):
        transcript.append(Warning(13338, f"invalid actionOnEmptyResult value {aoer!r}"))
    fok = el.get("finishOnKey")
    if fok is not None and fok not in ("", *"0123456789#*"):
        transcript.append(Warning(12200, f"invalid <Gather> finishOnKey {fok!r}"))
    st = el.get("speechTimeout")
    if st is not None and st != "auto" and positive_int(st) is None:
        transcript.append(Warning(13327, f"Gather: invalid speechTimeout value {st!r}"))


def inputs(el: ET.Element) -> set[str]:
    """What the gather listens for: ``dtmf``, ``speech`` or both (default ``dtmf``)."""
    return set((el.get("input") or "dtmf").split())


def action_url(gather: ET.Element, doc_url: str) -> str:
    """Absolute URL the gather requests: its ``action``, else the document it came from."""
    return urljoin(doc_url, gather.get("action") or doc_url)


def keys_taken(gather: ET.Element, keys: str) -> tuple[str, str]:
    """``(Digits, FinishedOnKey)`` for ``keys`` pressed: the gather stops at ``finishOnKey``
    (default ``#``) or after ``numDigits``; later keys are lost."""
    finish = gather.get("finishOnKey", "#")
    num = positive_int(gather.get("numDigits"))
    digits, finished_on = "", ""
    for ch in keys:
        if finish and ch == finish:
            finished_on = ch
            break
        digits += ch
        if num and len(digits) >= num:
            break
    return digits, finished_on


def silence_seconds(gather: ET.Element) -> int:
    """How long the gather waits for input before it gives up (its ``timeout``)."""
    return positive_int(gather.get("timeout")) or DEFAULT_TIMEOUT


def barges_in(gather: ET.Element) -> bool:
    """True when the caller's input stops the gather's prompts (``bargeIn``, default true)."""
    return gather.get("bargeIn", "true") != "false"


def cut_prompts(prompts: list[Event], words: int) -> tuple[list[Event], int]:
    """The prompt events a caller heard before input after ``words`` words, and their seconds.

    A sound counts as a word heard; warnings about the prompts stay.
    """
    left = words
    kept: list[Event] = []
    seconds = 0
    for event in prompts:
        if not isinstance(event, (Heard, Played)):
            kept.append(event)  # warnings about the prompts stay
            continue
        if left <= 0:
            continue  # never played: the caller was already talking
        if isinstance(event, Played):
            kept.append(event)
            seconds += 3
            left -= 1  # a sound counts as a word heard
            continue
        spoken = event.text.split()
        once = len(spoken)
        total = once * max(event.loop, 1)
        if total <= left:
            kept.append(event)
            seconds += max(1, once // 3) * max(event.loop, 1)
            left -= total
            continue
        heard = (spoken * max(event.loop, 1))[:left]
        kept.append(Heard(" ".join(heard), event.voice, event.language, 1, cut=True))
        seconds += max(1, left // 3)
        left = 0
    return kept, seconds
