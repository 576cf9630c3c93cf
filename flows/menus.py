"""Keypad menus longer than one digit can reach: pages of names, "for more names press 9".

A gather submits on the first key (`digits=1`), so a menu of ten or more would make "press 12"
choose option 1. Up to `SINGLE_PAGE` options keep keys 1-9 as before. A longer menu is read
`PAGE_SIZE` options at a time (keys 1-8 on every page) with `MORE_KEY` for the next page,
wrapping round after the last one. Speech still chooses by name among every kept option.

Every limit is a total: no more than `MAX_KEPT` options are kept in the call's state (a family
of thousands on one number must not make every turn's state and TwiML grow with it), so no
prompt names more than `PAGE_SIZE` of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from flows.understanding import Answer, Understood, parse_choice, parse_doctor
from flows.understanding.types import Context, NotUnderstood

T = TypeVar("T")

SINGLE_PAGE = 9  # keys 1-9: a menu this short needs no pages
PAGE_SIZE = 8  # keys 1-8 on a page; 9 is "more"
MORE_KEY = "9"
MAX_KEPT = 40  # five pages; the rest of a huge list is for a person (0) to find
MORE = "more"  # what `choose` returns for "the next page, please"


def keep(items: Sequence[T]) -> list[T]:
    """The options a call keeps (at most `MAX_KEPT`, in Clinicea's order)."""
    return list(items[:MAX_KEPT])


@dataclass(frozen=True)
class Page:
    """One page of a menu of `total` options: options `first` .. `first + len - 1`."""

    total: int
    number: int = 0  # 0-based page index

    @property
    def paged(self) -> bool:
        """Whether the menu is too long for keys 1-9."""
        return self.total > SINGLE_PAGE

    @property
    def count(self) -> int:
        """How many pages the menu has."""
        if not self.paged:
            return 1
        return max(1, -(-self.total // PAGE_SIZE))

    @property
    def first(self) -> int:
        """0-based index of this page's first option."""
        return (self.number % self.count) * PAGE_SIZE if self.paged else 0

    @property
    def indexes(self) -> range:
        """0-based indexes of this page's options."""
        if not self.paged:
            return range(self.total)
        return range(self.first, min(self.first + PAGE_SIZE, self.total))

    def following(self) -> Page:
        """The next page (after the last one: the first again)."""
        return Page(self.total, (self.number + 1) % self.count)

    def picked(self, key: str) -> int | None:
        """The 0-based option a key of this page stands for, or None."""
        if len(key) != 1 or not key.isdigit() or key == "0":
            return None
        if self.paged and key == MORE_KEY:
            return None
        index = self.first + int(key) - 1
        return index if index in self.indexes else None

    def is_more(self, key: str) -> bool:
        """Whether `key` asks for the next page."""
        return self.paged and key == MORE_KEY


def page_of(total: int, stored: object) -> Page:
    """The page a call is on (its stored page number, checked: state is data from a store)."""
    number = stored if isinstance(stored, int) and not isinstance(stored, bool) else 0
    page = Page(total, max(0, number))
    return Page(total, page.number % page.count)


def choose(
    answer: Answer, ctx: Context, words: Sequence[Sequence[str]], page: Page
) -> Understood[int] | NotUnderstood | str:
    """The 0-based option chosen on `page` (`words[i]`: what option i may be called), or `MORE`.

    Keys and spoken keys ("two") count on the page the caller heard; a name counts wherever
    it is in the kept list."""
    if answer.keyed:
        if page.is_more(answer.keyed):
            return MORE
        index = page.picked(answer.keyed)
        return Understood(index) if index is not None else NotUnderstood("no_option")
    options: dict[str, Sequence[str]] = {}
    shown = page.indexes
    for n, i in enumerate(shown, 1):
        options[str(n)] = words[i]
    for i in range(len(words)):
        if i not in shown:
            options[f"option-{i}"] = words[i]  # never a spoken key: reached by its name only
    if page.paged:
        options[MORE_KEY] = ()
    result = parse_choice(answer, ctx, options)
    if not isinstance(result, Understood):
        return result
    if result.value == MORE_KEY and page.paged:
        return MORE
    if result.value.startswith("option-"):
        return Understood(int(result.value.removeprefix("option-")), sure=result.sure)
    index = page.picked(result.value)
    return Understood(index, sure=result.sure) if index is not None else NotUnderstood("no_option")


def choose_doctor(
    answer: Answer, ctx: Context, page: Page
) -> Understood[str] | NotUnderstood | str:
    """A doctor id from a paged doctor menu (`ctx.doctors`, in menu order), or `MORE`.

    A name is matched among every doctor (fuzzy, as on a short menu); keys on the page."""
    if not answer.keyed:
        by_name = parse_doctor(answer, ctx)
        if isinstance(by_name, Understood):
            return by_name
    picked = choose(answer, ctx, [() for _ in ctx.doctors], page)
    if isinstance(picked, Understood):
        return Understood(ctx.doctors[picked.value].id, sure=picked.sure)
    return picked
