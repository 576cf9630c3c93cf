"""The JSON API (`/api`) for call-centre software that integrates by HTTP instead of by page.

Same lookups and booking as the console's screen-pop (`ivr.desk`), behind API keys
(`ivr add-api-key`), sent as `Authorization: Bearer <key>` or `X-API-Key: <key>`. Every answer
is JSON; errors are `{"error": "<message>"}` with 400, 401, 404, 409 or 503. The OpenAPI 3.0
description of exactly these routes is served at `/api/openapi.json` (no key needed).

A booking Clinicea rejects as invalid (e.g. an unknown patient id) is answered 400, not 201, and
its outbox row is marked handled (the client was told; no agent needs to call anyone back). An
`Idempotency-Key` names one booking: the same key with a different doctor, time, patient or
notes is answered 409.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from flask import Blueprint, current_app, g, jsonify, make_response, request
from werkzeug.exceptions import HTTPException

from flows.booking.conversation import request_kind
from flows.clinic_services import ServiceUnavailable
from flows.domain import LastVisit, PatientRef, Slot
from ivr import desk
from ivr.accounts import api_key_scope, verify_api_key
from ivr.console.headers import add_security_headers
from ivr.outbox import REJECTED
from ivr.runtime import Runtime
from ivr.store import BookingRecord, CallbackRecord, TextRecord

log = logging.getLogger(__name__)

bp = Blueprint("api", __name__, url_prefix="/api")

PUBLIC_ENDPOINTS = {"api.openapi"}
MAX_BOOKING_ID = 2**63 - 1  # SQLite's (and PostgreSQL's BIGINT) largest integer
MAX_CLIENT_KEY = 160  # "api:<16 hex>:" + this fits the store's 200-character column
KEY_REUSED = (
    "this Idempotency-Key was already used for a different booking (doctor, time, patient or "
    "notes); send a new key for a new booking"
)


class ApiError(Exception):
    """An error answer: status and message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _runtime() -> Runtime:
    runtime: Runtime = current_app.extensions["ivr"]
    return runtime


def _presented_key() -> str | None:
    auth = request.headers.get("Authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip() or None
    return request.headers.get("X-API-Key") or None


@bp.before_request
def _authenticate() -> Any:
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    record = verify_api_key(_runtime().store, _presented_key())
    if record is None:
        response = jsonify(error="a valid API key is required (Authorization: Bearer <key>)")
        response.status_code = 401
        response.headers["WWW-Authenticate"] = 'Bearer realm="clinic-ivr"'
        return response
    g.api_key_name = record.name
    g.api_key_scope = api_key_scope(record)
    return None


@bp.after_request
def _headers(response: Any) -> Any:
    return add_security_headers(response)


@bp.errorhandler(ApiError)
def _api_error(exc: ApiError) -> Any:
    return jsonify(error=exc.message), exc.status


@bp.errorhandler(desk.DeskError)
def _desk_error(exc: desk.DeskError) -> Any:
    return jsonify(error=exc.message), exc.status


@bp.errorhandler(ServiceUnavailable)
def _unavailable(exc: ServiceUnavailable) -> Any:
    return jsonify(error=desk.UNAVAILABLE_LOOKUP), 503


@bp.errorhandler(HTTPException)
def _http_error(exc: HTTPException) -> Any:
    return jsonify(error=exc.description or exc.name), exc.code or 500


@bp.app_errorhandler(404)
@bp.app_errorhandler(405)
def _unrouted(exc: HTTPException) -> Any:
    """A path under /api that matches no route never reaches the blueprint's handlers: answer
    JSON there too; elsewhere keep Flask's own page."""
    if request.path == bp.url_prefix or request.path.startswith(f"{bp.url_prefix}/"):
        return add_security_headers(make_response(_http_error(exc)))
    return exc


# --------------------------------------------------------------------------- JSON shapes


def _patient(p: PatientRef) -> dict[str, Any]:
    return {
        "id": p.id,
        "first_name": p.first_name,
        "last_name": p.last_name,
        "date_of_birth": p.date_of_birth.isoformat() if p.date_of_birth else None,
    }


def _visit(v: LastVisit | None) -> dict[str, Any] | None:
    if v is None:
        return None
    return {
        "start": v.start.isoformat(timespec="minutes"),
        "doctor_id": v.doctor_id,
        "doctor_name": v.doctor_name,
        "service_name": v.service_name,
        "clinic": None if v.clinic is None else {
            "id": v.clinic.id, "name": v.clinic.name, "address": v.clinic.address,
            "phone": v.clinic.phone,
        },
    }


def _slot(s: Slot) -> dict[str, Any]:
    return {"doctor_id": s.doctor_id, "start": s.start.strftime(desk.START_FORMAT),
            "minutes": s.minutes}


def _booking(record: BookingRecord) -> dict[str, Any]:
    payload = record.payload  # None: an unreadable row, shown with what it has
    return {
        "id": record.id,
        "idempotency_key": record.idempotency_key,
        "status": record.status,
        "appointment_id": record.appointment_id,
        "patient_id": record.patient_id or (payload.patient_id if payload else None),
        "doctor_id": payload.doctor_id if payload else None,
        "start": payload.start.strftime(desk.START_FORMAT) if payload else "",
        "failure_reason": record.failure_reason,
        "text": _text(_runtime().store.get_text(record.idempotency_key)),
    }


def _desk_request(record: CallbackRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "kind": request_kind(record.reason),
        "created_at": record.created_at.isoformat(timespec="seconds") + "Z",
        "phone": record.phone_e164,
        "reason": record.reason,
        "call_sid": record.call_sid,
    }


def _text(text: TextRecord | None) -> dict[str, Any] | None:
    """The confirmation text's state (None: no text for this booking); never its number."""
    if text is None:
        return None
    return {"status": text.status, "attempts": text.attempts, "error": text.last_error,
            "twilio_sid": text.twilio_sid}


def _same_request(
    record: BookingRecord, *, doctor_id: str, start: Any, patient_id: str | None,
    patient: desk.NewPatient | None, notes: str,
) -> bool:
    """Whether a stored booking is the one this request asks for (what desk.book would store)."""
    payload = record.payload
    if payload is None:
        return False
    want = {
        "doctor_id": doctor_id,
        "start": start.replace(second=0, microsecond=0, tzinfo=None),
        "patient_id": patient_id if patient is None else None,
        "first_name": patient.first_name if patient else None,
        "last_name": patient.last_name if patient else None,
        "phone_e164": patient.phone.e164 if patient else None,
        "notes": notes.strip(),
    }
    return all((getattr(payload, k) or None) == (v or None) for k, v in want.items())


def _rejection(record: BookingRecord | None) -> str | None:
    """Clinicea's reason when it refused this booking as invalid, else None."""
    if record is None or record.status not in ("failed", "handled"):
        return None
    reason = record.failure_reason or ""
    return reason[len(REJECTED):] or "no reason given" if reason.startswith(REJECTED) else None


# --------------------------------------------------------------------------- routes


@bp.get("/caller")
def caller() -> Any:
    """Patients on a mobile number, the first one's (or `patient_id`'s) last completed visit."""
    services = _runtime().services
    lookup = desk.lookup_caller(services, request.args.get("mobile"),
                                request.args.get("patient_id") or None)
    chosen = lookup.selected or (lookup.patients[0] if lookup.patients else None)
    visit = lookup.last_visit
    if chosen is not None and lookup.selected is None:
        visit = services.last_visit(chosen.id)
    return jsonify(
        mobile=lookup.phone.e164,
        patients=[_patient(p) for p in lookup.patients],
        patient_id=chosen.id if chosen else None,
        last_visit=_visit(visit),
        clinic={"name": services.profile.name,
                "sites": [{"id": s.id, "name": s.name, "address": s.address, "phone": s.phone}
                          for s in services.profile.sites]},
        doctors=[{"id": d.id, "name": d.name, "clinic_id": d.clinic_id}
                 for d in services.profile.doctors],
    )


@bp.get("/slots")
def slots() -> Any:
    """Free times of one doctor on one day (the phone's slot rules)."""
    services = _runtime().services
    doctor_id = request.args.get("doctor_id")
    day = desk.parse_day(request.args.get("day"))
    free = desk.free_slots(services, doctor_id, day)
    return jsonify(doctor_id=doctor_id, day=day.isoformat(), slots=[_slot(s) for s in free])


@bp.get("/requests")
def desk_requests() -> Any:
    """Open requests for the desk from calls: callbacks and cancellations, oldest first."""
    rows = _runtime().store.callbacks("open", limit=200)
    return jsonify(requests=[_desk_request(r) for r in rows])


@bp.post("/bookings")
def create_booking() -> Any:
    """Book for a patient id, or register a new patient (with consent) and book."""
    services = _runtime().services
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError(400, "the body must be a JSON object")
    doctor_id = body.get("doctor_id")
    if not isinstance(doctor_id, str) or not doctor_id:
        raise ApiError(400, "doctor_id is required")
    start_text = body.get("start")
    if not isinstance(start_text, str):
        raise ApiError(400, "start is required (YYYY-MM-DDTHH:MM)")
    start = desk.parse_start(start_text)
    notes = body.get("notes") or ""
    if not isinstance(notes, str):
        raise ApiError(400, "notes must be a string")
    patient_id = body.get("patient_id")
    new = body.get("new_patient")
    if patient_id is not None and new is not None:
        raise ApiError(400, "give patient_id or new_patient, not both")
    patient = None
    if patient_id is not None:
        if not isinstance(patient_id, str) or not patient_id:
            raise ApiError(400, "patient_id must be a non-empty string")
    elif isinstance(new, dict):
        fields = ("first_name", "last_name", "mobile")
        if any(new.get(f) is not None and not isinstance(new.get(f), str) for f in fields):
            raise ApiError(400, "new_patient fields must be strings")
        patient = desk.new_patient(services, new.get("first_name"), new.get("last_name"),
                                   new.get("mobile"), new.get("consent") is True)
    else:
        raise ApiError(400, "patient_id or new_patient is required")
    client_key = request.headers.get("Idempotency-Key")
    if client_key is not None and (
        not desk.valid_key(client_key) or len(client_key) > MAX_CLIENT_KEY
    ):
        raise ApiError(
            400, f"Idempotency-Key may hold letters, digits and :._- (up to {MAX_CLIENT_KEY})"
        )
    # Scoped by the API key itself, never by its name's spelling: a client's retry must find
    # its booking again (a random key here would answer 409 "no longer free" to the retry).
    key = f"api:{g.api_key_scope}:{client_key}" if client_key else f"api:{uuid.uuid4()}"
    store = _runtime().store
    earlier = store.get_booking(key)
    if earlier is not None:
        if not _same_request(earlier, doctor_id=doctor_id, start=start, patient_id=patient_id,
                             patient=patient, notes=notes):
            raise ApiError(409, KEY_REUSED)
        _raise_if_rejected(earlier)
    outcome = desk.book(services, key=key, doctor_id=doctor_id, start=start,
                        patient_id=patient_id, patient=patient, notes=notes)
    record = store.get_booking(key)
    log.info("API booking %s by key %s: %s", key, g.api_key_name, outcome.status)
    _raise_if_rejected(record)
    body_out = _booking(record) if record is not None else {"idempotency_key": key}
    body_out["status"] = record.status if record is not None else outcome.status
    if outcome.status == "recorded":
        body_out["message"] = desk.RECORDED
    return jsonify(body_out), 201


def _raise_if_rejected(record: BookingRecord | None) -> None:
    """400 when Clinicea refused the booking as invalid; its row leaves the agents' outbox."""
    reason = _rejection(record)
    if record is None or reason is None:
        return
    if record.status == "failed":
        _runtime().store.mark_handled(record.idempotency_key, f"api:{g.api_key_name}"[:100])
    log.info("API booking %s: Clinicea refused it, answered 400", record.idempotency_key)
    raise ApiError(400, f"Clinicea refused the booking: {reason}")


@bp.get("/bookings/<path:booking_id>")
def get_booking(booking_id: str) -> Any:
    """A booking by outbox id (ASCII digits) or idempotency key."""
    store = _runtime().store
    if booking_id.isascii() and booking_id.isdigit():  # not "²": str.isdigit() accepts it
        number = int(booking_id)
        record = store.get_booking(number) if number <= MAX_BOOKING_ID else None
    else:
        record = store.get_booking(booking_id)
    if record is None:
        raise ApiError(404, "no such booking")
    return jsonify(_booking(record))


def _reminder(item: desk.DeskReminder) -> dict[str, Any]:
    """A reminder for the API: never the full number (the masked one only)."""
    r = item.record
    return {
        "key": r.key,
        "day": r.day.isoformat(),
        "first_name": r.first_name or "",
        "phone_masked": r.phone_masked or "",
        "appointments": [{"id": a.id, "start": a.start.strftime(desk.START_FORMAT),
                          "doctor_id": a.doctor_id} for a in item.appointments],
        "channel": r.channel,
        "status": r.status,
        "answered_by": r.answered_by,
        "reply": r.reply,
        "note": r.last_error,
        "updated_at": r.updated_at.isoformat(timespec="seconds") + "Z",
        "handled_by": r.handled_by,
    }


@bp.get("/reminders")
def reminders() -> Any:
    """Appointment reminders (`day`, `status` optional): the desk's statuses first."""
    day_text = request.args.get("day")
    day = desk.parse_day(day_text) if day_text is not None else None
    status = desk.parse_status(request.args.get("status"))
    found = desk.desk_reminders(_runtime().store, day, status)
    return jsonify(reminders=[_reminder(r) for r in found.reminders], counts=found.counts)


@bp.post("/reminders/<path:key>/handled", merge_slashes=False)
def reminder_handled(key: str) -> Any:
    """The desk acted on a reminder's answer: 404 unknown, 409 already handled."""
    store = _runtime().store
    marked = store.mark_reminder_handled(key, f"api:{g.api_key_name}"[:100])
    found = desk.find_reminder(store, key)
    if found is None:
        raise ApiError(404, "no such reminder")
    if not marked:
        raise ApiError(409, "already marked handled")
    log.info("reminder %s marked handled by API key %s", key, g.api_key_name)
    return jsonify(_reminder(found))


@bp.get("/openapi.json")
def openapi() -> Any:
    """The OpenAPI 3.0 description of this API."""
    from ivr.openapi import document

    return jsonify(document())
