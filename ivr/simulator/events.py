"""What a simulated call produces: the transcript events and the simulator's own error.

Each event is what the caller heard (``Heard``, ``Played``, ``Paused``), did (``Pressed``,
``Said``, ``Silence``, ``HungUp``) or what the call did (``Dialed``, ``Redirected``), plus the
problems Twilio would report (``Warning``, ``AppError``). ``str(event)`` is its transcript line.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol


class _Transcribed(Protocol):
    """What an error message needs of a call (a :class:`~ivr.simulator.Call`)."""

    @property
    def sid(self) -> str: ...

    def transcript_text(self) -> str: ...


class SimulatorError(Exception):
    """The simulator was misused (e.g. a key press while nothing listens) or the app looped.

    The message always ends with the whole transcript of the call so far.
    """

    def __init__(self, message: str, call: _Transcribed | None = None) -> None:
        self.call = call
        if call is not None:
            message = f"{message}\n--- transcript of {call.sid} ---\n{call.transcript_text()}"
        super().__init__(message)


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


def format_transcript(events: Iterable[object]) -> str:
    """Render transcript events one per line (used in :class:`SimulatorError` messages)."""
    lines = [f"  {i:3d}. {ev}" for i, ev in enumerate(events, 1)]
    return "\n".join(lines) if lines else "  (nothing yet)"


def join_heard(events: Iterable[object]) -> str:
    """The ``Heard`` texts among ``events``, space-joined (what the caller heard)."""
    return " ".join(e.text for e in events if isinstance(e, Heard) and e.text)
