"""The OpenAPI 3.0 document of `/api` (served at `/api/openapi.json`).

Written by hand as a dict; `tests/test_api.py` checks that its paths are exactly the
routes the app serves under `/api` and validates it when `openapi-spec-validator` is installed.
"""

from __future__ import annotations

from typing import Any

from flows.reminders.status import FOR_THE_DESK, STATUSES

VERSION = "1.0.0"


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _ok(description: str, schema: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
    }


UNAUTHORIZED = {"$ref": "#/components/responses/Unauthorized"}
UNAVAILABLE = {"$ref": "#/components/responses/Unavailable"}
BAD_REQUEST = {"$ref": "#/components/responses/BadRequest"}

_DATETIME_MINUTES = {
    "type": "string",
    "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}$",
    "example": "2026-11-24T11:20",
    "description": "Clinic-local wall time, to the minute (no time zone).",
}


def document() -> dict[str, Any]:
    """The whole document (a fresh dict each time)."""
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "clinic-ivr agent API",
            "version": VERSION,
            "description": (
                "Caller lookup and booking in Clinicea for call-centre software: the same "
                "patient search, last completed visit, free-slot rules and booking outbox as "
                "the phone IVR and the console's screen-pop. Times are clinic-local. Errors "
                "are JSON objects with an `error` message."
            ),
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}, {"apiKey": []}],
        "paths": {
            "/api/caller": {
                "get": {
                    "operationId": "lookupCaller",
                    "summary": "Patients on a mobile number, last completed visit, the clinic",
                    "parameters": [
                        {
                            "name": "mobile", "in": "query", "required": True,
                            "schema": {"type": "string", "example": "0321 6315551"},
                            "description": "Any common format; national numbers are read in "
                                           "the clinic's region.",
                        },
                        {
                            "name": "patient_id", "in": "query", "required": False,
                            "schema": {"type": "string"},
                            "description": "Which of several patients on the number to show "
                                           "the last visit of (default: the first).",
                        },
                    ],
                    "responses": {
                        "200": _ok("The caller", "Caller"),
                        "400": BAD_REQUEST,
                        "401": UNAUTHORIZED,
                        "503": UNAVAILABLE,
                    },
                }
            },
            "/api/slots": {
                "get": {
                    "operationId": "freeSlots",
                    "summary": "Free times of a doctor on a day",
                    "parameters": [
                        {"name": "doctor_id", "in": "query", "required": True,
                         "schema": {"type": "string",
                                    "example": "7a2d3b1f-4c8e-4d2b-8f30-1b2c3d4e5f01"}},
                        {"name": "day", "in": "query", "required": True,
                         "schema": {"type": "string", "format": "date",
                                    "example": "2026-11-24"}},
                    ],
                    "responses": {
                        "200": _ok("Free slots, earliest first", "Slots"),
                        "400": BAD_REQUEST,
                        "401": UNAUTHORIZED,
                        "503": UNAVAILABLE,
                    },
                }
            },
            "/api/bookings": {
                "post": {
                    "operationId": "createBooking",
                    "summary": "Book for a patient, or register a new patient (with consent) "
                               "and book",
                    "parameters": [
                        {
                            "name": "Idempotency-Key", "in": "header", "required": False,
                            "schema": {"type": "string", "maxLength": 160},
                            "description": "Sending the same key again with the same body "
                                           "returns the same booking instead of a second "
                                           "one; the same key with a different doctor, "
                                           "start, patient or notes is answered 409.",
                        }
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {
                            "schema": {"$ref": "#/components/schemas/BookingRequest"}}},
                    },
                    "responses": {
                        "201": _ok(
                            "Booked (status `booked`), or recorded in the outbox because "
                            "Clinicea did not answer in time (status `pending`/`retrying`; it "
                            "is booked as soon as Clinicea answers)", "Booking"),
                        "400": _error(
                            "Malformed request (the message says what is wrong), a `start` "
                            "in the past, no consent to register a new patient, or Clinicea "
                            "refused the booking as invalid, e.g. an unknown `patient_id` "
                            "(the message starts \"Clinicea refused the booking\"; nothing "
                            "was booked)"),
                        "401": UNAUTHORIZED,
                        "409": _error(
                            "The time is not free (not one of the doctor's free slots, or "
                            "taken meanwhile), or the Idempotency-Key was already used for a "
                            "different booking"),
                        "503": UNAVAILABLE,
                    },
                }
            },
            "/api/bookings/{booking_id}": {
                "get": {
                    "operationId": "getBooking",
                    "summary": "A booking by its id or its idempotency key",
                    "parameters": [
                        {"name": "booking_id", "in": "path", "required": True,
                         "schema": {"type": "string"}},
                    ],
                    "responses": {
                        "200": _ok("The booking", "Booking"),
                        "401": UNAUTHORIZED,
                        "404": _error("No such booking"),
                    },
                }
            },
            "/api/requests": {
                "get": {
                    "operationId": "deskRequests",
                    "summary": "Open requests from calls for the desk: callbacks and "
                               "cancellations (no public Clinicea call cancels), oldest first",
                    "responses": {
                        "200": _ok("Open requests", "DeskRequests"),
                        "401": UNAUTHORIZED,
                    },
                }
            },
            "/api/reminders": {
                "get": {
                    "operationId": "reminders",
                    "summary": "Appointment reminders and the patients' answers: the desk's "
                               "statuses first (" + ", ".join(FOR_THE_DESK) + "), then by "
                               "first appointment",
                    "parameters": [
                        {"name": "day", "in": "query", "required": False,
                         "schema": {"type": "string", "format": "date",
                                    "example": "2026-11-24"},
                         "description": "The appointments' day (default: every day kept)."},
                        {"name": "status", "in": "query", "required": False,
                         "schema": {"type": "string", "enum": list(STATUSES)},
                         "description": "Only reminders in this status."},
                    ],
                    "responses": {
                        "200": _ok("The reminders", "Reminders"),
                        "400": BAD_REQUEST,
                        "401": UNAUTHORIZED,
                    },
                }
            },
            "/api/reminders/{key}/handled": {
                "post": {
                    "operationId": "reminderHandled",
                    "summary": "The desk acted on a reminder's answer (called the patient, "
                               "moved or cancelled the appointment)",
                    "parameters": [
                        {"name": "key", "in": "path", "required": True,
                         "schema": {"type": "string", "example": "2026-11-24/p:1234"},
                         "description": "The reminder's key (its `/` may be sent as is or "
                                        "as %2F)."},
                    ],
                    "responses": {
                        "200": _ok("Marked handled", "Reminder"),
                        "401": UNAUTHORIZED,
                        "404": _error("No such reminder"),
                        "409": _error("Already marked handled"),
                    },
                }
            },
            "/api/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "summary": "This document",
                    "security": [],
                    "responses": {"200": {"description": "The OpenAPI document",
                                          "content": {"application/json": {
                                              "schema": {"type": "object"}}}}},
                }
            },
        },
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer",
                           "description": "An API key from `ivr add-api-key`."},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            },
            "responses": {
                "BadRequest": _error("Malformed request (the message says what is wrong)"),
                "Unauthorized": _error("Missing or wrong API key"),
                "Unavailable": _error("Clinicea is not answering; try again in a minute"),
            },
            "schemas": {
                "Error": {
                    "type": "object", "required": ["error"],
                    "properties": {"error": {"type": "string"}},
                },
                "Patient": {
                    "type": "object", "required": ["id", "first_name", "last_name"],
                    "properties": {
                        "id": {"type": "string"},
                        "first_name": {"type": "string"},
                        "last_name": {"type": "string"},
                        "date_of_birth": {"type": "string", "format": "date", "nullable": True},
                    },
                },
                "Site": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "string"},
                        "name": {"type": "string"},
                        "address": {"type": "string"},
                        "phone": {"type": "string", "nullable": True},
                    },
                },
                "Visit": {
                    "type": "object", "nullable": True,
                    "properties": {
                        "start": _DATETIME_MINUTES,
                        "doctor_id": {"type": "string", "nullable": True},
                        "doctor_name": {"type": "string"},
                        "service_name": {"type": "string", "nullable": True},
                        "clinic": {
                            "nullable": True,
                            "allOf": [{"$ref": "#/components/schemas/Site"}],
                        },
                    },
                },
                "Caller": {
                    "type": "object",
                    "required": ["mobile", "patients", "last_visit", "clinic", "doctors"],
                    "properties": {
                        "mobile": {"type": "string", "example": "+923216315551"},
                        "patients": {"type": "array",
                                     "items": {"$ref": "#/components/schemas/Patient"}},
                        "patient_id": {"type": "string", "nullable": True},
                        "last_visit": {"$ref": "#/components/schemas/Visit"},
                        "clinic": {
                            "type": "object",
                            "properties": {
                                "name": {"type": "string"},
                                "sites": {"type": "array",
                                          "items": {"$ref": "#/components/schemas/Site"}},
                            },
                        },
                        "doctors": {
                            "type": "array",
                            "items": {"type": "object", "properties": {
                                "id": {"type": "string"}, "name": {"type": "string"},
                                "clinic_id": {"type": "string"}}},
                        },
                    },
                },
                "Slots": {
                    "type": "object",
                    "properties": {
                        "doctor_id": {"type": "string"},
                        "day": {"type": "string", "format": "date"},
                        "slots": {"type": "array", "items": {
                            "type": "object",
                            "properties": {
                                "doctor_id": {"type": "string"},
                                "start": _DATETIME_MINUTES,
                                "minutes": {"type": "integer"},
                            },
                        }},
                    },
                },
                "DeskRequests": {
                    "type": "object",
                    "properties": {"requests": {"type": "array", "items": {
                        "type": "object",
                        "required": ["id", "kind", "created_at"],
                        "properties": {
                            "id": {"type": "integer"},
                            "kind": {"type": "string", "enum": ["callback", "cancel"]},
                            "created_at": {"type": "string", "format": "date-time",
                                           "description": "UTC"},
                            "phone": {"type": "string", "nullable": True},
                            "reason": {"type": "string", "nullable": True,
                                       "description": "A cancellation names the appointment "
                                                      "id and its start."},
                            "call_sid": {"type": "string", "nullable": True},
                        },
                    }}},
                },
                "Reminder": {
                    "type": "object",
                    "required": ["key", "day", "first_name", "phone_masked", "appointments",
                                 "status"],
                    "properties": {
                        "key": {"type": "string", "example": "2026-11-24/p:1234"},
                        "day": {"type": "string", "format": "date"},
                        "first_name": {"type": "string"},
                        "phone_masked": {"type": "string", "example": "+92*******551"},
                        "appointments": {"type": "array", "items": {
                            "type": "object",
                            "required": ["id", "start"],
                            "properties": {
                                "id": {"type": "string"},
                                "start": _DATETIME_MINUTES,
                                "doctor_id": {"type": "string", "nullable": True},
                            },
                        }},
                        "channel": {"type": "string", "nullable": True,
                                    "enum": ["call", "sms", None],
                                    "description": "The channel that reached the patient "
                                                   "(or is about to); null: none yet."},
                        "status": {"type": "string", "enum": list(STATUSES)},
                        "answered_by": {"type": "string", "nullable": True,
                                        "description": "Twilio's AnsweredBy of the call "
                                                       "(human, machine_..., unknown)."},
                        "reply": {"type": "string", "nullable": True,
                                  "description": "The patient's last text, as received."},
                        "note": {"type": "string", "nullable": True,
                                 "description": "Why it failed, or what the desk should "
                                                "check."},
                        "updated_at": {"type": "string", "format": "date-time",
                                       "description": "UTC"},
                        "handled_by": {"type": "string", "nullable": True},
                    },
                },
                "Reminders": {
                    "type": "object",
                    "required": ["reminders", "counts"],
                    "properties": {
                        "reminders": {"type": "array",
                                      "items": {"$ref": "#/components/schemas/Reminder"}},
                        "counts": {"type": "object",
                                   "additionalProperties": {"type": "integer"},
                                   "description": "Reminders per status (of the day asked "
                                                  "for, whatever the status filter)."},
                    },
                },
                "NewPatient": {
                    "type": "object",
                    "required": ["first_name", "last_name", "mobile", "consent"],
                    "properties": {
                        "first_name": {"type": "string", "maxLength": 100},
                        "last_name": {"type": "string", "maxLength": 100},
                        "mobile": {"type": "string"},
                        "consent": {
                            "type": "boolean", "enum": [True],
                            "description": "The caller agreed to be registered; without it "
                                           "the answer is 400 and nothing is created.",
                        },
                    },
                },
                "BookingRequest": {
                    "type": "object",
                    "required": ["doctor_id", "start"],
                    "description": "Exactly one of patient_id and new_patient.",
                    "properties": {
                        "doctor_id": {"type": "string"},
                        "start": _DATETIME_MINUTES,
                        "patient_id": {"type": "string"},
                        "new_patient": {"$ref": "#/components/schemas/NewPatient"},
                        "notes": {"type": "string", "maxLength": 500},
                    },
                },
                "Booking": {
                    "type": "object",
                    "required": ["id", "idempotency_key", "status"],
                    "properties": {
                        "id": {"type": "integer"},
                        "idempotency_key": {"type": "string"},
                        "status": {"type": "string", "enum": [
                            "pending", "booking", "booked", "retrying", "failed", "handled"]},
                        "appointment_id": {"type": "string", "nullable": True},
                        "patient_id": {"type": "string", "nullable": True},
                        "doctor_id": {"type": "string"},
                        "start": _DATETIME_MINUTES,
                        "failure_reason": {"type": "string", "nullable": True},
                        "message": {"type": "string"},
                        "text": {
                            "type": "object", "nullable": True,
                            "description": "The confirmation text of a booking made by a "
                                           "call (null: none). failed and unknown need an "
                                           "agent: unknown was never resent, as Twilio may "
                                           "have sent it.",
                            "properties": {
                                "status": {"type": "string", "enum": [
                                    "waiting", "sending", "sent", "retrying", "failed",
                                    "unknown"]},
                                "attempts": {"type": "integer"},
                                "error": {"type": "string", "nullable": True},
                                "twilio_sid": {"type": "string", "nullable": True},
                            },
                        },
                    },
                },
            },
        },
    }
