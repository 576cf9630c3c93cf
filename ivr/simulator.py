"""Twilio call simulator: plays Twilio's side of an inbound voice call against a TwiML webhook app.

Used by the tests, by the terminal softphone and by the benchmark. Behaviour follows
``shared/docs/twilio-voice.md`` (sections 1, 2, 4, 5, 6, 7, 9 and 12):

* every request is signed (``X-Twilio-Signature``) over the exact URL put on the wire (absolute,
  fragment stripped) plus the form parameters; ``signing_base_url`` signs for a public URL while
  sending to ``base_url`` (a TLS-terminating proxy);
* the standard parameters (``CallSid``, ``AccountSid``, ``From``, ``To``, ``Caller``, ``Called``,
  ``CallStatus`` ``ringing`` then ``in-progress``, ``Direction``, ``ApiVersion``, geo fields) go on
  every TwiML fetch, plus the per-verb parameters (``Digits``, ``SpeechResult``, ``Dial*``...);
* responses are validated like Twilio (status, Content-Type, size, leading bytes, root element,
  well-formed XML, known verbs, nesting); a fatal error goes to the fallback URL with
  ``ErrorCode``/``ErrorUrl``, or the caller hears :data:`APP_ERROR_MESSAGE` and the call ends;
* the status callback fires once when the call ends.

Choices where Twilio's behaviour is undocumented ([I] in the spec):

* ``actionOnEmptyResult`` with no input posts ``msg=Gather End`` and no ``Digits`` or
  ``SpeechResult``; a speech result carries no ``FinishedOnKey``; keys after
  ``numDigits``/``finishOnKey`` are lost;
* the fallback URL covers every TwiML fetch (first webhook, actions, ``<Redirect>``), not only the
  first; a failing fallback ends the call with the app-error message;
* a 3xx is followed with GET and no parameters (307/308: same method, standard parameters only);
  either way the verb's parameters (``Digits``...) are dropped and a ``http-redirect`` warning is
  recorded; any leading byte before ``<`` (whitespace, BOM) is error 12100;
* ``heard`` holds ``<Say>`` text only (``<Play>`` is a :class:`Played` event) and a looped ``<Say>``
  once; an exception raised by a Flask app with ``testing=True`` propagates (it is not a 500);
* barge-in: ``say(..., barge_in=N)`` / ``press(..., barge_in=N)`` is a caller who speaks (or
  presses) after hearing the first N words of the open ``<Gather>``'s nested prompts. Twilio stops
  nested ``<Say>``/``<Play>`` on input (``bargeIn`` defaults to true): the transcript keeps the
  words heard (the cut prompt as a :class:`Heard` with ``cut=True``), the rest is dropped, and
  ``duration`` counts only what was heard. With ``bargeIn="false"`` the caller hears it all.

A :class:`Call` is driven by one thread; several calls of one :class:`TwilioSimulator` may run
concurrently (they share only the ``httpx.Client``). Each call keeps its own cookie jar.

Example::

    sim = TwilioSimulator(base_url="http://testserver", auth_token="secret", http=client)
    call = sim.call(from_="+923216315551")
    call.press("1")
    assert "Dr. Ayesha Khan" in call.heard
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import random
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any, Final
from urllib.parse import parse_qsl, urldefrag, urlencode, urljoin, urlsplit

import httpx
from twilio.request_validator import RequestValidator

__all__ = [
    "APP_ERROR_MESSAGE",
    "AppError",
    "Call",
    "Dialed",
    "Event",
    "Heard",
    "HungUp",
    "Paused",
    "Played",
    "Pressed",
    "Redirected",
    "Said",
    "Silence",
    "SimulatorError",
    "TwilioSimulator",
    "TwimlWarning",
    "Warning",
    "format_transcript",
    "sign",
]

APP_ERROR_MESSAGE: Final = "We are sorry, an application error has occurred. Goodbye."
MAX_TWIML_BYTES: Final = 64 * 1024
MAX_HTTP_REDIRECTS: Final = 10
API_VERSION: Final = "2010-04-01"
DEFAULT_ACCOUNT_SID: Final = "AC" + "c11c1c0de5a11ab1e5eed5c0ffee0001"
DIAL_OUTCOMES: Final = frozenset({"completed", "busy", "no-answer", "failed", "canceled"})

# Verbs Twilio knows (twiml.md); the simulator runs some and warns about (and skips) the rest.
_RUN_VERBS = frozenset({"Say", "Play", "Pause", "Gather", "Redirect", "Dial", "Hangup", "Reject"})
_OTHER_VERBS = frozenset(
    {"Record", "Enqueue", "Leave", "Sms", "Connect", "Start", "Stop", "Pay", "Prompt", "Echo",
     "Refer"}
)
_GATHER_CHILDREN = frozenset({"Say", "Play", "Pause"})
_DIAL_NOUNS = frozenset(
    {"Number", "Client", "Sip", "Conference", "Queue", "Sim", "Application", "WhatsApp"}
)
_SSML = frozenset(
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
_COUNTRY_PREFIXES = (("+92", "PK"), ("+44", "GB"), ("+1", "US"), ("+971", "AE"), ("+91", "IN"))


class SimulatorError(Exception):
    """The simulator was misused (e.g. a key press while nothing listens) or the app looped.

    The message always ends with the whole transcript of the call so far.
    """

    def __init__(self, message: str, call: Call | None = None) -> None:
        self.call = call
        if call is not None:
            message = f"{message}\n--- transcript of {call.sid} ---\n{call.transcript_text()}"
        super().__init__(message)


# --------------------------------------------------------------------------- transcript events


@dataclass(frozen=True)
class Heard:
    """The caller heard ``<Say>`` text (SSML stripped)."""

    text: str
    voice: str | None = None
    language: str | None = None
    loop: int = 1
    cut: bool = False  # the caller barged in: `text` is the part heard

    def __str__(self) -> str:
        extra = ", ".join(
            f"{k}={v}" for k, v in (("voice", self.voice), ("language", self.language)) if v
        )
        return (f'IVR says: "{self.text}"' + (" (cut off)" if self.cut else "")
                + (f" [{extra}]" if extra else ""))


@dataclass(frozen=True)
class Played:
    """The caller heard a ``<Play>`` (an audio URL, or DTMF ``digits``)."""

    url: str
    digits: str | None = None
    loop: int = 1

    def __str__(self) -> str:
        return f"IVR plays digits {self.digits}" if self.digits else f"IVR plays {self.url}"


@dataclass(frozen=True)
class Paused:
    """A ``<Pause>`` (seconds)."""

    seconds: int

    def __str__(self) -> str:
        return f"(pause {self.seconds}s)"


@dataclass(frozen=True)
class Pressed:
    """The caller pressed keys; ``digits`` is what Twilio sent as ``Digits``."""

    keys: str
    digits: str = ""

    def __str__(self) -> str:
        return f"caller presses {self.keys}"


@dataclass(frozen=True)
class Said:
    """The caller spoke (``SpeechResult``/``Confidence``)."""

    text: str
    confidence: float | None = None

    def __str__(self) -> str:
        conf = "" if self.confidence is None else f" (confidence {self.confidence})"
        return f'caller says: "{self.text}"{conf}'


@dataclass(frozen=True)
class Silence:
    """The caller gave no input to a ``<Gather>``; it waited ``seconds`` (its timeout)."""

    seconds: int = 5

    def __str__(self) -> str:
        return "caller is silent"


@dataclass(frozen=True)
class Dialed:
    """A ``<Dial>`` ran with the scripted outcome."""

    number: str
    outcome: str

    def __str__(self) -> str:
        return f"IVR dials {self.number} -> {self.outcome}"


@dataclass(frozen=True)
class Redirected:
    """A ``<Redirect>`` to ``url`` (absolute)."""

    url: str

    def __str__(self) -> str:
        return f"redirect -> {self.url}"


@dataclass(frozen=True)
class HungUp:
    """The call ended: ``by`` is ``caller``, ``hangup`` (``<Hangup>``), ``reject``,
    ``end-of-twiml`` or ``app-error``."""

    by: str

    def __str__(self) -> str:
        return f"call ends ({self.by})"


@dataclass(frozen=True)
class Warning:  # the name tests use; shadows the builtin, so TwimlWarning is an alias
    """A non-fatal problem: a Twilio code (e.g. 12200) or a simulator flag (``http-redirect``)."""

    code: int | str
    text: str

    def __str__(self) -> str:
        return f"warning {self.code}: {self.text}"


TwimlWarning = Warning


@dataclass(frozen=True)
class AppError:
    """A fatal fetch/parse error (Twilio code, e.g. 11200, 11217, 12100) for ``url``."""

    code: int
    text: str
    url: str

    def __str__(self) -> str:
        return f"ERROR {self.code} at {self.url}: {self.text}"


Event = (
    Heard | Played | Paused | Pressed | Said | Silence | Dialed | Redirected | HungUp | Warning
    | AppError
)
_CALLER_ACTIONS = (Pressed, Said, Silence)


def format_transcript(events: Iterable[object]) -> str:
    """Render transcript events one per line (used in :class:`SimulatorError` messages)."""
    lines = [f"  {i:3d}. {ev}" for i, ev in enumerate(events, 1)]
    return "\n".join(lines) if lines else "  (nothing yet)"


# --------------------------------------------------------------------------- signing


def sign(url: str, params: Mapping[str, str], auth_token: str) -> str:
    """Return the ``X-Twilio-Signature`` Twilio would send for ``url`` + form ``params``."""
    return RequestValidator(auth_token).compute_signature(url, dict(params))


def _hex32(rng: random.Random | None, lock: threading.Lock) -> str:
    if rng is None:
        import secrets

        return secrets.token_hex(16)
    with lock:
        return f"{rng.getrandbits(128):032x}"


def _country(number: str) -> str:
    for prefix, code in _COUNTRY_PREFIXES:
        if number.startswith(prefix):
            return code
    return ""


@dataclass(frozen=True)
class _Fetch:
    url: str  # absolute, fragment kept (stripped when sent)
    method: str = "POST"
    extra: Mapping[str, str] = field(default_factory=dict)
    fallback: bool = False


class _FetchError(Exception):
    def __init__(self, code: int, text: str, url: str) -> None:
        super().__init__(f"{code} {text}")
        self.code = code
        self.text = text
        self.url = url


_AUTO: Any = object()


# --------------------------------------------------------------------------- simulator


class TwilioSimulator:
    """Twilio's side of inbound calls to one phone number configured with these URLs.

    ``http``: the client to send with (tests: ``httpx.Client(transport=httpx.WSGITransport(app))``);
    None builds one with Twilio's 15 s timeout. URLs may be relative to ``base_url``.
    ``seed``/``rng`` make CallSids deterministic. ``now`` gives the call's start time (UTC).
    """

    def __init__(
        self,
        base_url: str,
        auth_token: str,
        http: httpx.Client | None = None,
        *,
        to: str = "+922135550199",
        voice_url: str = "/voice/incoming",
        voice_method: str = "POST",
        status_callback: str | None = "/voice/status",
        status_callback_method: str = "POST",
        fallback_url: str | None = "/voice/fallback",
        fallback_method: str = "POST",
        signing_base_url: str | None = None,
        account_sid: str = DEFAULT_ACCOUNT_SID,
        seed: int | None = None,
        rng: random.Random | None = None,
        now: Callable[[], datetime] | None = None,
        geo: bool = True,
        max_fetches_per_turn: int = 50,
    ) -> None:
        self.base_url = base_url.rstrip("/") + "/"
        self.auth_token = auth_token
        self._own_http = http is None
        self.http = http if http is not None else httpx.Client(timeout=15.0)
        self.to = to
        self.voice_url = voice_url
        self.voice_method = voice_method.upper()
        self.status_callback = status_callback
        self.status_callback_method = status_callback_method.upper()
        self.fallback_url = fallback_url
        self.fallback_method = fallback_method.upper()
        self.signing_base_url = signing_base_url.rstrip("/") + "/" if signing_base_url else None
        self.account_sid = account_sid
        self._rng = rng if rng is not None else (random.Random(seed) if seed is not None else None)
        self._rng_lock = threading.Lock()
        self._now = now or (lambda: datetime.now(UTC))  # aware UTC; naive is taken as UTC
        self.geo = geo
        self.max_fetches_per_turn = max_fetches_per_turn
        self._validator = RequestValidator(auth_token)

    # -- lifecycle

    def close(self) -> None:
        """Close the HTTP client if the simulator created it."""
        if self._own_http:
            self.http.close()

    def __enter__(self) -> TwilioSimulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- helpers

    def new_sid(self, prefix: str = "CA") -> str:
        """A fresh SID (``prefix`` + 32 hex); deterministic with ``seed``/``rng``."""
        return prefix + _hex32(self._rng, self._rng_lock)

    def absolute(self, url: str) -> str:
        """``url`` made absolute against ``base_url`` (keeps a base path prefix, like httpx)."""
        if urlsplit(url).scheme:
            return url
        return urljoin(self.base_url, url.lstrip("/"))

    def signing_url(self, wire_url: str) -> str:
        """The URL Twilio signs for ``wire_url`` (rewritten to ``signing_base_url`` if set)."""
        wire_url = urldefrag(wire_url)[0]
        if self.signing_base_url and wire_url.startswith(self.base_url):
            return self.signing_base_url + wire_url[len(self.base_url):]
        if self.signing_base_url and wire_url + "/" == self.base_url:
            return self.signing_base_url.rstrip("/")
        return wire_url

    def sign(self, url: str, params: Mapping[str, str]) -> str:
        """Signature for ``url`` (as it appears to Twilio) and form ``params``."""
        return self._validator.compute_signature(url, dict(params))

    def webhook_params(
        self, from_: str = "+923216315551", *, to: str | None = None,
        call_sid: str | None = None, call_status: str = "ringing", **extra: str,
    ) -> dict[str, str]:
        """The standard parameters of a webhook (for hand-made requests with :meth:`post_raw`)."""
        to = to or self.to
        params = {
            "AccountSid": self.account_sid,
            "ApiVersion": API_VERSION,
            "CallSid": call_sid or self.new_sid(),
            "CallStatus": call_status,
            "Called": to,
            "Caller": from_,
            "Direction": "inbound",
            "From": from_,
            "To": to,
        }
        if self.geo:
            fc, tc = _country(from_), _country(to)
            for side, country in (("From", fc), ("Caller", fc), ("To", tc), ("Called", tc)):
                params[f"{side}Country"] = country
                for geo in ("City", "State", "Zip"):
                    params[f"{side}{geo}"] = ""
        params.update(extra)
        return params

    def post_raw(
        self,
        path: str,
        params: Mapping[str, str],
        *,
        signature: str | None = _AUTO,
        headers: Mapping[str, str] | None = None,
        method: str = "POST",
    ) -> httpx.Response:
        """Send one raw webhook and return the response (security tests).

        ``signature`` default: a valid one; ``None``: no header; a string: sent as is.
        For GET the params go in the query string and the URL alone is signed.
        """
        url = urldefrag(self.absolute(path))[0]
        method = method.upper()
        if method == "GET":
            url = _append_query(url, params)
            request = self.http.build_request("GET", url)
            signed_params: Mapping[str, str] = {}
        else:
            request = self.http.build_request(method, url, data=dict(params))
            signed_params = params
        if signature is _AUTO:
            signature = self.sign(self.signing_url(str(request.url)), signed_params)
        if signature is not None:
            request.headers["X-Twilio-Signature"] = signature
        for k, v in (headers or {}).items():
            request.headers[k] = v
        return self.http.send(request)

    # -- calls

    def call(
        self,
        from_: str = "+923216315551",
        *,
        to: str | None = None,
        call_sid: str | None = None,
        dial_outcome: str = "completed",
        dial_outcomes: Iterable[str] = (),
        dial_duration: int = 42,
        extra_params: Mapping[str, str] | None = None,
    ) -> Call:
        """Place an inbound call: post the first webhook and run TwiML until input or the end."""
        call = Call(
            self,
            from_=from_,
            to=to or self.to,
            call_sid=call_sid or self.new_sid(),
            dial_outcome=dial_outcome,
            dial_outcomes=dial_outcomes,
            dial_duration=dial_duration,
            extra_params=extra_params or {},
        )
        call._start()
        return call


def _append_query(url: str, params: Mapping[str, str]) -> str:
    if not params:
        return url
    return url + ("&" if "?" in url else "?") + urlencode(list(params.items()))


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() == "true"


# --------------------------------------------------------------------------- one call


class Call:
    """One simulated inbound call. Drive it with :meth:`press`, :meth:`say`, :meth:`silence`,
    :meth:`hang_up`; read :attr:`heard`, :attr:`last_heard`, :attr:`transcript`."""

    def __init__(
        self,
        sim: TwilioSimulator,
        *,
        from_: str,
        to: str,
        call_sid: str,
        dial_outcome: str = "completed",
        dial_outcomes: Iterable[str] = (),
        dial_duration: int = 42,
        extra_params: Mapping[str, str] | None = None,
    ) -> None:
        self.sim = sim
        self.sid = call_sid
        self.from_ = from_
        self.to = to
        self.dial_outcome = dial_outcome
        self.dial_duration = dial_duration
        self._dial_queue: list[str] = []
        for outcome in dial_outcomes:
            self.next_dial(outcome)
        self._base = sim.webhook_params(
            from_, to=to, call_sid=call_sid, **dict(extra_params or {})
        )
        self.transcript: list[Event] = []
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.latencies: list[float] = []
        self.dialed: list[str] = []
        self.ended = False
        self.status = "ringing"
        self.duration = 0  # simulated seconds
        started = sim._now()
        self.started_at = started if started.tzinfo else started.replace(tzinfo=UTC)
        self.cookies = httpx.Cookies()
        self._answered = False
        self._fetched_once = False
        self._verbs: list[ET.Element] = []
        self._pos = 0
        self._doc_url = ""
        self._gather: ET.Element | None = None
        self._gather_doc_url = ""
        self._last_action = 0  # index in transcript after the caller's last action
        # Where the open gather's nested prompts start (transcript index, duration before them).
        self._prompts_at = 0
        self._duration_before_prompts = 0

    def __repr__(self) -> str:
        state = "ended" if self.ended else ("gathering" if self._gather is not None else "idle")
        return f"<Call {self.sid} {self.from_} {state} status={self.status}>"

    # -- reading

    @property
    def heard(self) -> str:
        """Everything the caller heard (``<Say>`` text and the app-error message), space-joined."""
        return _join_heard(self.transcript)

    @property
    def last_heard(self) -> str:
        """What the caller heard since their last action (press/say/silence)."""
        return _join_heard(self.transcript[self._last_action:])

    @property
    def waiting(self) -> bool:
        """True while a ``<Gather>`` waits for the caller (press/say/silence/hang_up)."""
        return self._gather is not None and not self.ended

    @property
    def gather(self) -> dict[str, str] | None:
        """Attributes of the open ``<Gather>`` (as written in the TwiML), or None."""
        return dict(self._gather.attrib) if self._gather is not None else None

    @property
    def gather_url(self) -> str | None:
        """Absolute URL the open gather will request (its ``action`` or the document URL)."""
        if self._gather is None:
            return None
        return urljoin(self._gather_doc_url, self._gather.get("action") or self._gather_doc_url)

    @property
    def warnings(self) -> list[Warning]:
        """The warnings recorded so far."""
        return [e for e in self.transcript if isinstance(e, Warning)]

    @property
    def errors(self) -> list[AppError]:
        """The fatal fetch/parse errors recorded so far."""
        return [e for e in self.transcript if isinstance(e, AppError)]

    @property
    def prompts(self) -> list[str]:
        """The texts of the open gather's nested prompts, in order (what barge-in can cut)."""
        if self._gather is None:
            return []
        return [e.text for e in self.transcript[self._prompts_at:] if isinstance(e, Heard)]

    def transcript_text(self) -> str:
        """The transcript, one event per line."""
        return format_transcript(self.transcript)

    # -- scripting Dial

    def next_dial(self, outcome: str) -> None:
        """Queue the outcome of the next ``<Dial>`` (else :attr:`dial_outcome` is used)."""
        if outcome not in DIAL_OUTCOMES:
            raise SimulatorError(f"unknown dial outcome {outcome!r}", self)
        self._dial_queue.append(outcome)

    # -- caller actions

    def press(self, keys: str, *, barge_in: int | None = None) -> Call:
        """Press DTMF ``keys`` in the open gather (``"1234#"``: ``#`` ends it if finishOnKey).

        ``barge_in=N``: press after hearing only the first N words of the gather's prompts."""
        gather = self._need_gather(f"press({keys!r})")
        if not keys or any(ch not in "0123456789*#" for ch in keys):
            raise SimulatorError(f"press({keys!r}): keys must be 0-9, * or #", self)
        if "dtmf" not in _gather_inputs(gather):
            raise SimulatorError(
                f"press({keys!r}): the open <Gather> listens for {gather.get('input')!r} only",
                self,
            )
        self._barge_in(gather, barge_in)
        finish = gather.get("finishOnKey", "#")
        num = _positive_int(gather.get("numDigits"))
        digits, finished_on = "", ""
        for ch in keys:
            if finish and ch == finish:
                finished_on = ch
                break
            digits += ch
            if num and len(digits) >= num:
                break
        self._act(Pressed(keys, digits))
        self.duration += max(1, len(keys) // 2)
        if not digits:
            self._no_input(gather, {"FinishedOnKey": finished_on})
        else:
            self._gather_result(
                gather, {"Digits": digits, "FinishedOnKey": finished_on, "msg": "Gather End"}
            )
        return self

    def say(
        self, text: str, confidence: float | None = 0.9, *, barge_in: int | None = None
    ) -> Call:
        """Speak ``text`` to the open gather (sent as ``SpeechResult``/``Confidence``).

        ``barge_in=N``: speak over the prompts after hearing only their first N words."""
        gather = self._need_gather(f"say({text!r})")
        if "speech" not in _gather_inputs(gather):
            raise SimulatorError(
                f"say({text!r}): the open <Gather> listens for "
                f"{gather.get('input', 'dtmf')!r} only",
                self,
            )
        if not text.strip():
            raise SimulatorError("say(''): use silence() for no input", self)
        self._barge_in(gather, barge_in)
        self._act(Said(text, confidence))
        self.duration += max(1, len(text.split()) // 2)
        extra = {"SpeechResult": text, "msg": "Gather End"}
        if confidence is not None:
            extra["Confidence"] = f"{confidence:.8g}"
        self._gather_result(gather, extra)
        return self

    def silence(self) -> Call:
        """Give no input: the gather times out (action only with ``actionOnEmptyResult``)."""
        gather = self._need_gather("silence()")
        waited = _positive_int(gather.get("timeout")) or 5  # Twilio's default
        self._act(Silence(waited))
        self.duration += waited
        self._no_input(gather, {})
        return self

    def hang_up(self) -> Call:
        """The caller hangs up: no gather action is sent; the status callback fires."""
        if self.ended:
            raise SimulatorError("hang_up(): the call has already ended", self)
        self._act(HungUp("caller"))
        self._gather = None
        self._end("completed")
        return self

    # -- internals: caller input

    def _need_gather(self, what: str) -> ET.Element:
        if self.ended:
            raise SimulatorError(f"{what}: the call has ended (status {self.status})", self)
        if self._gather is None:
            raise SimulatorError(f"{what}: no <Gather> is listening", self)
        return self._gather

    def _barge_in(self, gather: ET.Element, words: int | None) -> None:
        """The caller's input stopped the nested prompts after `words` words: keep those only."""
        if words is None or gather.get("bargeIn", "true") == "false":
            return
        if words < 0:
            raise SimulatorError(f"barge_in={words}: a number of words heard, 0 or more", self)
        left = words
        kept: list[Event] = []
        seconds = 0
        for event in self.transcript[self._prompts_at:]:
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
        self.transcript[self._prompts_at:] = kept
        self.duration = self._duration_before_prompts + seconds

    def _act(self, event: Event) -> None:
        self.transcript.append(event)
        self._last_action = len(self.transcript)

    def _gather_result(self, gather: ET.Element, extra: dict[str, str]) -> None:
        self._gather = None
        url = urljoin(self._gather_doc_url, gather.get("action") or self._gather_doc_url)
        self._run(_Fetch(url, _method(gather, self), extra))

    def _no_input(self, gather: ET.Element, extra: dict[str, str]) -> None:
        if _truthy(gather.get("actionOnEmptyResult")):
            self._gather_result(gather, {**extra, "msg": "Gather End"})
        else:
            self._gather = None
            self._run(None)

    # -- internals: running TwiML

    def _start(self) -> None:
        self._run(_Fetch(self.sim.absolute(self.sim.voice_url), self.sim.voice_method))

    def _run(self, fetch: _Fetch | None) -> None:
        """Fetch (if given) and execute verbs until a gather waits or the call ends."""
        fetches = 0
        while not self.ended:
            if fetch is not None:
                fetches += 1
                if fetches > self.sim.max_fetches_per_turn:
                    raise SimulatorError(
                        f"{fetches - 1} TwiML fetches without caller input: a redirect loop?",
                        self,
                    )
                if not self._load(fetch):
                    return
                fetch = None
            if self._pos >= len(self._verbs):
                self.transcript.append(HungUp("end-of-twiml"))
                self._end("completed")
                return
            verb = self._verbs[self._pos]
            self._pos += 1
            result = self._execute(verb)
            if result is _WAIT:
                return
            if isinstance(result, _Fetch):
                fetch = result

    def _load(self, fetch: _Fetch) -> bool:
        """Fetch a document into the interpreter; on failure use the fallback or end the call."""
        try:
            self._verbs, self._doc_url = self._fetch_twiml(fetch)
            self._pos = 0
            return True
        except _FetchError as err:
            self.transcript.append(AppError(err.code, err.text, err.url))
            fallback = self.sim.fallback_url
            if fallback and not fetch.fallback:
                fb = _Fetch(
                    self.sim.absolute(fallback),
                    self.sim.fallback_method,
                    {"ErrorCode": str(err.code), "ErrorUrl": err.url},
                    fallback=True,
                )
                return self._load(fb)
            self.transcript.append(Heard(APP_ERROR_MESSAGE))
            self.transcript.append(HungUp("app-error"))
            self._end("completed")
            return False

    def _params(self, extra: Mapping[str, str], status: str | None = None) -> dict[str, str]:
        params = dict(self._base)
        params["CallStatus"] = status or ("in-progress" if self._fetched_once else "ringing")
        params.update(extra)
        return params

    def _send(self, method: str, url: str, params: Mapping[str, str]) -> httpx.Response:
        """Sign and send one request; records it; handles the per-call cookie jar."""
        url, frag = urldefrag(url)
        timeout, retries = _overrides(frag)
        if method == "GET":
            request = self.sim.http.build_request("GET", _append_query(url, params),
                                                  timeout=timeout)
            signed: Mapping[str, str] = {}
        else:
            request = self.sim.http.build_request(method, url, data=dict(params),
                                                  timeout=timeout)
            signed = params
        wire_url = str(request.url)
        request.headers["X-Twilio-Signature"] = self.sim.sign(self.sim.signing_url(wire_url),
                                                              signed)
        request.headers["User-Agent"] = "TwilioProxy/1.1"
        if "Cookie" in request.headers:
            del request.headers["Cookie"]  # the shared client's jar: not this call's
        self.cookies.set_cookie_header(request)
        self.requests.append((method, wire_url, dict(params)))
        t0 = time.perf_counter()
        try:
            for attempt in range(retries + 1):  # only TCP-connect failures are retried
                try:
                    response = self.sim.http.send(request, follow_redirects=False)
                    break
                except (httpx.ConnectError, httpx.ConnectTimeout):
                    if attempt == retries:
                        raise
        finally:
            self.latencies.append(time.perf_counter() - t0)
        self.cookies.extract_cookies(response)
        return response

    def _fetch_twiml(self, fetch: _Fetch) -> tuple[list[ET.Element], str]:
        method = fetch.method.upper()
        url = fetch.url
        params = self._params(fetch.extra)
        self._fetched_once = True
        response: httpx.Response | None = None
        for hop in range(MAX_HTTP_REDIRECTS + 1):
            try:
                response = self._send(method, url, params)
            except (httpx.TimeoutException, httpx.ConnectError) as exc:
                raise _FetchError(11205, f"connection failure or timeout: {exc!r}", url) from exc
            except httpx.TransportError as exc:
                raise _FetchError(11200, f"HTTP retrieval failure: {exc!r}", url) from exc
            if not (response.is_redirect and "location" in response.headers):
                break
            if hop == MAX_HTTP_REDIRECTS:
                raise _FetchError(11215, "more than 10 HTTP redirects", url)
            target = urljoin(urldefrag(url)[0], response.headers["location"])
            dropped = sorted(set(params) - set(self._base) - {"CallStatus"})
            if response.status_code in (307, 308):
                params = self._params({})
            else:
                method, params = "GET", {}
            self.transcript.append(
                Warning(
                    "http-redirect",
                    f"HTTP {response.status_code} from {url} to {target}: followed with "
                    f"{method}, request body dropped"
                    + (f" ({', '.join(dropped)} not resent)" if dropped else ""),
                )
            )
            url = target
        assert response is not None
        doc_url = urldefrag(url)[0]
        return self._parse(response, doc_url), doc_url

    def _parse(self, response: httpx.Response, url: str) -> list[ET.Element]:
        body = response.content
        if not response.is_success:
            raise _FetchError(
                11217, f"HTTP {response.status_code} response: {_excerpt(body)}", url
            )
        ctype = response.headers.get("content-type")
        if not ctype:
            raise _FetchError(12300, "missing Content-Type", url)
        mime = ctype.split(";")[0].strip().lower()
        if len(body) > MAX_TWIML_BYTES:
            raise _FetchError(11750, f"response body is {len(body)} bytes (> 64 kB)", url)
        if mime.startswith("audio/"):  # played, then hang up
            play = ET.Element("Play", {"_simulated": "1"})
            play.text = url
            return [play]
        if mime == "text/plain":
            try:
                return self._parse_xml(body, url)
            except _FetchError:
                say = ET.Element("Say")
                say.text = body.decode("utf-8", "replace")
                return [say]
        if mime not in _TWIML_TYPES:
            raise _FetchError(12300, f"invalid Content-Type {ctype!r}", url)
        return self._parse_xml(body, url)

    def _parse_xml(self, body: bytes, url: str) -> list[ET.Element]:
        if not body.startswith(b"<"):
            raise _FetchError(
                12100, f"document parse failure: content before the XML: {_excerpt(body)}", url
            )
        try:
            root = ET.fromstring(body)
        except ET.ParseError as exc:
            raise _FetchError(12100, f"document parse failure: {exc}", url) from exc
        if root.tag != "Response":
            raise _FetchError(12102, f"root element is <{root.tag}>, not <Response>", url)
        version = root.get("version")
        if version is not None and version not in ("2008-08-01", "2010-04-01"):
            raise _FetchError(12101, f"invalid Response version {version!r}", url)
        self._check_attributes(root)
        if (root.text or "").strip():
            self._warn(12200, "text directly inside <Response> ignored")
        return list(root)

    # -- verbs

    def _warn(self, code: int | str, text: str) -> None:
        self.transcript.append(Warning(code, text))

    def _check_attributes(self, el: ET.Element) -> None:
        known = _ATTRIBUTES.get(str(el.tag))
        if known is None:
            return
        for name in el.attrib:
            if name not in known and name != "_simulated":
                self._warn(12200, f"unknown attribute {name!r} on <{el.tag}>")

    def _no_children(self, el: ET.Element, allowed: frozenset[str] = frozenset()) -> None:
        for child in el:
            if child.tag not in allowed:
                self._warn(12200, f"<{child.tag}> is not allowed inside <{el.tag}>; ignored")

    def _execute(self, verb: ET.Element) -> object:
        tag = verb.tag
        if not isinstance(tag, str):  # comments / processing instructions
            return None
        if tag not in _RUN_VERBS:
            if tag in _OTHER_VERBS:
                self._warn("unsupported", f"<{tag}> is not simulated; skipped")
            else:
                self._warn(12200, f"unknown verb <{tag}>; skipped")
            return None
        self._check_attributes(verb)
        if tag != "Reject":
            self._answered = True
            if self.status == "ringing":
                self.status = "in-progress"
        return getattr(self, f"_verb_{tag.lower()}")(verb)

    def _verb_say(self, el: ET.Element) -> None:
        for child in el.iter():
            if child is not el and child.tag not in _SSML:
                self._warn(12200, f"<{child.tag}> is not allowed inside <Say>; ignored")
        text = " ".join(_say_text(el).split())
        loop = _int_or(el.get("loop"), 1)
        self.transcript.append(Heard(text, el.get("voice"), el.get("language"), loop))
        self.duration += max(1, len(text.split()) // 3) * max(loop, 1)

    def _verb_play(self, el: ET.Element) -> None:
        self._no_children(el)
        url = (el.text or "").strip()
        digits = el.get("digits")
        if not url and not digits:
            self._warn(12200, "<Play> without a URL or digits")
        if url:
            url = urljoin(self._doc_url, url)
        self.transcript.append(Played(url, digits, _int_or(el.get("loop"), 1)))
        self.duration += 3
        if el.get("_simulated"):  # an audio response: played, then hang up
            self.transcript.append(HungUp("end-of-twiml"))
            self._end("completed")

    def _verb_pause(self, el: ET.Element) -> None:
        self._no_children(el)
        length = el.get("length")
        seconds = _positive_int(length) if length is not None else 1
        if seconds is None:
            self._warn(13910, f"invalid <Pause> length {length!r}")
            seconds = 1
        self.transcript.append(Paused(seconds))
        self.duration += seconds

    def _verb_gather(self, el: ET.Element) -> object:
        inputs = _gather_inputs(el)
        if not inputs or not inputs <= {"dtmf", "speech"}:
            self._warn(12200, f"invalid <Gather> input {el.get('input')!r}")
        if el.get("numDigits") is not None and _positive_int(el.get("numDigits")) is None:
            self._warn(12200, f"invalid <Gather> numDigits {el.get('numDigits')!r}")
        timeout = el.get("timeout")
        if timeout is not None and timeout != "auto" and _positive_int(timeout) is None:
            self._warn(12200, f"invalid <Gather> timeout {timeout!r}")
        aoer = el.get("actionOnEmptyResult")
        if aoer is not None and aoer not in ("true", "false"):
            self._warn(13338, f"invalid actionOnEmptyResult value {aoer!r}")
        fok = el.get("finishOnKey")
        if fok is not None and fok not in ("", *"0123456789#*"):
            self._warn(12200, f"invalid <Gather> finishOnKey {fok!r}")
        st = el.get("speechTimeout")
        if st is not None and st != "auto" and _positive_int(st) is None:
            self._warn(13327, f"Gather: invalid speechTimeout value {st!r}")
        self._prompts_at = len(self.transcript)
        self._duration_before_prompts = self.duration
        for child in el:
            if not isinstance(child.tag, str):
                continue
            if child.tag not in _GATHER_CHILDREN:
                self._warn(12200, f"<{child.tag}> is not allowed inside <Gather>; ignored")
                continue
            if child.tag == "Play" and child.get("digits"):
                self._warn(12200, "<Play digits> is not allowed inside <Gather>; ignored")
                continue
            self._check_attributes(child)
            getattr(self, f"_verb_{child.tag.lower()}")(child)
        self._gather = el
        self._gather_doc_url = self._doc_url
        return _WAIT

    def _verb_redirect(self, el: ET.Element) -> object:
        self._no_children(el)
        target = (el.text or "").strip()
        if not target:
            self._warn(12200, "<Redirect> without a URL; skipped")
            return None
        url = urljoin(self._doc_url, target)
        self.transcript.append(Redirected(urldefrag(url)[0]))
        return _Fetch(url, _method(el, self))

    def _verb_hangup(self, el: ET.Element) -> None:
        self._no_children(el, frozenset({"Parameter"}))
        self.transcript.append(HungUp("hangup"))
        self._end("completed")

    def _verb_reject(self, el: ET.Element) -> None:
        self._no_children(el, frozenset({"Parameter"}))
        reason = el.get("reason", "rejected")
        if reason not in ("rejected", "busy"):
            self._warn(13810, f"invalid <Reject> reason {reason!r}")
            reason = "rejected"
        self.transcript.append(HungUp("reject"))
        if self._answered:
            self._warn("reject-after-answer", "<Reject> after the call was answered")
            self._end("completed")
        else:
            self._end("busy" if reason == "busy" else "no-answer")

    def _verb_dial(self, el: ET.Element) -> object:
        numbers = []
        for child in el:
            if not isinstance(child.tag, str):
                continue
            if child.tag not in _DIAL_NOUNS:
                self._warn(12200, f"<{child.tag}> is not allowed inside <Dial>; ignored")
                continue
            numbers.append(f"{child.tag.lower()}:{(child.text or '').strip()}"
                           if child.tag != "Number" else (child.text or "").strip())
        text = (el.text or "").strip()
        if text:
            numbers.insert(0, text)
        number = ", ".join(numbers)
        if not number:
            self._warn(12200, "<Dial> with nothing to dial")
        outcome = self._dial_queue.pop(0) if self._dial_queue else self.dial_outcome
        if outcome not in DIAL_OUTCOMES:
            raise SimulatorError(f"unknown dial outcome {outcome!r}", self)
        self.dialed.append(number)
        self.transcript.append(Dialed(number, outcome))
        talk = self.dial_duration if outcome == "completed" else 0
        ring = _positive_int(el.get("timeout")) or 30
        self.duration += talk + (ring if outcome == "no-answer" else 5)
        action = el.get("action")
        if not action:
            return None
        extra = {
            "DialCallStatus": outcome,
            "DialCallSid": self.sim.new_sid(),
            "DialCallDuration": str(talk),
            "DialBridged": "true" if outcome == "completed" else "false",
        }
        return _Fetch(urljoin(self._doc_url, action), _method(el, self), extra)

    # -- end of call

    def _end(self, status: str) -> None:
        self.ended = True
        self.status = status
        self._gather = None
        cb = self.sim.status_callback
        if not cb:
            return
        never_answered = status in ("busy", "no-answer", "failed", "canceled")
        duration = 0 if never_answered else self.duration
        extra = {
            "CallDuration": str(duration),
            "Timestamp": format_datetime(
                (self.started_at + timedelta(seconds=duration)).astimezone(UTC), usegmt=False
            ),
            "CallbackSource": "call-progress-events",
            "SequenceNumber": "0",
        }
        if status == "completed":
            extra["Duration"] = str(max(1, -(-duration // 60)))
        params = self._params(extra, status=status)
        try:
            response = self._send(self.sim.status_callback_method,
                                  self.sim.absolute(cb), params)
        except httpx.TransportError as exc:
            self._warn("status-callback", f"status callback failed: {exc!r}")
            return
        if not response.is_success:
            self._warn("status-callback", f"status callback answered HTTP "
                                          f"{response.status_code}")


_WAIT: Final = object()


def _join_heard(events: Iterable[object]) -> str:
    return " ".join(e.text for e in events if isinstance(e, Heard) and e.text)


def _excerpt(body: bytes, n: int = 300) -> str:
    text = body[:n].decode("utf-8", "replace")
    return repr(text) + ("..." if len(body) > n else "")


def _method(el: ET.Element, call: Call) -> str:
    method = el.get("method", "POST").upper()
    if method not in ("GET", "POST"):
        call._warn(12200, f"invalid method {method!r} on <{el.tag}>; using POST")
        return "POST"
    return method


def _gather_inputs(el: ET.Element) -> set[str]:
    return set((el.get("input") or "dtmf").split())


def _positive_int(value: str | None) -> int | None:
    try:
        n = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return n if n > 0 else None


def _int_or(value: str | None, default: int) -> int:
    try:
        return int(str(value).strip()) if value is not None else default
    except ValueError:
        return default


def _say_text(el: ET.Element) -> str:
    """Spoken text of a ``<Say>``: text content with SSML tags stripped (``<sub>`` -> alias)."""
    parts = [el.text or ""]
    for child in el:  # element boundaries are word boundaries (builders add no spaces)
        if child.tag == "sub" and child.get("alias") is not None:
            parts.append(f" {child.get('alias')} ")
        elif child.tag == "break":
            parts.append(" ")
        else:
            parts.append(f" {_say_text(child)} ")
        parts.append(child.tail or "")
    return "".join(parts)


def _overrides(fragment: str) -> tuple[httpx.Timeout, int]:
    """Twilio connection overrides in the URL fragment (``#ct=..&rt=..&tt=..&rc=..``, ms).

    Returns the timeout (Twilio's defaults: connect 5 s, whole request 15 s) and how many times
    a TCP-connect failure is retried (default 1: "two 5-second attempts").
    """
    values = dict(parse_qsl(fragment)) if fragment else {}
    try:
        ct = int(values.get("ct", 5000)) / 1000
        rt = int(values.get("rt", 15000)) / 1000
        tt = int(values.get("tt", 15000)) / 1000
        rc = min(max(int(values.get("rc", 1)), 0), 5)
    except ValueError:
        ct, rt, tt, rc = 5.0, 15.0, 15.0, 1
    return httpx.Timeout(min(tt, rt), connect=ct), rc


def raw_signature(url: str, params: Mapping[str, str], auth_token: str) -> str:
    """Section 9.1 by hand: HMAC-SHA1 of url + sorted name+value pairs, base64 (no dedup)."""
    data = url + "".join(k + params[k] for k in sorted(params))
    digest = hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()
