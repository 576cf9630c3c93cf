"""What a booking in the outbox carries: the typed value the store writes and reads.

`BookingRecord.payload` (ivr/store/records.py) is a `BookingPayload`, stored as JSON in the bookings
table. A stored row whose JSON cannot be read back as one (written by other code, edited by
hand, truncated) comes back with ``payload=None`` instead of failing the read: the console still
lists and shows the row, and the outbox marks it failed for agents ("unreadable booking
payload"). Here, not in ivr/outbox.py, so the store can use it without importing the outbox.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class BookingPayload:
    """Everything needed to send the booking to Clinicea later.

    `patient_id` None means register a new patient (`first_name`, `last_name`, `phone_e164`).
    `start` is naive clinic-local.
    """

    doctor_id: str
    start: datetime
    patient_id: str | None
    clinic_id: str
    service_id: str
    first_name: str = ""
    last_name: str = ""
    phone_e164: str | None = None
    notes: str = ""
    call_sid: str | None = None

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (what the store writes)."""
        return {
            "doctor_id": self.doctor_id,
            "start": self.start.isoformat(timespec="seconds"),
            "patient_id": self.patient_id,
            "clinic_id": self.clinic_id,
            "service_id": self.service_id,
            "first_name": self.first_name,
            "last_name": self.last_name,
            "phone_e164": self.phone_e164,
            "notes": self.notes,
            "call_sid": self.call_sid,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> BookingPayload:
        """Read a stored payload; raises KeyError/ValueError/TypeError when it is unusable."""
        if not isinstance(data, Mapping):
            raise TypeError(f"a booking payload is a JSON object, not {type(data).__name__}")
        return cls(
            doctor_id=str(data["doctor_id"]),
            start=datetime.fromisoformat(str(data["start"])),
            patient_id=_text_or_none(data.get("patient_id")),
            clinic_id=str(data.get("clinic_id") or ""),
            service_id=str(data.get("service_id") or ""),
            first_name=str(data.get("first_name") or ""),
            last_name=str(data.get("last_name") or ""),
            phone_e164=_text_or_none(data.get("phone_e164")),
            notes=str(data.get("notes") or ""),
            call_sid=_text_or_none(data.get("call_sid")),
        )

    def dumps(self) -> str:
        """The JSON text the store keeps."""
        return json.dumps(self.to_json(), separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def loads(cls, text: str | None) -> BookingPayload | None:
        """A stored payload read back; None when the text is not a readable payload."""
        try:
            return cls.from_json(json.loads(text or ""))
        except (KeyError, TypeError, ValueError):  # JSONDecodeError is a ValueError
            return None


def _text_or_none(value: Any) -> str | None:
    return str(value) if value else None
