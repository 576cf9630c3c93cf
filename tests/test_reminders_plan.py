"""Reminder planning (pure): who is reminded, once each, and when calls may be placed."""

from __future__ import annotations

from datetime import date, datetime, time

import pytest

from flows.domain import WeeklyHours
from flows.reminders.plan import (
    DayAppointment,
    call_times,
    first_channel,
    parse_channels,
    plan_day,
    reminder_from_json,
    reminder_to_json,
    sms_after_call,
)

DAY = date(2026, 11, 24)
NOW = datetime(2026, 11, 23, 10, 0)
BILAL, SANA = "+923216315551", "+923001112223"


def appt(aid: str, hour: int, *, status: str | None = "Scheduled", patient: str | None = "P1",
         mobile: str | None = BILAL, name: str = "Bilal Ahmed") -> DayAppointment:
    return DayAppointment(aid, datetime.combine(DAY, time(hour)), status, patient, name, mobile,
                          doctor_id="D1", doctor_name="Dr. Nadia Farooq")


def test_only_scheduled_and_confirmed_appointments_are_reminded():
    rows = [appt("A1", 9), appt("A2", 10, status="Cancelled", patient="P2"),
            appt("A3", 11, status="No Show", patient="P3"),
            appt("A4", 12, status="Check Out", patient="P4"),
            appt("A5", 13, status="Arrived", patient="P5"),
            appt("A6", 14, status="confirmed", patient="P6", mobile=SANA, name="Sana Khan")]
    plan = plan_day(DAY, rows, channels=["sms"], now=NOW)
    assert [r.first.id for r in plan.reminders] == ["A1", "A6"]
    assert {s.appointment_id: s.reason for s in plan.skipped} == {
        "A2": "status Cancelled", "A3": "status No Show", "A4": "status Check Out",
        "A5": "status Arrived"}


def test_a_patient_with_two_appointments_gets_one_reminder_naming_both():
    plan = plan_day(DAY, [appt("A2", 16), appt("A1", 10)], channels=["call", "sms"], now=NOW)
    [reminder] = plan.reminders
    assert [a.id for a in reminder.appointments] == ["A1", "A2"]  # in time order
    assert reminder.key == "2026-11-24/p:P1" and reminder.first_name == "Bilal"
    assert reminder.item_keys == ("2026-11-24/a:A1", "2026-11-24/a:A2")


def test_without_a_patient_id_appointments_are_grouped_by_mobile():
    rows = [appt("A1", 9, patient=None), appt("A2", 11, patient=None),
            appt("A3", 12, patient=None, mobile=SANA)]
    plan = plan_day(DAY, rows, channels=["sms"], now=NOW)
    assert [(r.key, len(r.appointments)) for r in plan.reminders] == [
        (f"2026-11-24/m:{BILAL}", 2), (f"2026-11-24/m:{SANA}", 1)]


def test_planning_again_gives_the_same_keys_so_a_restart_neither_skips_nor_repeats():
    rows = [appt("A1", 9), appt("A2", 10, patient="P2", mobile=SANA)]
    first = plan_day(DAY, rows, channels=["sms"], now=NOW)
    again = plan_day(DAY, list(reversed(rows)), channels=["sms"], now=NOW)
    assert [r.key for r in first.reminders] == [r.key for r in again.reminders]
    # a row listed twice (Clinicea's pages overlapping) is one appointment
    doubled = plan_day(DAY, [*rows, rows[0]], channels=["sms"], now=NOW)
    assert [len(r.appointments) for r in doubled.reminders] == [1, 1]


def test_no_mobile_started_and_opted_out_are_not_sent():
    rows = [appt("A1", 12, mobile=None, patient="P9"), appt("A2", 10, patient="P2", mobile=SANA),
            appt("A3", 11)]
    plan = plan_day(DAY, rows, channels=["call"], now=datetime.combine(DAY, time(10, 30)),
                    opted_out={BILAL})
    assert {s.appointment_id: s.reason for s in plan.skipped} == {
        "A1": "no mobile", "A2": "already started"}
    [reminder] = plan.reminders
    assert reminder.status == "opted_out" and reminder.channels == ()


def test_the_stored_form_reads_back_the_same_reminder():
    [reminder] = plan_day(DAY, [appt("A1", 9), appt("A2", 15)], channels=["sms", "call"],
                          now=NOW).reminders
    assert reminder_from_json(reminder_to_json(reminder)) == reminder


def test_channels_call_first_and_text_when_no_person_was_reached():
    assert parse_channels(["SMS", "call"]) == ("call", "sms")
    with pytest.raises(ValueError, match="whatsapp"):
        parse_channels(["whatsapp"])
    assert first_channel(("call", "sms")) == "call" and first_channel(("sms",)) == "sms"
    assert sms_after_call(("call", "sms"), "no-answer", None)
    assert sms_after_call(("call", "sms"), "busy", None)
    assert sms_after_call(("call", "sms"), "completed", "machine_end_beep")
    assert not sms_after_call(("call", "sms"), "completed", "human")
    assert not sms_after_call(("call",), "no-answer", None)


HOURS = WeeklyHours({1: ((time(9), time(12)), (time(14), time(18)))})  # Tuesdays only


def test_calls_are_paced_to_one_a_second_inside_calling_hours():
    start = datetime.combine(DAY, time(8, 59, 58))
    times = call_times(3, start=start, hours=HOURS, per_second=1)
    assert times == [datetime.combine(DAY, time(9, 0, s)) for s in (0, 1, 2)]
    # the lunch gap is skipped, and nothing is placed after the day's calling hours
    late = call_times(2, start=datetime.combine(DAY, time(11, 59, 59)), hours=HOURS)
    assert late == [datetime.combine(DAY, time(11, 59, 59)), datetime.combine(DAY, time(14))]
    assert call_times(2, start=datetime.combine(DAY, time(17, 59, 59)), hours=HOURS) == [
        datetime.combine(DAY, time(17, 59, 59)), None]


def test_a_higher_rate_starts_that_many_calls_in_one_second():
    start = datetime.combine(DAY, time(9))
    times = call_times(5, start=start, hours=HOURS, per_second=2)
    assert [t.second for t in times if t] == [0, 0, 1, 1, 2]
    slow = call_times(2, start=start, hours=HOURS, per_second=0.5)
    assert [t.second for t in slow if t] == [0, 2]
