"""The sandbox Clinicea's HTTP face: the wire format of docs/design.md, plus `/_sandbox/` admin.

Clinicea operations (every one but login needs `api_key`: a token from login, or the raw API
key, as a query parameter or an `api_key` / `Api-Key` header):

- login: `GET /api/v2/login/getTokenByStaffUsernamePwd?apiKey=&loginUserName=&pwd=`
- search: `GET /api/v2/patients/searchPatientByMobileNumber?patmobile=&countrycode=%2B92`
- past_visits: `GET /api/v2/appointments/getPatientPastCompletedAppointment?patientID=`
- patient_appointments: `GET /api/v2/appointments/getAppointmentsByPatient?patientID=
  &appointmentType=0&pageNo=&pageSize=` (upcoming rows of the patient, soonest first, every
  status)
- appointments_by_date: `GET /api/v3/appointments/getAppointmentsByDate?appointmentDate=
  &pageNo=&pageSize=`
- book: `POST /api/v2/appointments/postAppointmentByPatientID?patientID=&appointmentDateTime=
  &staffID=&clinicID=&serviceID=&notes=` (query parameters only, no body)
- register_and_book: `POST /api/v2/appointments/postAppointment?firstName=&lastName=&mobile=
  &mobileCountryCode=&appointmentDateTime=&staffID=&clinicID=&serviceID=&notes=`

Answers: JSON (PascalCase) on 200, empty 204 when nothing is found, plain text on every error.
`getPatientPastCompletedAppointment` deliberately returns *all* past rows of the patient, oldest
first, every status (cancelled and no-show included): the client must filter and sort.

Strict mode (default) also refuses: an encoded colon (`%3A`) in `appointmentDateTime`, a missing
`countrycode` on search, missing `pageNo`/`pageSize`. Datetimes must be `YYYY-MM-DDTHH:mm:ss`
and dates `YYYY-MM-DD` in both modes.

Admin API (sandbox only, **no token needed**, never faulted, not in the request log):

- `POST /_sandbox/faults`: JSON fault switches (see `ivr.sandbox.faults`); answers the switches.
- `GET /_sandbox/faults`: the current switches.
- `GET /_sandbox/appointments[?date=YYYY-MM-DD]`: the calendar as appointment rows.
- `GET /_sandbox/patients`: every patient object.
- `GET /_sandbox/requests`: the request log (method, path, operation, status, query, at).
- `POST /_sandbox/reset`: back to the seed; no tokens, faults or log.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import asdict
from datetime import date, datetime
from typing import Any

from flask import Flask, Response, g, request
from werkzeug.exceptions import HTTPException

from ivr.sandbox.faults import BodyFault, FaultPlan
from ivr.sandbox.state import WIRE_DATETIME, RequestRecord, SandboxError, SandboxState

PATHS: dict[str, tuple[str, str]] = {
    "login": ("GET", "/api/v2/login/getTokenByStaffUsernamePwd"),
    "search": ("GET", "/api/v2/patients/searchPatientByMobileNumber"),
    "past_visits": ("GET", "/api/v2/appointments/getPatientPastCompletedAppointment"),
    "patient_appointments": ("GET", "/api/v2/appointments/getAppointmentsByPatient"),
    "appointments_by_date": ("GET", "/api/v3/appointments/getAppointmentsByDate"),
    "book": ("POST", "/api/v2/appointments/postAppointmentByPatientID"),
    "register_and_book": ("POST", "/api/v2/appointments/postAppointment"),
}
"""Operation name -> (method, path) served by the sandbox."""

MALFORMED_BODY = '[{"ID": "3f2a", "StartDateTime": "2025-01-0'
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$")
_SECRET_PARAMS = {"api_key", "apikey", "pwd"}


def _text(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    return Response(message, status=status, mimetype="text/plain", headers=headers)


def _json(value: Any, status: int = 200) -> Response:
    return Response(json.dumps(value), status=status, mimetype="application/json")


def _list(rows: list[dict[str, Any]]) -> Response:
    return _json(rows) if rows else Response(status=204)


def _arg(name: str, *, required: bool = True) -> str:
    value = request.args.get(name)
    if value is None or (required and not value.strip()):
        if required:
            raise SandboxError(400, f"{name} is required.")
        return ""
    return value


def _masked_query() -> str:
    parts = []
    for part in request.query_string.decode("latin-1").split("&"):
        key, sep, _ = part.partition("=")
        parts.append(f"{key}=***" if sep and key.lower() in _SECRET_PARAMS else part)
    return "&".join(p for p in parts if p)


def _parse_date(value: str, name: str) -> date:
    if not _DATE_RE.match(value):
        raise SandboxError(400, f"{name} must be in the format YYYY-MM-DD.")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise SandboxError(400, f"{name} is not a valid date.") from None


def _parse_start(state: SandboxState, name: str = "appointmentDateTime") -> datetime:
    if state.strict:
        for part in request.query_string.split(b"&"):
            key, _, raw = part.partition(b"=")
            if key.decode("latin-1").lower() == name.lower() and b"%3a" in raw.lower():
                raise SandboxError(400, "Encoded colons are not accepted")
    value = _arg(name)
    if not _DATETIME_RE.match(value):
        raise SandboxError(400, f"{name} must be in the format YYYY-MM-DDTHH:mm:ss.")
    try:
        return datetime.strptime(value, WIRE_DATETIME)
    except ValueError:
        raise SandboxError(400, f"{name} is not a valid date and time.") from None


def _paging(state: SandboxState, name: str, minimum: int, default: int) -> int:
    raw = request.args.get(name)
    if raw is None or not raw.strip():
        if state.strict:
            raise SandboxError(400, f"{name} is required.")
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SandboxError(400, f"{name} must be a whole number.") from None
    if value < minimum:
        raise SandboxError(400, f"{name} must be at least {minimum}")
    return value


def _faulty_body(fault: BodyFault, response: Response,
                 sleep: Callable[[float], None]) -> Response:
    """The answer as a body fault makes it: dripped, replaced by a huge or a nested one."""
    if fault.kind == "huge":
        item = '{"ID": "x"},'
        count = max(fault.value // len(item), 1)
        return Response("[" + item * (count - 1) + '{"ID": "x"}]', status=200,
                        mimetype="application/json")
    if fault.kind == "nested":
        return Response("[" * fault.value + "]" * fault.value, status=200,
                        mimetype="application/json")
    body = response.get_data()
    pause = 1.0 / fault.value

    def drip() -> Iterator[bytes]:
        for i in range(len(body)):  # byte by byte: every read is quick, the whole is not
            sleep(pause)
            yield body[i:i + 1]

    # No Content-Length: the body goes out chunk by chunk as it is produced.
    return Response(drip(), status=response.status_code, headers={
        k: v for k, v in response.headers.items() if k.lower() != "content-length"})


def create_sandbox_app(state: SandboxState) -> Flask:
    """The Flask app serving `state` in Clinicea's wire format (plus the admin API)."""
    app = Flask("ivr.sandbox")
    app.config["SANDBOX_STATE"] = state

    def login() -> Response:
        token = state.login(_arg("apiKey", required=False), _arg("loginUserName", required=False),
                            _arg("pwd", required=False))
        return _json(token)

    def search() -> Response:
        patmobile = _arg("patmobile")
        countrycode = request.args.get("countrycode")
        if state.strict and not (countrycode or "").strip():
            raise SandboxError(400, "countrycode is required.")
        return _list(state.search_patients(patmobile, countrycode))

    def past_visits() -> Response:
        return _list(state.past_visits(_arg("patientID")))

    def patient_appointments() -> Response:
        # appointmentType=0: upcoming appointments (every status; the client drops cancelled).
        _arg("appointmentType")
        page_no = _paging(state, "pageNo", 1, 1)
        page_size = _paging(state, "pageSize", 10, 100)
        rows = state.upcoming_appointments(_arg("patientID"))
        return _list(rows[(page_no - 1) * page_size: page_no * page_size])

    def appointments_by_date() -> Response:
        day = _parse_date(_arg("appointmentDate"), "appointmentDate")
        page_no = _paging(state, "pageNo", 1, 1)
        page_size = _paging(state, "pageSize", 10, 100)
        rows = state.appointments_on(day)
        return _list(rows[(page_no - 1) * page_size: page_no * page_size])

    def _common() -> tuple[datetime, str, str, str, str]:
        start = _parse_start(state)
        return (start, _arg("staffID"), _arg("clinicID"), _arg("serviceID"),
                _arg("notes", required=False))

    def book() -> Response:
        patient_id = _arg("patientID")
        start, staff, clinic, service, notes = _common()
        appt_id, pid = state.book(patient_id, start, staff, clinic, service, notes)
        return _json({"AppointmentID": appt_id, "PatientID": pid})

    def register_and_book() -> Response:
        first, last = _arg("firstName"), _arg("lastName", required=False)
        mobile = _arg("mobile")
        # A raw "+92" in a query string decodes to " 92": accept it, store "+92".
        cc = _arg("mobileCountryCode", required=state.strict) or "+92"
        start, staff, clinic, service, notes = _common()
        appt_id, pid = state.register_and_book(first, last, mobile, cc, start, staff, clinic,
                                               service, notes)
        return _json({"AppointmentID": appt_id, "PatientID": pid})

    views = {"login": login, "search": search, "past_visits": past_visits,
             "patient_appointments": patient_appointments,
             "appointments_by_date": appointments_by_date, "book": book,
             "register_and_book": register_and_book}
    for op, (method, path) in PATHS.items():
        app.add_url_rule(path, endpoint=op, view_func=views[op], methods=[method])

    @app.before_request
    def _before() -> Response | None:
        g.admin = request.path.startswith("/_sandbox/")
        g.operation = request.endpoint if request.endpoint in PATHS else None
        g.plan = FaultPlan()
        if g.admin:
            return None
        plan = g.plan = state.faults.take(g.operation)
        if plan.latency_s:
            state.faults.sleep(plan.latency_s)
        if plan.fail is not None:
            retry_after = plan.retry_after_header
            return _text(plan.fail.status, plan.fail.body,
                         {"Retry-After": retry_after} if retry_after else None)
        if plan.hang_s:
            state.faults.sleep(plan.hang_s)
        if g.operation not in (None, "login"):
            key = request.args.get("api_key") or request.headers.get("api_key")
            state.authenticate(key)
        return None

    @app.after_request
    def _after(response: Response) -> Response:
        if getattr(g, "admin", True):
            return response
        plan: FaultPlan = g.plan
        if plan.malformed:
            response = Response(MALFORMED_BODY, status=200, mimetype="application/json")
        if plan.store_then_hang_s:
            state.faults.sleep(plan.store_then_hang_s)
        body_fault = state.faults.take_body(g.operation)
        if body_fault is not None:
            response = _faulty_body(body_fault, response, state.faults.sleep)
        state.log_request(RequestRecord(
            at=state.clock.now().strftime(WIRE_DATETIME), method=request.method,
            path=request.path, operation=g.operation, status=response.status_code,
            query=_masked_query()))
        return response

    @app.errorhandler(SandboxError)
    def _refused(exc: SandboxError) -> Response:
        return _text(exc.status, exc.message)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        return _text(exc.code or 500, exc.description or exc.name)

    @app.errorhandler(Exception)
    def _crash(exc: Exception) -> Response:  # pragma: no cover - a sandbox bug
        app.logger.exception("sandbox error")
        return _text(500, "An error has occurred.")

    # -- admin: sandbox only, no token --------------------------------------------------------

    @app.post("/_sandbox/faults")
    def admin_set_faults() -> Response:
        data = request.get_json(silent=True)
        if data is None:
            return _text(400, "expected a JSON object")
        try:
            state.faults.apply_json(data)
        except ValueError as exc:
            return _text(400, str(exc))
        return _json(state.faults.snapshot())

    @app.get("/_sandbox/faults")
    def admin_get_faults() -> Response:
        return _json(state.faults.snapshot())

    @app.get("/_sandbox/appointments")
    def admin_appointments() -> Response:
        raw = request.args.get("date")
        day = _parse_date(raw, "date") if raw else None
        return _json(state.calendar(day))

    @app.get("/_sandbox/patients")
    def admin_patients() -> Response:
        return _json(state.patients())

    @app.get("/_sandbox/requests")
    def admin_requests() -> Response:
        return _json([asdict(r) for r in state.requests()])

    @app.post("/_sandbox/reset")
    def admin_reset() -> Response:
        state.reset()
        return _json({"reset": True})

    return app
