"""The facts prompts may mention, computed from the call's data in the caller's language.

Prompt templates in `flows/lang/` name these fields ("{first_name}", "{when}"); this module is
the one place that turns the call's `BookingFrame` into speakable words.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

from flows import menus
from flows.booking.frame import frame_of

if TYPE_CHECKING:
    from flows.engine import Turn


def common_facts(turn: Turn) -> dict[str, object]:
    """Fields every prompt may use."""
    data = frame_of(turn)
    lang = turn.lang
    today = turn.today
    profile = turn.profile
    facts: dict[str, object] = {"clinic": profile.name}
    if data.patient:
        facts["first_name"] = data.patient.first_name
    visit = data.last_visit
    if visit:
        facts["visit_date"] = lang.say_date(visit.start.date(), today)
        facts["visit_doctor"] = visit.doctor_name
        facts["visit_address"] = visit.address
        facts["visit_service"] = visit.service or ""
        last = profile.doctor(visit.doctor_id)
        facts["last_doctor"] = last.short_name if last else visit.doctor_name
    doctor = profile.doctor(data.doctor_id)
    if doctor:
        facts["doctor"] = doctor.short_name
        site = profile.site(doctor.clinic_id)
        facts["address"] = site.address if site else ""
    elif profile.sites:
        facts["address"] = profile.sites[0].address
    if data.start:
        facts["when"] = lang.say_when(data.start, today)
    offer = data.offer
    if offer:
        facts["day"] = lang.say_date(offer.start.date(), today)
        facts["time"] = lang.say_time(offer.start.time())
        facts["part"] = lang.prompts.get(f"part_{offer.part}", "")
    elif data.offered_day:
        facts["day"] = lang.say_date(data.offered_day, today)
    if data.new_name:
        facts["new_name"] = " ".join(data.new_name)
    facts["confirm_by"] = lang.prompts.get(
        "confirm_by_sms" if profile.sms_confirmation else "confirm_by_call", ""
    )
    facts.update(answer_facts(turn))
    return facts


def answer_facts(turn: Turn) -> dict[str, object]:
    """Fields of the answers to questions that are not bookings: next appointment, hours,
    addresses."""
    lang = turn.lang
    facts: dict[str, object] = {}
    upcoming = frame_of(turn).next_appointment
    if upcoming:
        facts["appt_when"] = lang.say_when(upcoming.start, turn.today)
        facts["appt_doctor"] = upcoming.doctor_name
        facts["appt_address"] = upcoming.address
    step = turn.call.step
    if step == "opening_hours":
        facts["hours"] = say_hours(turn)
    if step == "addresses":
        facts["addresses"] = " ".join(
            text_of(lang, "site_address", name=s.name, address=s.address)
            for s in turn.profile.sites
        )
    return facts


def text_of(lang: object, key: str, **fields: object) -> str:
    """One catalogue fragment filled in (English when the language lacks it)."""
    from flows.lang import text

    return text(lang, key, fields)  # type: ignore[arg-type]


def say_hours(turn: Turn) -> str:
    """ "Monday to Thursday, 9 a.m. to 5 p.m. Friday, 9 a.m. to 1 p.m. Closed on Sunday."."""
    lang = turn.lang
    names = str(lang.prompts.get("weekdays") or "").split(",")
    if len(names) != 7:
        from flows.lang import en

        names = en.PROMPTS["weekdays"].split(",")
    week = [turn.profile.hours.ranges.get(d, ()) for d in range(7)]
    groups: list[tuple[int, int]] = []
    for d in range(7):
        if groups and week[groups[-1][1]] == week[d]:
            groups[-1] = (groups[-1][0], d)
        else:
            groups.append((d, d))
    out: list[str] = []
    for first, last in groups:
        days = names[first].strip() if first == last else text_of(
            lang, "days_range", first=names[first].strip(), last=names[last].strip())
        spans = week[first]
        if not spans:
            out.append(text_of(lang, "hours_closed", days=days))
            continue
        times = ", ".join(
            text_of(lang, "hours_span", opens=lang.say_time(s), closes=lang.say_time(e))
            for s, e in spans
        )
        out.append(text_of(lang, "hours_open", days=days, times=times))
    return " ".join(out)


def family_options(turn: Turn) -> dict[str, object]:
    """ "For Kamran, press 1. For Sana, press 2."."""
    data = frame_of(turn)
    names = [p.first_name for p in data.patients or []]
    return {"options": _page(turn, names, data.who_page, "option", "more_names")}


def doctor_options(turn: Turn) -> dict[str, object]:
    """ "Dr. Nadia Farooq, press 1. ..."."""
    names = [d.name for d in turn.profile.doctors]
    page = frame_of(turn).doctor_page
    return {"options": _page(turn, names, page, "doctor_option", "more_doctors")}


def _page(turn: Turn, labels: list[str], stored: object, template: str, more: str) -> str:
    """The page of a long menu the caller is on, and how to hear the next one (flows.menus)."""
    page = menus.page_of(len(labels), stored)
    spoken = turn.lang.say_options([labels[i] for i in page.indexes], template=template)
    if page.paged:
        spoken += " " + turn.render(more, more_key=menus.MORE_KEY)
    return spoken


def slot_options(turn: Turn) -> dict[str, object]:
    """ "Tuesday the 24th at 10 a.m., press 1. At 10:20 a.m., press 2. ..."."""
    labels: list[str] = []
    # Times on the day just named ("Thursday the 3rd, Dr. Farooq is free: At 9:40 a.m. ...")
    # do not repeat the day.
    data = frame_of(turn)
    previous: date | None = data.offered_day
    for start in data.offered:
        label = turn.lang.say_when(start, turn.today, previous=previous)
        labels.append(label[:1].upper() + label[1:])
        previous = start.date()
    return {"options": turn.lang.say_options(labels, template="slot_option")}
