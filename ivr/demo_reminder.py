"""`ivr demo --reminder`: the clinic calls the newcomer with an appointment reminder.

In the demo sandbox, Bilal Ahmed (the demo's returning patient) is booked an appointment with
Dr. Farooq on the sandbox's next open day (the seed has none for him), that day's reminders are
planned as the day's run plans them, and Bilal's reminder call is placed as the send pass
would: the row goes `sending`, Twilio's SID is recorded, and the softphone answers the outbound
call Twilio would make to `/voice/reminder/<key>` (`Direction=outbound-api`,
`AnsweredBy=human`), with its status callback. Nothing leaves the process: no Twilio, no
Clinicea.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Callable
from datetime import date, datetime
from typing import TextIO
from urllib.parse import quote

from flows.reminders.plan import DayAppointment, plan_day, reminder_key
from flows.reminders.status import FOR_THE_DESK
from ivr import desk
from ivr.phone import parse_phone
from ivr.runtime import Runtime
from ivr.simulator import Call, TwilioSimulator

#: The appointment the demo books for Bilal: Dr. Farooq, at this hour or the last free time.
DEMO_HOUR = 16
DEMO_BOOKING_KEY = "demo:reminder"


def book_bilal(rt: Runtime, day: date) -> datetime:
    """Book Bilal with Dr. Farooq on `day` (at 16:00 or the last free time before it)."""
    from ivr.sandbox.seed import DEMO_DOCTOR_FAROOQ_ID, DEMO_PATIENTS

    bilal = DEMO_PATIENTS["Bilal Ahmed"]
    slots = desk.free_slots(rt.services, DEMO_DOCTOR_FAROOQ_ID, day)
    if not slots:
        raise RuntimeError(f"Dr. Farooq has no free time on {day} in the sandbox")
    later = [s for s in slots if s.start.hour >= DEMO_HOUR]
    slot = later[0] if later else slots[-1]
    desk.book(rt.services, key=DEMO_BOOKING_KEY, doctor_id=DEMO_DOCTOR_FAROOQ_ID,
              start=slot.start, patient_id=bilal.id, patient=None, notes="reminder demo")
    return slot.start


def day_appointments(rt: Runtime, day: date) -> list[DayAppointment]:
    """The sandbox calendar of `day` as the planner reads it (mobiles normalised)."""
    region = rt.settings.clinic.default_region
    rows = []
    for a in rt.client.appointments_on(day):
        phone = parse_phone(a.patient_mobile, region)
        rows.append(DayAppointment(
            id=a.id, start=a.start, status=a.status, patient_id=a.patient_id,
            patient_name=a.patient_name or "", mobile=phone.e164 if phone else None,
            doctor_id=a.doctor_id, doctor_name=a.doctor_name or ""))
    return rows


def take_reminder_call(rt: Runtime, phone: TwilioSimulator, *, day: date,
                       read: Callable[[str], str] = input, out: TextIO = sys.stdout) -> Call:
    """Plan `day`, place Bilal's reminder call as the send pass would, and let the person at
    the terminal answer it (`ivr.softphone.answer`)."""
    from ivr import softphone
    from ivr.sandbox.seed import DEMO_PATIENTS

    bilal = DEMO_PATIENTS["Bilal Ahmed"]
    settings = rt.settings.clinic.reminders
    channels = settings.channels if settings else ("call", "sms")
    plan = plan_day(day, day_appointments(rt, day), channels=channels, now=rt.clock.now(),
                    opted_out=rt.store.opted_out([bilal.e164]))
    rt.store.plan_reminders(plan)
    reasons = Counter(s.reason for s in plan.skipped)
    skipped = ", ".join(f"{n} {reason}" for reason, n in sorted(reasons.items()))
    out.write(f"Planned {len(plan.reminders)} reminder(s) for {day:%A %d %B}"
              f"{f' (not reminded: {skipped})' if skipped else ''}.\n")
    key = reminder_key(day, bilal.id, bilal.e164)
    sid = phone.new_sid()
    # What the send pass does around Twilio's Calls.create: claim, then record the call's SID.
    rt.store.set_reminder_status(key, "sending", channel="call")
    rt.store.reminder_sent(key, "call", sid)
    url = f"/voice/reminder/{quote(key, safe='')}"
    call = softphone.answer(phone, url, bilal.e164, status_callback=f"{url}/status",
                            call_sid=sid, read=read, out=out)
    record = rt.store.get_reminder(key)
    if record is not None:
        out.write(f"The desk's Reminders page now shows Bilal's reminder as: {record.status}"
                  f"{' (for the desk to act on)' if record.status in FOR_THE_DESK else ''}.\n")
    return call
