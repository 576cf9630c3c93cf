"""Per-language prompt catalogues: every sentence a caller hears lives here, not in flow logic.

A catalogue maps a prompt key to a template (`str.format` fields filled from the call's facts)
and knows how to say dates, times and menus naturally in its language. Adding a language is
one module here plus its entry in `CATALOGUES`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime, time
from typing import Protocol


class Catalogue(Protocol):
    """What the engine needs from a language."""

    code: str  # "en", matches flows.understanding vocabularies
    name: str  # the language's own name, as offered to callers

    @property
    def prompts(self) -> Mapping[str, str]:
        """Prompt key -> wording (read-only here, so a catalogue may hold a plain dict)."""
        ...

    def say_date(self, day: date, today: date) -> str:
        """A date as spoken, relative to today where natural ("tomorrow")."""
        ...

    def say_time(self, moment: time) -> str:
        """A time of day as spoken ("10 a.m.", "2:20 p.m.")."""
        ...

    def say_when(self, moment: datetime, today: date, *, previous: date | None = None) -> str:
        """A date and time; the date is left out when it equals `previous` (menus)."""
        ...

    def say_options(self, labels: Sequence[str], *, template: str = "option") -> str:
        """A keypad menu: "For Ali, press 1. For Sara, press 2."."""
        ...

    def say_understood(
        self,
        day: date | None,
        start: time | None,
        end: time | None,
        today: date,
        *,
        doctor: str | None = None,
    ) -> str:
        """What a read-back confirms, from the parsed value (never the transcript)."""
        ...


def text(catalogue: Catalogue, key: str, facts: Mapping[str, object]) -> str:
    """Render prompt `key` with the call's facts; unknown fields render empty, never crash."""
    template = catalogue.prompts.get(key)
    if template is None:
        # A missing translation falls back to English rather than silence.
        from flows.lang import en

        template = en.PROMPTS.get(key, "")
    # "at 9 a.m." ending a sentence must not become "a.m.."
    rendered = template.format_map(_Facts(facts)).strip().replace("..", ".")
    # Sentences start with a capital even when they start with a fact ("today at 10 a.m. ...").
    return rendered[:1].upper() + rendered[1:]


class _Facts(dict):
    def __init__(self, facts: Mapping[str, object]) -> None:
        super().__init__(facts)

    def __missing__(self, key: str) -> str:
        return ""


def catalogue_for(code: str) -> Catalogue:
    """The catalogue for a language code ("en", "en-GB", "ur-PK" ...); English by default."""
    base = code.split("-")[0].lower()
    return CATALOGUES.get(base) or CATALOGUES["en"]


def _load() -> dict[str, Catalogue]:
    from flows.lang import en

    found: dict[str, Catalogue] = {"en": en.ENGLISH}
    try:  # Urdu registers itself when its module exists
        from flows.lang import ur

        found[ur.CATALOGUE.code] = ur.CATALOGUE
    except ImportError:
        pass
    return found


CATALOGUES: dict[str, Catalogue] = _load()
