"""A simulated call, and the simulator that places calls to one number.

A :class:`Call` is Twilio's side of one inbound call: it fetches TwiML, runs the verbs (by
:mod:`ivr.simulator.verbs`) until a ``<Gather>`` waits or the call ends, takes the caller's
input, and fires the status callback once at the end. A fatal fetch or parse error goes to the
fallback URL with ``ErrorCode``/``ErrorUrl`` (for every fetch: first webhook, actions,
``<Redirect>``), else, or if the fallback fails too, the caller hears :data:`APP_ERROR_MESSAGE`
and the call ends. An exception raised by a Flask app with ``testing=True`` propagates.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from datetime import UTC
from typing import Final
from urllib.parse import urldefrag

import httpx

from ivr.simulator import gather as listening
from ivr.simulator.document import method, parse, truthy
from ivr.simulator.events import (
    AppError,
    Event,
    Heard,
    HungUp,
    Pressed,
    Said,
    Silence,
    SimulatorError,
    Warning,
    format_transcript,
    join_heard,
)
from ivr.simulator.number import TwilioNumber, status_callback_params
from ivr.simulator.verbs import DIAL_OUTCOMES, RULES, Scene, Step, runnable
from ivr.simulator.wire import Fetch, FetchError, Line

APP_ERROR_MESSAGE: Final = "We are sorry, an application error has occurred. Goodbye."


class Call:
    """One simulated inbound call. Drive it with :meth:`press`, :meth:`say`, :meth:`silence`,
    :meth:`hang_up`; read :attr:`heard`, :attr:`last_heard`, :attr:`transcript`."""

    def __init__(
        self,
        sim: TwilioNumber,
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
        self._line = Line(sim)
        self.requests = self._line.requests
        self.latencies = self._line.latencies
        self.dialed: list[str] = []
        self.ended = False
        self.status = "ringing"
        self.duration = 0  # simulated seconds
        started = sim._now()
        self.started_at = started if started.tzinfo else started.replace(tzinfo=UTC)
        self.cookies = self._line.cookies
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
        # An outbound call's own URLs (Calls.create's Url and StatusCallback); None: the
        # number's voice URL and status callback.
        self.start_url: str | None = None
        self.status_callback: str | None = None

    def __repr__(self) -> str:
        state = "ended" if self.ended else ("gathering" if self._gather is not None else "idle")
        return f"<Call {self.sid} {self.from_} {state} status={self.status}>"

    # -- reading

    @property
    def heard(self) -> str:
        """Everything the caller heard (``<Say>`` text and the app-error message), space-joined."""
        return join_heard(self.transcript)

    @property
    def last_heard(self) -> str:
        """What the caller heard since their last action (press/say/silence)."""
        return join_heard(self.transcript[self._last_action:])

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
        return listening.action_url(self._gather, self._gather_doc_url)

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
        if "dtmf" not in listening.inputs(gather):
            raise SimulatorError(
                f"press({keys!r}): the open <Gather> listens for {gather.get('input')!r} only",
                self,
            )
        self._barge_in(gather, barge_in)
        digits, finished_on = listening.keys_taken(gather, keys)
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
        if "speech" not in listening.inputs(gather):
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
        waited = listening.silence_seconds(gather)
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
        if words is None or not listening.barges_in(gather):
            return
        if words < 0:
            raise SimulatorError(f"barge_in={words}: a number of words heard, 0 or more", self)
        kept, seconds = listening.cut_prompts(self.transcript[self._prompts_at:], words)
        self.transcript[self._prompts_at:] = kept
        self.duration = self._duration_before_prompts + seconds

    def _act(self, event: Event) -> None:
        self.transcript.append(event)
        self._last_action = len(self.transcript)

    def _gather_result(self, gather: ET.Element, extra: dict[str, str]) -> None:
        self._gather = None
        url = listening.action_url(gather, self._gather_doc_url)
        self._run(Fetch(url, method(gather, self.transcript), extra))

    def _no_input(self, gather: ET.Element, extra: dict[str, str]) -> None:
        if truthy(gather.get("actionOnEmptyResult")):
            self._gather_result(gather, {**extra, "msg": "Gather End"})
        else:
            self._gather = None
            self._run(None)

    # -- internals: running TwiML

    def _start(self) -> None:
        self._run(Fetch(self.sim.absolute(self.start_url or self.sim.voice_url),
                        "POST" if self.start_url else self.sim.voice_method))

    def _run(self, fetch: Fetch | None) -> None:
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
            step = self._execute(verb)
            if step is None:
                continue
            if step.gather:
                return
            fetch = step.fetch

    def _execute(self, verb: ET.Element) -> Step | None:
        """Run one verb by Twilio's rules (:mod:`ivr.simulator.verbs`) and apply its step."""
        tag = runnable(verb, self.transcript)
        if tag is None:
            return None
        if tag != "Reject":
            self._answered = True
            if self.status == "ringing":
                self.status = "in-progress"
        before = self.duration
        scene = Scene(self.transcript, self._doc_url, self._answered, self.dial_duration,
                      self._next_dial_outcome, self.sim.new_sid)
        step = RULES[tag](verb, scene)
        self.duration += step.seconds
        if step.dialed is not None:
            self.dialed.append(step.dialed)
        if step.gather:
            self._gather = verb
            self._gather_doc_url = self._doc_url
            self._prompts_at = step.prompts_at
            self._duration_before_prompts = before
        if step.end is not None:
            self._end(step.end)
        return step

    def _next_dial_outcome(self) -> str:
        outcome = self._dial_queue.pop(0) if self._dial_queue else self.dial_outcome
        if outcome not in DIAL_OUTCOMES:
            raise SimulatorError(f"unknown dial outcome {outcome!r}", self)
        return outcome

    def _load(self, fetch: Fetch) -> bool:
        """Fetch a document into the interpreter; on failure use the fallback or end the call."""
        try:
            self._verbs, self._doc_url = self._fetch_twiml(fetch)
            self._pos = 0
            return True
        except FetchError as err:
            self.transcript.append(AppError(err.code, err.text, err.url))
            fallback = self.sim.fallback_url
            if fallback and not fetch.fallback:
                fb = Fetch(
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

    def _fetch_twiml(self, fetch: Fetch) -> tuple[list[ET.Element], str]:
        params = self._params(fetch.extra)
        self._fetched_once = True
        response, url = self._line.fetch(
            fetch.method.upper(), fetch.url, params, self._params({}), self.transcript
        )
        doc_url = urldefrag(url)[0]
        return parse(response, doc_url, self.transcript), doc_url

    def _params(self, extra: Mapping[str, str], status: str | None = None) -> dict[str, str]:
        params = dict(self._base)
        params["CallStatus"] = status or ("in-progress" if self._fetched_once else "ringing")
        params.update(extra)
        return params

    # -- end of call

    def _end(self, status: str) -> None:
        self.ended = True
        self.status = status
        self._gather = None
        cb = self.status_callback or self.sim.status_callback
        if not cb:
            return
        extra = status_callback_params(status, self.duration, self.started_at)
        params = self._params(extra, status=status)
        try:
            response = self._line.send(self.sim.status_callback_method,
                                       self.sim.absolute(cb), params)
        except httpx.TransportError as exc:
            self.transcript.append(
                Warning("status-callback", f"status callback failed: {exc!r}")
            )
            return
        if not response.is_success:
            self.transcript.append(Warning(
                "status-callback", f"status callback answered HTTP {response.status_code}"
            ))



class TwilioSimulator(TwilioNumber):
    """Twilio's side of inbound calls to one phone number configured with these URLs.

    The settings are :class:`TwilioNumber`'s. Calls of one simulator may run concurrently, one
    thread each (they share only the ``httpx.Client``); each call keeps its own cookie jar.
    """

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

    def outbound(
        self,
        url: str,
        *,
        to: str,
        from_: str | None = None,
        answered_by: str | None = "human",
        status_callback: str | None = None,
        outcome: str | None = None,
        call_sid: str | None = None,
    ) -> Call:
        """An outbound call our app asked for (Calls.create): Twilio rings `to` from the
        number (`from_`, default the simulator's `to`) and, once answered, posts `url` with
        `Direction=outbound-api` and `AnsweredBy` (machine detection's verdict), signed like
        any webhook. `outcome` "busy", "no-answer", "failed" or "canceled": nobody answers,
        only the status callback is posted. `status_callback` gets the call's end."""
        extra = {"Direction": "outbound-api"}
        if answered_by is not None and outcome is None:  # no verdict on a call nobody answered
            extra["AnsweredBy"] = answered_by
        call = Call(self, from_=from_ or self.to, to=to, call_sid=call_sid or self.new_sid(),
                    extra_params=extra)
        call.start_url = url
        call.status_callback = status_callback
        if outcome is not None:
            call._end(outcome)
            return call
        # Twilio fetches an outbound call's Url once it is answered: "in-progress", not the
        # "ringing" of an inbound call's first webhook.
        call._fetched_once = True
        call._start()
        return call
