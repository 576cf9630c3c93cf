"""The TwiML document as Twilio reads it: the answer validated, the XML parsed, attributes read.

An answer is checked like Twilio checks it (status, Content-Type, size, leading bytes, root
element, well-formed XML); any leading byte before ``<`` (whitespace, BOM) is error 12100. An
audio answer is played, then the call hangs up; a ``text/plain`` answer that is not TwiML is
read out. Unknown attributes and misplaced elements are warnings (12200), not errors.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Final

import httpx

from ivr.simulator.events import Event, Warning
from ivr.simulator.wire import FetchError

MAX_TWIML_BYTES: Final = 64 * 1024

# Verbs Twilio knows (twiml.md); the simulator runs some and warns about (and skips) the rest.
RUN_VERBS: Final = frozenset(
    {"Say", "Play", "Pause", "Gather", "Redirect", "Dial", "Hangup", "Reject"}
)
OTHER_VERBS: Final = frozenset(
    {"Record", "Enqueue", "Leave", "Sms", "Connect", "Start", "Stop", "Pay", "Prompt", "Echo",
     "Refer"}
)
GATHER_CHILDREN: Final = frozenset({"Say", "Play", "Pause"})
DIAL_NOUNS: Final = frozenset(
    {"Number", "Client", "Sip", "Conference", "Queue", "Sim", "Application", "WhatsApp"}
)
SSML: Final = frozenset(
    {"break", "emphasis", "lang", "p", "phoneme", "prosody", "s", "say-as", "sub", "w"}
)
_ATTRIBUTES: dict[str, frozenset[str]] = {
    "Response": frozenset({"version"}),
    "Say": frozenset({"voice", "language", "loop"}),
    "Play": frozenset({"loop", "digits"}),
    "Pause": frozenset({"length"}),
    "Redirect": frozenset({"method"}),
    "Hangup": frozenset(),
    "Reject": frozenset({"reason"}),
    "Gather": frozenset(
        {"action", "actionOnEmptyResult", "enhanced", "finishOnKey", "hints", "input",
         "language", "method", "numDigits", "partialResultCallback",
         "partialResultCallbackMethod", "profanityFilter", "speechModel", "speechTimeout",
         "timeout", "bargeIn", "maxSpeechTime", "debug"}
    ),
    "Dial": frozenset(
        {"action", "method", "timeout", "timeLimit", "callerId", "record", "hangupOnStar",
         "answerOnBridge", "ringTone", "trim", "sequential", "recordingStatusCallback",
         "recordingStatusCallbackMethod", "recordingStatusCallbackEvent", "recordingTrack",
         "referUrl", "referMethod", "events"}
    ),
}
_TWIML_TYPES = frozenset({"text/xml", "application/xml", "text/html"})
# The <Play> an audio answer becomes; the marker makes the call hang up after it.
AUDIO_MARKER: Final = "_simulated"


def parse(response: httpx.Response, url: str, transcript: list[Event]) -> list[ET.Element]:
    """The verbs of the answer to a TwiML fetch; raises :class:`FetchError` where Twilio fails."""
    body = response.content
    if not response.is_success:
        raise FetchError(11217, f"HTTP {response.status_code} response: {excerpt(body)}", url)
    ctype = response.headers.get("content-type")
    if not ctype:
        raise FetchError(12300, "missing Content-Type", url)
    mime = ctype.split(";")[0].strip().lower()
    if len(body) > MAX_TWIML_BYTES:
        raise FetchError(11750, f"response body is {len(body)} bytes (> 64 kB)", url)
    if mime.startswith("audio/"):  # played, then hang up
        play = ET.Element("Play", {AUDIO_MARKER: "1"})
        play.text = url
        return [play]
    if mime == "text/plain":
        try:
            return _parse_xml(body, url, transcript)
        except FetchError:
            say = ET.Element("Say")
            say.text = body.decode("utf-8", "replace")
            return [say]
    if mime not in _TWIML_TYPES:
        raise FetchError(12300, f"invalid Content-Type {ctype!r}", url)
    return _parse_xml(body, url, transcript)


def _parse_xml(body: bytes, url: str, transcript: list[Event]) -> list[ET.Element]:
    if not body.startswith(b"<"):
        raise FetchError(
            12100, f"document parse failure: content before the XML: {excerpt(body)}", url
        )
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise FetchError(12100, f"document parse failure: {exc}", url) from exc
    if root.tag != "Response":
        raise FetchError(12102, f"root element is <{root.tag}>, not <Response>", url)
    version = root.get("version")
    if version is not None and version not in ("2008-08-01", "2010-04-01"):
        raise FetchError(12101, f"invalid Response version {version!r}", url)
    check_attributes(root, transcript)
    if (root.text or "").strip():
        transcript.append(Warning(12200, "text directly inside <Response> ignored"))
    return list(root)


def check_attributes(el: ET.Element, transcript: list[Event]) -> None:
    """Warn (12200) about each attribute Twilio does not know on ``el``."""
    known = _ATTRIBUTES.get(str(el.tag))
    if known is None:
        return
    for name in el.attrib:
        if name not in known and name != AUDIO_MARKER:
            transcript.append(Warning(12200, f"unknown attribute {name!r} on <{el.tag}>"))


def no_children(
    el: ET.Element, transcript: list[Event], allowed: frozenset[str] = frozenset()
) -> None:
    """Warn (12200) about each child of ``el`` not in ``allowed`` (Twilio ignores them)."""
    for child in el:
        if child.tag not in allowed:
            transcript.append(
                Warning(12200, f"<{child.tag}> is not allowed inside <{el.tag}>; ignored")
            )


def method(el: ET.Element, transcript: list[Event]) -> str:
    """The verb's ``method`` (GET or POST; anything else warns and is POST)."""
    value = el.get("method", "POST").upper()
    if value not in ("GET", "POST"):
        transcript.append(Warning(12200, f"invalid method {value!r} on <{el.tag}>; using POST"))
        return "POST"
    return value


def say_text(el: ET.Element) -> str:
    """Spoken text of a ``<Say>``: text content with SSML tags stripped (``<sub>`` -> alias)."""
    parts = [el.text or ""]
    for child in el:  # element boundaries are word boundaries (builders add no spaces)
        if child.tag == "sub" and child.get("alias") is not None:
            parts.append(f" {child.get('alias')} ")
        elif child.tag == "break":
            parts.append(" ")
        else:
            parts.append(f" {say_text(child)} ")
        parts.append(child.tail or "")
    return "".join(parts)


def positive_int(value: str | None) -> int | None:
    """``value`` as a whole number above 0, else None."""
    try:
        n = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return n if n > 0 else None


def int_or(value: str | None, default: int) -> int:
    """``value`` as a whole number, ``default`` when absent or not a number."""
    try:
        return int(str(value).strip()) if value is not None else default
    except ValueError:
        return default


def truthy(value: str | None) -> bool:
    """A TwiML boolean attribute: only ``true`` (any case, spaces ignored) is true."""
    return (value or "").strip().lower() == "true"


def excerpt(body: bytes, n: int = 300) -> str:
    """The start of a body for an error message."""
    text = body[:n].decode("utf-8", "replace")
    return repr(text) + ("..." if len(body) > n else "")
