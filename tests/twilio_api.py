"""Twilio's REST API as tests fake it with `responses`: the account, its URLs, what was sent;
and the fake clock call pacers run on.

The `twilio` fixture (tests/conftest.py) accepts every text and call with a fresh SID.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import parse_qs

import responses

ACCOUNT = "AC" + "0" * 32
API = f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT}"


@contextmanager
def accepting_twilio() -> Iterator[responses.RequestsMock]:
    """Twilio's Messages and Calls APIs, each request accepted ("queued") with its own SID."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        counter = iter(range(1, 10_000))
        mock.add_callback(responses.POST, f"{API}/Messages.json", callback=lambda req: (
            201, {}, f'{{"sid": "SM{next(counter):032d}", "status": "queued"}}'))
        mock.add_callback(responses.POST, f"{API}/Calls.json", callback=lambda req: (
            201, {}, f'{{"sid": "CA{next(counter):032x}", "status": "queued"}}'))
        yield mock


def sent(mock: responses.RequestsMock, what: str) -> list[dict[str, list[str]]]:
    """The forms posted to `what` ("Messages.json", "Calls.json"), in order."""
    return [parse_qs(c.request.body) for c in mock.calls if c.request.url.endswith(what)]


class FakeTime:
    """A monotonic clock for call pacers that moves only when slept on (or told to)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
