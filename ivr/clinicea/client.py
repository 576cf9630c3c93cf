"""`CliniceaClient`: the five Clinicea operations over HTTP, with login, retries and deadlines.

Only this package speaks HTTP to Clinicea. Every public method returns typed values from
`ivr.clinicea.models` or raises one of the errors in `ivr.clinicea.errors`; no httpx exception
and no raw dict leaves it.

How a call runs:

- **Budget.** One call (one page, for `appointments_on`) takes at most `budget` seconds (5 by
  default) including waiting for the login, the retries and a re-login: each attempt's httpx
  timeouts are clamped to what is left.
- **Login.** The token is shared by all threads and renewed after `token_ttl`
  (`ivr.clinicea.auth`). On a 401 the client logs in once more and re-sends; a second 401, or
  a 401 from the login itself, is `CliniceaAuthError`. (Re-sending a POST after a 401 is safe:
  Clinicea refused it before doing anything.)
- **Retries (GET only).** Connection errors, timeouts, 429 and 503 are retried at most
  `max_retries` times, waiting `Retry-After` seconds when the server says so and it fits the
  budget, a short backoff otherwise.
- **Writes are never sent twice.** A POST that could not connect is `CliniceaUnavailable`
  (nothing was sent); a POST that was sent and then timed out, lost its connection, or got a
  5xx other than 503 is `CliniceaOutcomeUnknown` (it may be stored: look before re-sending).
  429 and 503 on a POST are `CliniceaUnavailable`: the server refused to process it.
- **Answers.** 204 (or an empty body) means "nothing found". A GET answer that is not JSON or
  lacks a required field is `CliniceaUnavailable` (the server is broken, not our request). A
  POST that got 2xx succeeded even if its body cannot be read: the IDs are then None.
- **Totals, not per-read timeouts.** httpx's timeouts bound each read, so a server dripping
  its answer a byte at a time would never trip them: the body is streamed and the call's
  deadline is checked between chunks, and a body over `MAX_BODY_BYTES` (1 MB) is not read
  further. Either is `CliniceaUnavailable` (a write: `CliniceaOutcomeUnknown`, it was sent).
  The deadline is overrun by at most one read wait (each read's timeout is clamped to what
  was left when the attempt started).
- **Query strings** are built here, not by httpx: datetimes keep literal colons
  (`appointmentDateTime=2025-03-04T10:20:00`), which Clinicea requires.
"""

from __future__ import annotations

import contextvars
import json
import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import date
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx

from ivr.clinicea.auth import DEFAULT_TOKEN_TTL, Credentials, TokenCache, TokenFile
from ivr.clinicea.endpoints import Endpoint, merge_endpoints
from ivr.clinicea.errors import (
    CliniceaAuthError,
    CliniceaOutcomeUnknown,
    CliniceaRejected,
    CliniceaUnavailable,
)
from ivr.clinicea.models import (
    DEFAULT_COMPLETED_STATUSES,
    Appointment,
    AppointmentRequest,
    BookingResult,
    NewPatientRequest,
    Patient,
    ResponseFormatError,
    Visit,
    format_date,
    format_datetime,
    parse_booking,
    parse_token,
)
from ivr.plaintext import clean

if TYPE_CHECKING:
    from ivr.phone import PhoneNumber

__all__ = ["DEFAULT_BUDGET", "DEFAULT_TIMEOUT", "CliniceaClient", "RequestHook"]

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = httpx.Timeout(5.0, connect=2.0)
DEFAULT_BUDGET = 5.0
PAGE_SIZE = 100
MAX_PAGES = 50  # 5,000 appointments in a day: more means the server ignores pageNo.
_BACKOFF = (0.2, 0.5)
MAX_BODY_BYTES = 1_000_000  # no Clinicea answer we use is near this; 5 MB would be read today
_MIN_ATTEMPT_TIME = 0.05  # no point starting an attempt with less time than this left
# A caller's own time limit (monotonic seconds on the client's clock), set by `within`.
_caller_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "clinicea_caller_deadline", default=None)
_RETRY_STATUSES = frozenset({429, 503})
# Errors raised before any byte of the request left: a POST that hit one was not sent.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)



class _BodyRefused(Exception):
    """The answer's body came too slowly (past the deadline) or was too large to read."""

    def __init__(self, reason: str, label: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.label = label  # what the metrics hook records for the attempt


RequestHook = Callable[[str, float, "int | str"], None]
"""`on_request(operation, seconds, status_or_error)`: called after every HTTP attempt with the
status code, or the httpx exception's class name when no answer came."""


class CliniceaClient:
    """Talks to one Clinicea organisation as one staff user; safe to share between threads.

    `http` is the seam: production passes the client `from_settings` builds; tests pass one
    on `httpx.MockTransport`, respx, or the embedded sandbox's URL. `endpoints` overrides
    the operation table (`ivr.clinicea.endpoints`). `monotonic` and `sleep` are injectable so
    tests control token expiry and retry waits.

    `counters` counts HTTP requests attempted per operation name, logins included.
    """

    def __init__(
        self,
        http: httpx.Client,
        credentials: Credentials,
        *,
        endpoints: Mapping[str, Endpoint | Mapping[str, Any]] | None = None,
        token_ttl: float = DEFAULT_TOKEN_TTL,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        budget: float = DEFAULT_BUDGET,
        max_retries: int = 2,
        completed_statuses: Iterable[str] = DEFAULT_COMPLETED_STATUSES,
        on_request: RequestHook | None = None,
        shared_token: TokenFile | None = None,
    ) -> None:
        self._http = http
        self._credentials = credentials
        self._endpoints = merge_endpoints(endpoints)
        self._monotonic = monotonic
        self._sleep = sleep
        self._budget = budget
        self._max_retries = max_retries
        self._completed = frozenset(completed_statuses)
        self._on_request = on_request
        self._tokens = TokenCache(self._login, ttl=token_ttl, monotonic=monotonic,
                                  shared=shared_token)
        self._counter_lock = threading.Lock()
        self.counters: Counter[str] = Counter()

    @classmethod
    def from_settings(
        cls, settings: Any, base_url: str | None = None, **options: Any
    ) -> CliniceaClient:
        """The production client for `settings` (an `ivr.config.Settings`).

        `base_url` wins over `settings.clinicea_base_url` (the app passes the embedded
        sandbox's URL when none is configured). `options` go to the constructor;
        `share_token=True` shares the login token with the host's other processes (a
        `TokenFile` keyed by base URL and username).
        """
        url = base_url or settings.clinicea_base_url
        if not url:
            raise ValueError("clinicea_base_url: not set and no base_url given")
        if options.pop("share_token", False):
            options.setdefault("shared_token",
                               TokenFile("\n".join((url.rstrip("/"),
                                                     settings.clinicea_username,
                                                     settings.clinicea_api_key))))
        clinic = getattr(settings, "clinic", None)
        options.setdefault("endpoints", getattr(clinic, "endpoints", None) or None)
        http = httpx.Client(
            base_url=url,
            timeout=DEFAULT_TIMEOUT,
            headers={"Accept": "application/json"},
            follow_redirects=False,
        )
        credentials = Credentials(
            api_key=settings.clinicea_api_key,
            username=settings.clinicea_username,
            password=settings.clinicea_password,
        )
        return cls(http, credentials, **options)

    def close(self) -> None:
        """Close the underlying HTTP client."""
        self._http.close()

    def __enter__(self) -> CliniceaClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- the operations ---------------------------------------------------------------------

    def search_patients(self, phone: PhoneNumber) -> list[Patient]:
        """Every patient registered on `phone` (several for a family); [] when none."""
        payload = self._get_json(
            "search", {"mobile": phone.national, "country_code": phone.country_prefix}
        )
        return self._parse("search", Patient.list_from_api, payload)

    def past_completed_visits(self, patient_id: str) -> list[Visit]:
        """The patient's completed visits, newest first; [] when none.

        Cancelled, no-show and other non-completed rows are dropped (see `completed_statuses`).
        """
        payload = self._get_json("past_visits", {"patient_id": patient_id})
        return self._parse(
            "past_visits", lambda p: Visit.completed_from_api(p, self._completed), payload
        )

    def upcoming_appointments(self, patient_id: str) -> list[Appointment]:
        """The patient's upcoming appointments, soonest first, cancelled and no-show left out.

        One page of 10 (`appointmentType=0`): a caller asks for the next one, not a list.
        """
        payload = self._get_json(
            "patient_appointments",
            {"patient_id": patient_id, "type": "0", "page_no": "1", "page_size": "10"},
        )
        rows = self._parse("patient_appointments", Appointment.list_from_api, payload)
        return sorted((a for a in rows if a.is_active), key=lambda a: a.start)

    def appointments_on(self, day: date) -> list[Appointment]:
        """Every appointment on `day` (all statuses; see `Appointment.is_active`), all pages.

        Pages of 100 are read until a short page or a 204.
        """
        found: list[Appointment] = []
        for page in range(1, MAX_PAGES + 1):
            payload = self._get_json(
                "appointments_by_date",
                {"date": format_date(day), "page_no": str(page), "page_size": str(PAGE_SIZE)},
            )
            rows = self._parse("appointments_by_date", Appointment.list_from_api, payload)
            found.extend(rows)
            if len(rows) < PAGE_SIZE:
                return found
        raise CliniceaUnavailable(f"more than {MAX_PAGES} pages", operation="appointments_by_date")

    def book_for_patient(self, req: AppointmentRequest) -> BookingResult:
        """Book an existing patient. Sent at most once; see the module docstring for errors.

        A 400 such as "The selected slot is not available" is `CliniceaRejected`.
        """
        values = {"patient_id": req.patient_id, **_appointment_values(req)}
        result = self._post("book", values)
        return BookingResult(result.appointment_id, result.patient_id or req.patient_id)

    def book_new_patient(self, req: NewPatientRequest) -> BookingResult:
        """Register a new patient on `req.mobile` and book them, in one call. Sent at most once."""
        values = {
            "first_name": req.first_name,
            "last_name": req.last_name,
            "mobile": req.mobile.national,
            "mobile_country_code": req.mobile.country_prefix,
            **_appointment_values(req),
        }
        return self._post("register_and_book", values)

    # --- login -------------------------------------------------------------------------------

    def _login(self, deadline: float | None) -> str:
        creds = self._credentials
        values = {"api_key": creds.api_key, "username": creds.username, "password": creds.password}
        if deadline is None:
            deadline = self._deadline()
        response = self._exchange("login", values, token=None, deadline=deadline)
        if response.status_code == 401:
            raise CliniceaAuthError("credentials refused", operation="login", status=401)
        self._raise_for_status("login", response, write=False)
        try:
            return parse_token(_json_or_none(response))
        except (ValueError, ResponseFormatError) as exc:
            raise CliniceaUnavailable(
                "unreadable login answer", operation="login", status=response.status_code
            ) from exc

    # --- one call: token, attempts, re-login -------------------------------------------------

    @contextmanager
    def within(self, seconds: float) -> Iterator[None]:
        """Calls made in this block (this thread) end within `seconds` from now, on top of each
        call's own budget: a caller's time limit, such as what is left of a webhook's. Past it a
        call raises `CliniceaUnavailable`, as for any other timeout."""
        token = _caller_deadline.set(self._monotonic() + seconds)
        try:
            yield
        finally:
            _caller_deadline.reset(token)

    def _deadline(self) -> float:
        """The end of one call: its own budget, or the caller's limit if that comes first."""
        deadline = self._monotonic() + self._budget
        cap = _caller_deadline.get()
        return deadline if cap is None else min(deadline, cap)

    def _call(self, operation: str, values: Mapping[str, str]) -> httpx.Response:
        """Send `operation` with a token; re-login once on 401. Returns a 2xx response."""
        deadline = self._deadline()
        token = self._tokens.get(deadline)
        response = self._exchange(operation, values, token=token, deadline=deadline)
        if response.status_code == 401:
            log.info("clinicea %s: token refused, logging in again", operation)
            self._tokens.invalidate(token)
            token = self._tokens.get(deadline)
            response = self._exchange(operation, values, token=token, deadline=deadline)
            if response.status_code == 401:
                raise CliniceaAuthError(
                    "token refused after a fresh login", operation=operation, status=401
                )
        self._raise_for_status(operation, response, write=self._is_write(operation))
        return response

    def _get_json(self, operation: str, values: Mapping[str, str]) -> Any:
        response = self._call(operation, values)
        try:
            return _json_or_none(response)
        except ValueError as exc:
            raise CliniceaUnavailable(
                "answer is not JSON", operation=operation, status=response.status_code
            ) from exc

    def _post(self, operation: str, values: Mapping[str, str]) -> BookingResult:
        response = self._call(operation, values)
        try:
            payload = _json_or_none(response)
        except ValueError:
            # The write succeeded (2xx); failing now would invite a second booking.
            log.warning("clinicea %s: booked, but the answer is not JSON", operation)
            payload = None
        return parse_booking(payload)

    def _parse(self, operation: str, parse: Callable[[Any], Any], payload: Any) -> Any:
        try:
            return parse(payload)
        except ResponseFormatError as exc:
            raise CliniceaUnavailable(str(exc), operation=operation, status=200) from exc
        except (ValueError, TypeError, AttributeError, KeyError, RecursionError) as exc:
            # Any other surprise in the answer's shape is still a broken answer, not a crash.
            raise CliniceaUnavailable(f"unreadable answer ({type(exc).__name__})",
                                      operation=operation, status=200) from None

    def _is_write(self, operation: str) -> bool:
        return self._endpoints[operation].method != "GET"

    def _exchange(
        self, operation: str, values: Mapping[str, str], *, token: str | None, deadline: float
    ) -> httpx.Response:
        """Send one request, retrying GETs on transient faults. Returns any final response."""
        endpoint = self._endpoints[operation]
        write = endpoint.method != "GET"
        url = _url(endpoint, values, token)
        attempt = 0
        while True:
            remaining = deadline - self._monotonic()
            if remaining < _MIN_ATTEMPT_TIME:
                raise CliniceaUnavailable("out of time", operation=operation)
            try:
                response = self._attempt(operation, endpoint.method, url, remaining)
            except _BodyRefused as exc:
                # Not retried: the deadline is spent, or the same answer would come again.
                if write:
                    raise CliniceaOutcomeUnknown(f"sent, then {exc.reason}",
                                                 operation=operation) from None
                raise CliniceaUnavailable(exc.reason, operation=operation) from None
            except httpx.TransportError as exc:
                if write and not isinstance(exc, _NOT_SENT):
                    raise CliniceaOutcomeUnknown(
                        f"sent, then {_error_name(exc)}", operation=operation
                    ) from exc
                if write or attempt >= self._max_retries:
                    raise CliniceaUnavailable(_error_name(exc), operation=operation) from exc
                delay = _backoff(attempt)
                last: httpx.Response | Exception = exc
            else:
                if write or response.status_code not in _RETRY_STATUSES:
                    return response
                if attempt >= self._max_retries:
                    return response
                after = _retry_after(response)
                delay = after if after is not None else _backoff(attempt)
                last = response
            if self._monotonic() + delay + _MIN_ATTEMPT_TIME > deadline:
                # Waiting would overrun the budget: give up now rather than late.
                if isinstance(last, httpx.Response):
                    return last
                raise CliniceaUnavailable(_error_name(last), operation=operation) from last
            log.info("clinicea %s: retrying in %.2fs", operation, delay)
            self._sleep(delay)
            attempt += 1

    def _attempt(self, operation: str, method: str, url: str, remaining: float) -> httpx.Response:
        """One HTTP request with its timeouts clamped to the remaining budget."""
        timeout = _clamp(self._http.timeout, remaining)
        request = self._http.build_request(method, url, timeout=timeout)
        with self._counter_lock:
            self.counters[operation] += 1
        started = time.perf_counter()
        deadline = self._monotonic() + remaining
        outcome: int | str = "error"
        try:
            response = self._http.send(request, stream=True)
            try:
                body = self._read_body(response, deadline)
            finally:
                response.close()
            outcome = response.status_code
            return _with_body(response, body)
        except _BodyRefused as exc:
            outcome = exc.label
            raise
        except httpx.HTTPError as exc:
            outcome = _error_name(exc)
            raise
        finally:
            self._report(operation, time.perf_counter() - started, outcome)

    def _read_body(self, response: httpx.Response, deadline: float) -> bytes:
        """The whole body, within `deadline` and `MAX_BODY_BYTES` (else `_BodyRefused`)."""
        declared = response.headers.get("Content-Length", "")
        too_large = _BodyRefused(f"answer larger than {MAX_BODY_BYTES} bytes", "BodyTooLarge")
        if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            raise too_large
        chunks: list[bytes] = []
        size = 0
        try:
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > MAX_BODY_BYTES:
                    raise too_large
                chunks.append(chunk)
                if self._monotonic() > deadline:
                    raise _BodyRefused("answer came too slowly (out of time)", "SlowBody")
        except httpx.DecodingError:
            raise _BodyRefused("answer could not be decoded", "DecodingError") from None
        return b"".join(chunks)

    def _report(self, operation: str, seconds: float, outcome: int | str) -> None:
        if self._on_request is None:
            return
        try:
            self._on_request(operation, seconds, outcome)
        except Exception:
            # A broken metrics hook must not fail a caller's booking.
            log.exception("clinicea on_request hook failed")

    def _raise_for_status(self, operation: str, response: httpx.Response, *, write: bool) -> None:
        status = response.status_code
        if 200 <= status < 300:
            return
        if status == 401:
            raise CliniceaAuthError("credentials refused", operation=operation, status=status)
        if status in _RETRY_STATUSES:
            raise CliniceaUnavailable("busy or unavailable", operation=operation, status=status)
        if status >= 500:
            if write:
                raise CliniceaOutcomeUnknown(
                    "server error after the write was sent", operation=operation, status=status
                )
            raise CliniceaUnavailable("server error", operation=operation, status=status)
        if 400 <= status < 500:
            raise CliniceaRejected(
                "request refused", operation=operation, status=status, message=_message(response)
            )
        raise CliniceaUnavailable("unexpected answer", operation=operation, status=status)


# --- helpers ---------------------------------------------------------------------------------


def _appointment_values(req: AppointmentRequest | NewPatientRequest) -> dict[str, str]:
    return {
        "start": format_datetime(req.start),
        "doctor_id": req.doctor_id,
        "clinic_id": req.clinic_id,
        "service_id": req.service_id,
        "notes": req.notes or "",
    }


def _url(endpoint: Endpoint, values: Mapping[str, str], token: str | None) -> str:
    """Path and query string, built by hand so ':' stays literal (Clinicea rejects %3A)."""
    pairs = dict(values)
    if token is not None:
        pairs["token"] = token
    query = "&".join(
        f"{quote(endpoint.wire(name), safe='')}={quote(value, safe=':')}"
        for name, value in pairs.items()
    )
    return f"{endpoint.path}?{query}" if query else endpoint.path


def _clamp(timeout: httpx.Timeout, remaining: float) -> httpx.Timeout:
    def cap(value: float | None) -> float:
        return remaining if value is None else min(value, remaining)

    return httpx.Timeout(
        connect=cap(timeout.connect),
        read=cap(timeout.read),
        write=cap(timeout.write),
        pool=cap(timeout.pool),
    )


def _with_body(response: httpx.Response, body: bytes) -> httpx.Response:
    """A read response: `body` (already decoded) under the original status and headers."""
    headers = [(k, v) for k, v in response.headers.multi_items()
               if k.lower() not in ("content-encoding", "content-length", "transfer-encoding")]
    return httpx.Response(response.status_code, headers=headers, content=body,
                          request=response.request)


def _backoff(attempt: int) -> float:
    """The wait before retry `attempt`, jittered: a host's threads hit by one 503 must not all
    come back at the same instant (they did, in lockstep, at 0.2 s then 0.5 s)."""
    base = _BACKOFF[min(attempt, len(_BACKOFF) - 1)]
    return random.uniform(base / 2, base)


def _retry_after(response: httpx.Response) -> float | None:
    """`Retry-After` in seconds; None when absent or an HTTP date (we then back off briefly)."""
    value = response.headers.get("Retry-After", "").strip()
    try:
        seconds = float(value)
    except ValueError:
        return None
    return max(0.0, seconds)


def _json_or_none(response: httpx.Response) -> Any:
    """The JSON body; None for 204 or an empty body. Raises ValueError when it is not JSON."""
    if response.status_code == 204 or not response.content.strip():
        return None
    try:
        return json.loads(response.content)
    except RecursionError:
        # Nested deeper than the parser goes: unreadable, like any other broken JSON.
        raise ValueError("JSON nested too deeply") from None


def _message(response: httpx.Response) -> str:
    """The server's explanation of a 4xx: plain text, or a JSON body's message field."""
    text = clean(response.text).strip()
    try:
        body = json.loads(text)
    except (ValueError, RecursionError):
        return text[:500]
    if isinstance(body, str):
        return body[:500]
    if isinstance(body, dict):
        for key in ("Message", "message", "error"):
            if isinstance(body.get(key), str):
                return body[key][:500]
    return text[:500]


def _error_name(exc: BaseException) -> str:
    # The class name ("ReadTimeout") says what happened; str(exc) might carry the URL.
    return type(exc).__name__
