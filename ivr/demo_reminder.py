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
from dataclasses import replace
from datetime import date, datetime, time
from typing import TextIO

from flows.reminders.plan import reminder_key
from flows.reminders.status import FOR_THE_DESK
from ivr import desk
from ivr.config import ReminderSettings, Settings
from ivr.reminders import ReminderRun, reminder_url, status_url
from ivr.runtime import Runtime
from ivr.simulator import Call, TwilioSimulator

#: The appointment the demo books for Bilal: Dr. Farooq, at this hour or the last free time.
DEMO_HOUR = 16
DEMO_BOOKING_KEY = "demo:reminder"


def with_reminders(settings: Settings) -> Settings:
    """The settings with the clinic's `[reminders]`, or the defaults (calls then texts, in
    the clinic's hours) when its clinic file has none, as the demo clinic's has not."""
    if settings.clinic.reminders is not None:
        return settings
    clinic = settings.clinic
    defaults = ReminderSettings(at=time(10, 0), calling_hours=clinic.hours,
                                language=clinic.language)
    return replace(settings, clinic=replace(clinic, reminders=defaults))


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


def take_reminder_call(rt: Runtime, phone: TwilioSimulator, *, day: date,
                       read: Callable[[str], str] = input, out: TextIO = sys.stdout) -> Call:
    """Plan `day`, place Bilal's reminder call as the send pass would, and let the person at
    the terminal answer it (`ivr.softphone.answer`)."""
    from ivr import softphone
    from ivr.sandbox.seed import DEMO_PATIENTS

    bilal = DEMO_PATIENTS["Bilal Ahmed"]
    # The day's run as the worker runs it, minus Twilio: the demo places Bilal's call itself.
    run = ReminderRun(rt.client, rt.store, rt.clock, rt.settings.clinic, sms=None, calls=None,
                      public_url=None, worker_id="demo")
    plan = run.plan(day)
    run.write(plan)
    reasons = Counter(s.reason for s in plan.skipped)
    skipped = ", ".join(f"{n} {reason}" for reason, n in sorted(reasons.items()))
    out.write(f"Planned {len(plan.reminders)} reminder(s) for {day:%A %d %B}"
              f"{f' (not reminded: {skipped})' if skipped else ''}.\n")
    key = reminder_key(day, bilal.id, bilal.e164)
    sid = phone.new_sid()
    # What the send pass does around Twilio's Calls.create: claim, then record the call's SID.
    rt.store.set_reminder_status(key, "sending", channel="call")
    rt.store.reminder_sent(key, "call", sid)
    call = softphone.answer(phone, reminder_url(phone.base_url, key), bilal.e164,
                            status_callback=status_url(phone.base_url, key), call_sid=sid,
                            read=read, out=out)
    record = rt.store.get_reminder(key)
    if record is not None:
        out.write(f"The desk's Reminders page now shows Bilal's reminder as: {record.status}"
                  f"{' (for the desk to act on)' if record.status in FOR_THE_DESK else ''}.\n")
    return call
