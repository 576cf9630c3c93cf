"""The vocabulary of a call flow: Ask, Do, Say, Transfer, Hangup, and the Flow that checks them.

A flow is a list of rows. By default a row goes to the row below it; `next` (a step key, or a
mapping from an outcome label to a step key) says otherwise. Handlers return outcome labels; the
table maps labels to steps. Prompts are catalogue keys (`flows/lang/`), never sentences.

FlowError
├── FlowDefinitionError   the table is wrong (unknown target, unreachable step): raised at import
└── (NotUnderstood is a value, not an error: see flows.understanding)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flows.engine import Turn
    from flows.understanding import Answer

# A handler turns the caller's answer into an outcome label (routed by `next`), or None when the
# answer was not understood (the engine reprompts, then gives up after `attempts`).
AnswerHandler = Callable[["Answer", "Turn"], str | None]
# An action does the work of a Do row and returns an outcome label.
Action = Callable[["Turn"], str]
# A guard decides whether a row applies to this call; a skipped row passes to the row below.
# A skipped row (guard false) passes to its fixed `next`, or else to the row below.
Guard = Callable[["Turn"], bool]
Hints = Callable[["Turn"], tuple[str, ...]]
Route = str | Mapping[str, str] | None


class FlowError(Exception):
    """Base class for errors of the conversation layer."""


class FlowDefinitionError(FlowError):
    """The flow table is inconsistent; raised when the flow is built, never mid-call."""


@dataclass(frozen=True)
class Ask:
    """Speak a prompt inside a gather and hand the answer to `handle`."""

    key: str
    prompt: str
    handle: AnswerHandler
    next: Route = None
    input: str = "dtmf speech"
    digits: int | None = None  # numDigits: submit as soon as this many keys are pressed
    finish_on_key: str | None = None  # "#" for variable-length numbers
    timeout: int = 5
    hints: Hints | tuple[str, ...] = ()
    attempts: int = 3
    on_give_up: str | None = None  # None: the flow's `person` step
    on_silence: str | None = None  # a step to go to on silence instead of reprompting
    reprompt: str | None = None  # catalogue key of the shorter hint; default "<prompt>_hint"
    when: Guard | None = None
    person_ok: bool = True  # "0" or "agent" goes to a person from here
    each_language: bool = False  # say the prompt once in every offered language (language menu)
    private: bool = False  # the answer identifies someone (number, name, birth date): never logged
    facts: Callable[[Turn], dict[str, object]] | None = None  # step-specific prompt fields


@dataclass(frozen=True)
class Do:
    """Run an action; its outcome label picks the next row."""

    key: str
    run: Action
    next: Route = None
    hold: str | None = None  # catalogue key spoken before a slow action, then <Redirect>
    on_error: str = "records_down"
    when: Guard | None = None


@dataclass(frozen=True)
class Say:
    """Speak and go on in the same reply (no round trip)."""

    key: str
    text: str
    next: Route = None
    when: Guard | None = None


@dataclass(frozen=True)
class Transfer:
    """Hand the call to a person, or to `closed` when nobody is there (agent hours)."""

    key: str
    text: str
    on_no_answer: str
    closed: str
    ring_seconds: int = 25
    when: Guard | None = None


@dataclass(frozen=True)
class Hangup:
    """Final words, then hang up; `outcome` is what the call is recorded as."""

    key: str
    text: str
    outcome: str
    when: Guard | None = None


Step = Ask | Do | Say | Transfer | Hangup

ENGINE_PROMPTS = ("give_up", "not_understood", "check_heard")
"""Catalogue keys the engine itself speaks (giving up, a reprompt, a low-confidence read-back)."""


@dataclass(frozen=True)
class Flow:
    """An ordered, validated table of steps; the first row is where a call starts."""

    name: str
    rows: tuple[Step, ...]
    person: str | None = None  # where "0" or "agent" goes from a row with person_ok
    unavailable: str | None = None  # where an answer goes when the clinic system is down
    facts: Callable[[Turn], dict[str, object]] | None = None  # the fields prompts may use
    # The flow's typed per-call data: builds it from the stored JSON (`{}` for a new call); the
    # object it returns has `dump()` back to JSON. None: `CallState.data` is a plain dict.
    frame: Callable[[Mapping[str, Any]], Any] | None = None
    _index: Mapping[str, int] = field(init=False, repr=False, compare=False)

    def __init__(
        self,
        name: str,
        rows: list[Step] | tuple[Step, ...],
        *,
        person: str | None = None,
        unavailable: str | None = None,
        facts: Callable[[Turn], dict[str, object]] | None = None,
        catalogues: Iterable[Mapping[str, str]] = (),
        frame: Callable[[Mapping[str, Any]], Any] | None = None,
    ) -> None:
        """`catalogues`: prompt tables every prompt key of the rows must be in (checked now)."""
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "rows", tuple(rows))
        object.__setattr__(self, "person", person)
        object.__setattr__(self, "unavailable", unavailable)
        object.__setattr__(self, "facts", facts)
        object.__setattr__(self, "frame", frame)
        index: dict[str, int] = {}
        for i, row in enumerate(self.rows):
            if row.key in index:
                raise FlowDefinitionError(f"{name}: step {row.key!r} is defined twice")
            index[row.key] = i
        object.__setattr__(self, "_index", index)
        for special in (person, unavailable):
            if special is not None and special not in index:
                raise FlowDefinitionError(f"{name}: unknown step {special!r}")
        self._check()
        for prompts in catalogues:
            missing = sorted(k for k in self.prompt_keys() if k not in prompts)
            if missing:
                raise FlowDefinitionError(
                    f"{name}: prompt key(s) missing from a catalogue: {', '.join(missing)}"
                )

    def give_up(self, row: Ask) -> str:
        """Where an Ask goes after too many tries: its own `on_give_up`, else `person`."""
        step = row.on_give_up or self.person
        if step is None:
            raise FlowDefinitionError(f"{self.name}: step {row.key!r} has no step to give up to")
        return step

    def prompt_keys(self) -> set[str]:
        """Every catalogue key the rows speak (prompts, their hints, hold messages)."""
        keys: set[str] = set(ENGINE_PROMPTS)
        for row in self.rows:
            if isinstance(row, Ask):
                keys.update((row.prompt, row.reprompt or f"{row.prompt}_hint"))
            elif isinstance(row, (Say, Transfer, Hangup)):
                keys.add(row.text)
            elif isinstance(row, Do) and row.hold:
                keys.add(row.hold)
        return keys

    def __getitem__(self, key: str) -> Step:
        return self.rows[self._index[key]]

    def __contains__(self, key: object) -> bool:
        return key in self._index

    @property
    def start(self) -> str:
        """The key of the first row."""
        return self.rows[0].key

    def below(self, key: str) -> str | None:
        """The key of the row below `key`, or None for the last row."""
        i = self._index[key] + 1
        return self.rows[i].key if i < len(self.rows) else None

    def route(self, key: str, outcome: str | None) -> str:
        """The step an outcome of step `key` leads to."""
        row = self[key]
        nxt: Route = getattr(row, "next", None)
        if isinstance(nxt, str):
            return nxt
        if isinstance(nxt, Mapping) and outcome is not None and outcome in nxt:
            return nxt[outcome]
        below = self.below(key)
        if below is None:
            raise FlowDefinitionError(f"{self.name}: step {key!r} has nowhere to go")
        return below

    def targets(self, row: Step) -> list[str]:
        """Every step a row can lead to (for validation and diagrams)."""
        out: list[str] = []
        nxt: Any = getattr(row, "next", None)
        if isinstance(nxt, str):
            out.append(nxt)
        elif isinstance(nxt, Mapping):
            out.extend(nxt.values())
        if isinstance(row, Ask):
            if row.on_give_up or self.person:
                out.append(row.on_give_up or self.person or "")
            if row.on_silence:
                out.append(row.on_silence)
        if isinstance(row, Do):
            out.append(row.on_error)
        if isinstance(row, Transfer):
            out.extend([row.on_no_answer, row.closed])
        falls_through = not isinstance(row, (Transfer, Hangup)) and (
            nxt is None or isinstance(nxt, Mapping) or row.when is not None
        )
        if falls_through or (row.when is not None):
            below = self.below(row.key)
            if below is not None:
                out.append(below)
        return out

    def _check(self) -> None:
        for row in self.rows:
            for target in self.targets(row):
                if target not in self._index:
                    raise FlowDefinitionError(
                        f"{self.name}: step {row.key!r} leads to unknown step {target!r}"
                    )
            if isinstance(row, Ask):
                self.give_up(row)
            if isinstance(row, (Ask, Do, Say)) and row.next is None:
                if self.below(row.key) is None:
                    raise FlowDefinitionError(
                        f"{self.name}: step {row.key!r} is last but does not end the call"
                    )
        # Every step must be reachable from the start (a typo in a route would orphan one).
        seen: set[str] = set()
        todo = [self.start]
        while todo:
            key = todo.pop()
            if key in seen:
                continue
            seen.add(key)
            todo.extend(self.targets(self[key]))
        unreachable = [row.key for row in self.rows if row.key not in seen]
        if unreachable:
            raise FlowDefinitionError(
                f"{self.name}: unreachable step(s): {', '.join(unreachable)}"
            )

    def mermaid(self) -> str:
        """A Mermaid flowchart of the table, for the README."""
        lines = ["flowchart TD"]
        for row in self.rows:
            kind = type(row).__name__
            lines.append(f'    {row.key}["{kind}: {row.key}"]')
        for row in self.rows:
            for target in dict.fromkeys(self.targets(row)):
                lines.append(f"    {row.key} --> {target}")
        return "\n".join(lines)
