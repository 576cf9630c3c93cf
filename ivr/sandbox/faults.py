"""Fault switches of the sandbox Clinicea: latency, failures, hangs, garbage, lost responses.

Every switch is thread-safe. One-shot faults (`fail_next`, `hang_next`, `malformed_next`,
`store_then_hang`) are consumed by the first matching request; `operation=None` matches any
operation (and unknown paths). Admin requests (`/_sandbox/...`) are never faulted.

Operation names: `login`, `search`, `past_visits`, `appointments_by_date`, `book`,
`register_and_book`.

What each fault does to a request, in this order:

1. `latency(ms, jitter_ms)`: sleeps `ms +- uniform(jitter_ms)` milliseconds on every request
   until cleared (`latency(0)` or `clear()`).
2. `fail_next(status, times, operation, retry_after, body)`: answers `status` with a plain-text
   body, without doing anything (a POST stores nothing). 429 always sends `Retry-After`
   (`retry_after`, default 1 second); other statuses send it only when `retry_after` is given.
   `times=None` fails every matching request until cleared.
3. `hang_next(seconds, operation)`: sleeps, then answers normally (client timeout tests).
4. `expire_tokens()`: every token issued so far is invalid: the next call with one gets 401.
5. `malformed_next(operation)`: the request is processed (a POST does store), then the answer
   is replaced by a 200 with broken JSON.
6. `store_then_hang(seconds, operation)`: the request is processed (a POST does store), then the
   answer waits `seconds` before being sent: "booking stored but response lost".
7. `allow_overlaps(True)`: bookings are stored even when they overlap an active appointment of
   the same doctor (many clinic systems allow overbooking), until `allow_overlaps(False)` or
   `clear()`.

Body faults (separate switches, applied to the answer after everything above; one-shot):

8. `drip_next(bytes_per_second, operation)`: the request is processed, then its answer is
   sent byte by byte, `bytes_per_second` bytes a second (a slow-sending server).
9. `huge_next(size_bytes, operation)`: the request is processed, then answered 200 with a
   JSON array of `size_bytes` bytes (an answer too large to read).
10. `nested_next(depth, operation)`: the request is processed, then answered 200 with JSON
   nested `depth` arrays deep (`[[[[...]]]]`, 100000 by default: past any parser's recursion).

Spec grammar (the `IVR_SANDBOX_FAULTS` setting, `ivr sandbox --faults`), items separated by
commas, fields by colons, empty or `*` operation meaning "any"::

    latency=MS[:JITTER_MS]                       latency=150:50
    fail=STATUS[:TIMES[:OPERATION[:RETRY_AFTER]]]  fail=503:2:book  fail=429:1:search:3
                                                   (TIMES `*`: every request)
    hang=SECONDS[:OPERATION]                     hang=20:search
    malformed[=OPERATION]                        malformed=past_visits
    store_then_hang=SECONDS:OPERATION            store_then_hang=30:book
    expire_tokens
    drip=BYTES_PER_SECOND[:OPERATION]            drip=1:search
    huge=SIZE_BYTES[:OPERATION]                  huge=5000000:search
    nested[=DEPTH[:OPERATION]]                   nested=100000:book
    overlap                                      (allow_overlaps(True))

Example: `latency=150:50,fail=503:2:book`. Bad specs raise `ValueError` with a one-line message.

JSON form (`POST /_sandbox/faults`), keys applied in this order, all optional::

    {"clear": true,
     "spec": "latency=150:50",
     "latency": {"ms": 150, "jitter_ms": 50}            (or a bare number of ms),
     "fail_next": {"status": 503, "times": 2, "operation": "book",
                   "retry_after": null, "body": null}    (or a list of such objects),
     "hang_next": {"seconds": 2, "operation": "search"},
     "malformed_next": {"operation": "search"}          (or true),
     "store_then_hang": {"seconds": 3, "operation": "book"},
     "expire_tokens": true,
     "drip_next": {"bytes_per_second": 1, "operation": "search"},
     "huge_next": {"size_bytes": 5000000, "operation": "search"},
     "nested_next": {"depth": 100000, "operation": "book"},
     "allow_overlaps": true}
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Concatenate, ParamSpec

_P = ParamSpec("_P")

OPERATIONS: tuple[str, ...] = (
    "login", "search", "past_visits", "appointments_by_date", "book", "register_and_book",
    "patient_appointments",
)

_DEFAULT_BODIES = {
    400: "Bad Request",
    401: "Authorization has been denied for this request.",
    403: "Forbidden",
    404: "Not Found",
    429: "Too many requests. Please retry later.",
    500: "An error has occurred.",
    502: "Bad Gateway",
    503: "The service is unavailable.",
    504: "Gateway Timeout",
}


@dataclass(frozen=True)
class FailRule:
    """A pending failure: answer `status` to the next `times` matching requests."""

    status: int
    times: int | None
    operation: str | None
    retry_after: int | None
    body: str

    def matches(self, operation: str | None) -> bool:
        """Whether a request for `operation` triggers this rule."""
        return self.operation is None or self.operation == operation


@dataclass(frozen=True)
class FaultPlan:
    """What the faults do to one request (taken once, when the request starts)."""

    latency_s: float = 0.0
    fail: FailRule | None = None
    hang_s: float = 0.0
    malformed: bool = False
    store_then_hang_s: float = 0.0

    @property
    def retry_after_header(self) -> str | None:
        """The `Retry-After` value to send with the failure, if any."""
        if self.fail is None:
            return None
        if self.fail.retry_after is not None:
            return str(self.fail.retry_after)
        return "1" if self.fail.status == 429 else None


def _check_operation(operation: str | None) -> str | None:
    if operation in (None, "", "*", "any"):
        return None
    if operation not in OPERATIONS:
        raise ValueError(f"unknown operation {operation!r} (one of {', '.join(OPERATIONS)})")
    return operation


class Faults:
    """The fault switches of one sandbox (see the module docstring). Thread-safe."""

    def __init__(self, *, rng: random.Random | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self._lock = threading.Lock()
        self._rng = rng or random.Random()
        self.sleep = sleep
        self._latency_ms = 0.0
        self._jitter_ms = 0.0
        self._fails: list[FailRule] = []
        self._hangs: list[tuple[float, str | None]] = []
        self._malformed: list[str | None] = []
        self._store_then_hang: list[tuple[float, str | None]] = []
        self._token_generation = 0
        self._bodies: list[BodyFault] = []
        self._allow_overlaps = False

    # -- switches -----------------------------------------------------------------------------

    def latency(self, ms: float, jitter_ms: float = 0) -> None:
        """Delay every request by `ms` +- `jitter_ms` milliseconds (0 turns it off)."""
        if ms < 0 or jitter_ms < 0:
            raise ValueError("latency: ms and jitter_ms must be >= 0")
        with self._lock:
            self._latency_ms, self._jitter_ms = float(ms), float(jitter_ms)

    def fail_next(self, status: int, times: int | None = 1, operation: str | None = None,
                  retry_after: int | None = None, body: str | None = None) -> None:
        """Answer `status` (plain text) to the next `times` matching requests (None: all)."""
        if not 400 <= int(status) <= 599:
            raise ValueError(f"fail: status must be 400-599, not {status}")
        if times is not None and int(times) < 1:
            raise ValueError("fail: times must be >= 1")
        if retry_after is not None and int(retry_after) < 0:
            raise ValueError("fail: retry_after must be >= 0")
        rule = FailRule(int(status), None if times is None else int(times),
                        _check_operation(operation),
                        None if retry_after is None else int(retry_after),
                        body if body is not None else _DEFAULT_BODIES.get(int(status), "Error"))
        with self._lock:
            self._fails.append(rule)

    def hang_next(self, seconds: float, operation: str | None = None) -> None:
        """The next matching request sleeps `seconds`, then is answered normally."""
        if seconds < 0:
            raise ValueError("hang: seconds must be >= 0")
        op = _check_operation(operation)
        with self._lock:
            self._hangs.append((float(seconds), op))

    def malformed_next(self, operation: str | None = None) -> None:
        """The next matching request is processed, then answered 200 with broken JSON."""
        op = _check_operation(operation)
        with self._lock:
            self._malformed.append(op)

    def store_then_hang(self, seconds: float, operation: str | None) -> None:
        """The next matching request is processed (a POST stores), then its answer is delayed."""
        if seconds < 0:
            raise ValueError("store_then_hang: seconds must be >= 0")
        op = _check_operation(operation)
        with self._lock:
            self._store_then_hang.append((float(seconds), op))

    def expire_tokens(self) -> None:
        """Invalidate every token issued so far (their next use gets 401)."""
        with self._lock:
            self._token_generation += 1

    def allow_overlaps(self, on: bool = True) -> None:
        """Store bookings that overlap an active appointment of the same doctor (or not)."""
        with self._lock:
            self._allow_overlaps = bool(on)

    @property
    def overlaps_allowed(self) -> bool:
        """Whether overlapping bookings are accepted."""
        with self._lock:
            return self._allow_overlaps

    @property
    def token_generation(self) -> int:
        """Tokens issued under an older generation are expired."""
        with self._lock:
            return self._token_generation

    def clear(self) -> None:
        """Turn every fault off (issued tokens stay as they are)."""
        with self._lock:
            self._latency_ms = self._jitter_ms = 0.0
            self._fails.clear()
            self._hangs.clear()
            self._malformed.clear()
            self._store_then_hang.clear()
            self._bodies.clear()
            self._allow_overlaps = False

    # -- configuration by spec / JSON ---------------------------------------------------------

    def apply_spec(self, spec: str | None) -> None:
        """Apply a spec string such as `latency=150:50,fail=503:2:book` (grammar above)."""
        for apply in parse_faults_spec(spec):
            apply(self)

    def apply_json(self, data: Mapping[str, Any]) -> None:
        """Apply the JSON form (see the module docstring); ValueError on bad input."""
        if not isinstance(data, Mapping):
            raise ValueError("faults: expected a JSON object")
        unknown = set(data) - {"clear", "spec", "latency", "fail_next", "hang_next",
                               "malformed_next", "store_then_hang", "expire_tokens",
                               "allow_overlaps", *BODY_FAULT_KEYS}
        if unknown:
            raise ValueError(f"faults: unknown keys {', '.join(sorted(unknown))}")
        try:
            if data.get("clear"):
                self.clear()
            if data.get("spec"):
                self.apply_spec(str(data["spec"]))
            if "latency" in data:
                lat = data["latency"]
                if isinstance(lat, Mapping):
                    self.latency(float(lat.get("ms", 0)), float(lat.get("jitter_ms", 0)))
                else:
                    self.latency(float(lat))
            fails = data.get("fail_next")
            if fails is not None:
                for f in fails if isinstance(fails, list) else [fails]:
                    self.fail_next(int(f["status"]), f.get("times", 1), f.get("operation"),
                                   f.get("retry_after"), f.get("body"))
            if data.get("hang_next") is not None:
                h = data["hang_next"]
                self.hang_next(float(h["seconds"]), h.get("operation"))
            m = data.get("malformed_next")
            if m:
                self.malformed_next(m.get("operation") if isinstance(m, Mapping) else None)
            if data.get("store_then_hang") is not None:
                s = data["store_then_hang"]
                self.store_then_hang(float(s["seconds"]), s.get("operation"))
            if data.get("expire_tokens"):
                self.expire_tokens()
            self._apply_body_json(data)
            if "allow_overlaps" in data:
                self.allow_overlaps(bool(data["allow_overlaps"]))
        except (KeyError, TypeError) as exc:
            raise ValueError(f"faults: bad value ({exc})") from exc

    # -- body faults (a slow, huge or absurdly nested answer) -----------------------------------

    def drip_next(self, bytes_per_second: int, operation: str | None = None) -> None:
        """The next matching answer is sent `bytes_per_second` bytes a second."""
        self._add_body(BodyFault("drip", _at_least_one(bytes_per_second, "drip"),
                                 _check_operation(operation)))

    def huge_next(self, size_bytes: int, operation: str | None = None) -> None:
        """The next matching request is answered with a JSON array of `size_bytes` bytes."""
        self._add_body(BodyFault("huge", _at_least_one(size_bytes, "huge"),
                                 _check_operation(operation)))

    def nested_next(self, depth: int = 100_000, operation: str | None = None) -> None:
        """The next matching request is answered with JSON nested `depth` arrays deep."""
        self._add_body(BodyFault("nested", _at_least_one(depth, "nested"),
                                 _check_operation(operation)))

    def _add_body(self, fault: BodyFault) -> None:
        with self._lock:
            self._bodies.append(fault)

    def take_body(self, operation: str | None) -> BodyFault | None:
        """Consume the body fault that applies to one answer for `operation`, if any."""
        with self._lock:
            for i, fault in enumerate(self._bodies):
                if fault.operation is None or fault.operation == operation:
                    del self._bodies[i]
                    return fault
        return None

    def _apply_body_json(self, data: Mapping[str, Any]) -> None:
        for key, (method, field, default) in _BODY_JSON.items():
            value = data.get(key)
            if value is None:
                continue
            if not isinstance(value, Mapping):
                raise ValueError(f"faults: {key} must be an object")
            number = value.get(field, default)
            if number is None:
                raise ValueError(f"faults: {key}.{field} is required")
            getattr(self, method)(int(number), value.get("operation"))

    # -- use ----------------------------------------------------------------------------------

    def take(self, operation: str | None) -> FaultPlan:
        """Consume the faults that apply to one request for `operation` (None: unknown path)."""
        with self._lock:
            latency = self._latency_ms
            if self._jitter_ms:
                latency += self._rng.uniform(-self._jitter_ms, self._jitter_ms)
            latency_s = max(0.0, latency) / 1000.0
            for i, rule in enumerate(self._fails):
                if rule.matches(operation):
                    if rule.times is not None:
                        if rule.times <= 1:
                            del self._fails[i]
                        else:
                            self._fails[i] = FailRule(rule.status, rule.times - 1,
                                                      rule.operation, rule.retry_after,
                                                      rule.body)
                    return FaultPlan(latency_s=latency_s, fail=rule)
            hang_s = _pop_seconds(self._hangs, operation)
            malformed = False
            for i, op in enumerate(self._malformed):
                if op is None or op == operation:
                    del self._malformed[i]
                    malformed = True
                    break
            store_s = _pop_seconds(self._store_then_hang, operation)
            return FaultPlan(latency_s, None, hang_s, malformed, store_s)

    def snapshot(self) -> dict[str, Any]:
        """The current switches, JSON-ready (what `POST /_sandbox/faults` answers)."""
        with self._lock:
            return {
                "latency": {"ms": self._latency_ms, "jitter_ms": self._jitter_ms},
                "fail_next": [asdict(r) for r in self._fails],
                "hang_next": [{"seconds": s, "operation": o} for s, o in self._hangs],
                "malformed_next": [{"operation": o} for o in self._malformed],
                "store_then_hang": [{"seconds": s, "operation": o}
                                    for s, o in self._store_then_hang],
                "token_generation": self._token_generation,
                "body_faults": [asdict(b) for b in self._bodies],
                "allow_overlaps": self._allow_overlaps,
            }


@dataclass(frozen=True)
class BodyFault:
    """A pending body fault: `kind` "drip" (value: bytes a second), "huge" (value: bytes) or
    "nested" (value: depth), for `operation` (None: any)."""

    kind: str
    value: int
    operation: str | None


_BODY_JSON: dict[str, tuple[str, str, int | None]] = {
    "drip_next": ("drip_next", "bytes_per_second", None),
    "huge_next": ("huge_next", "size_bytes", None),
    "nested_next": ("nested_next", "depth", 100_000),
}
BODY_FAULT_KEYS = frozenset(_BODY_JSON)


def _at_least_one(value: int, what: str) -> int:
    number = int(value)
    if number < 1:
        raise ValueError(f"{what}: must be >= 1")
    return number


def _pop_seconds(queue: list[tuple[float, str | None]], operation: str | None) -> float:
    for i, (seconds, op) in enumerate(queue):
        if op is None or op == operation:
            del queue[i]
            return seconds
    return 0.0


def _num(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"faults: {what} must be a number, not {text!r}") from None
    if value < 0:
        raise ValueError(f"faults: {what} must be >= 0")
    return value


def _int(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"faults: {what} must be a whole number, not {text!r}") from None


def _later(method: Callable[Concatenate[Faults, _P], None], *args: _P.args,
           **kwargs: _P.kwargs) -> Callable[[Faults], None]:
    """`method` with these arguments, applied to whichever `Faults` the action is run on."""
    return lambda faults: method(faults, *args, **kwargs)


def parse_faults_spec(spec: str | None) -> tuple[Callable[[Faults], None], ...]:
    """Parse a spec string (grammar in the module docstring) into actions on a `Faults`.

    Raises ValueError("faults: ...") on anything it does not understand, so config validation
    can call it without a sandbox.
    """
    actions: list[Callable[[Faults], None]] = []
    for raw_item in (spec or "").split(","):
        item = raw_item.strip()
        if not item:
            continue
        name, _, value = item.partition("=")
        name = name.strip().lower()
        fields = [f.strip() for f in value.split(":")] if value else []
        if name == "latency":
            if not 1 <= len(fields) <= 2:
                raise ValueError(f"faults: latency=MS[:JITTER_MS], not {item!r}")
            ms = _num(fields[0], "latency ms")
            jitter = _num(fields[1], "latency jitter") if len(fields) > 1 else 0.0
            actions.append(_later(Faults.latency, ms, jitter))
        elif name == "fail":
            if not 1 <= len(fields) <= 4:
                raise ValueError(f"faults: fail=STATUS[:TIMES[:OPERATION[:RETRY_AFTER]]], "
                                 f"not {item!r}")
            status = _int(fields[0], "fail status")
            times: int | None = 1
            if len(fields) > 1 and fields[1]:
                times = None if fields[1] == "*" else _int(fields[1], "fail times")
            op = _check_operation(fields[2] if len(fields) > 2 else None)
            retry = _int(fields[3], "retry_after") if len(fields) > 3 and fields[3] else None
            Faults().fail_next(status, times, op, retry)  # validates
            actions.append(_later(Faults.fail_next, status, times, op, retry))
        elif name == "hang":
            if not 1 <= len(fields) <= 2:
                raise ValueError(f"faults: hang=SECONDS[:OPERATION], not {item!r}")
            seconds = _num(fields[0], "hang seconds")
            op = _check_operation(fields[1] if len(fields) > 1 else None)
            actions.append(_later(Faults.hang_next, seconds, op))
        elif name == "malformed":
            if len(fields) > 1:
                raise ValueError(f"faults: malformed[=OPERATION], not {item!r}")
            op = _check_operation(fields[0] if fields else None)
            actions.append(_later(Faults.malformed_next, op))
        elif name == "store_then_hang":
            if len(fields) != 2:
                raise ValueError(f"faults: store_then_hang=SECONDS:OPERATION, not {item!r}")
            seconds = _num(fields[0], "store_then_hang seconds")
            op = _check_operation(fields[1])
            actions.append(_later(Faults.store_then_hang, seconds, op))
        elif name in ("drip", "huge", "nested"):
            if len(fields) > 2 or (name != "nested" and not fields):
                raise ValueError(f"faults: {name}=NUMBER[:OPERATION], not {item!r}")
            number = _at_least_one(_int(fields[0], name), name) if fields else 100_000
            op = _check_operation(fields[1] if len(fields) > 1 else None)
            method = {"drip": Faults.drip_next, "huge": Faults.huge_next,
                      "nested": Faults.nested_next}[name]
            actions.append(_later(method, number, op))
        elif name == "expire_tokens":
            if value:
                raise ValueError("faults: expire_tokens takes no value")
            actions.append(lambda f: f.expire_tokens())
        elif name == "overlap":
            if value:
                raise ValueError("faults: overlap takes no value")
            actions.append(lambda f: f.allow_overlaps(True))
        else:
            raise ValueError(f"faults: unknown fault {name!r} (latency, fail, hang, malformed, "
                             f"store_then_hang, expire_tokens, overlap, drip, huge, nested)")
    return tuple(actions)
