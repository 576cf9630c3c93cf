"""The facts prompts may mention, computed from the call's data in the caller's language.

Prompt templates in `flows/lang/` name these fields ("{first_name}", "{when}"); this module is
the one place that turns stored call data into speakable words.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING

from flows import menus

if TYPE_CHECKING:
    from flows.engine import Turn


def common_facts(turn: Turn) -> dict[str, object]:
    """Fields every prompt may use."""
    data = turn.data
    lang = turn.lang
    today = turn.today
    profile = turn.profile
    facts: dict[str, object] = {"clinic": profile.name}
    patient = data.get("patient")
    if patient:
        facts["first_name"] = patient.get("first_name", "")
    visit = data.get("last_visit")
    if visit:
        facts["visit_date"] = lang.say_date(date.fromisoformat(visit["start"][:10]), today)
        facts["visit_doctor"] = visit.get("doctor_name", "")
        facts["visit_address"] = visit.get("address", "")
        facts["visit_service"] = visit.get("service") or ""
        last = profile.doctor(visit.get("doctor_id"))
        facts["last_doctor"] = last.short_name if last else visit.get("doctor_name", "")
    doctor = profile.doctor(data.get("doctor_id"))
    if doctor:
        facts["doctor"] = doctor.short_name
        site = profile.site(doctor.clinic_id)
        facts["address"] = site.address if site else ""
    elif profile.sites:
        facts["address"] = profile.sites[0].address
    if data.get("start"):
        facts["when"] = lang.say_when(datetime.fromisoformat(data["start"]), today)
    offer = data.get("offer")
    if offer:
        start = datetime.fromisoformat(offer["start"])
        facts["day"] = lang.say_date(start.date(), today)
        facts["time"] = lang.say_time(start.time())
        facts["part"] = lang.prompts.get(f"part_{offer.get('part', 'morning')}", "")
    elif data.get("offered_day"):
        facts["day"] = lang.say_date(date.fromisoformat(data["offered_day"]), today)
    name = data.get("new_name")
    if name:
        facts["new_name"] = " ".join(name)
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
    upcoming = turn.data.get("next_appointment")
    if upcoming:
        facts["appt_when"] = lang.say_when(datetime.fromisoformat(upcoming["start"]), turn.today)
        facts["appt_doctor"] = upcoming.get("doctor_name") or ""
        facts["appt_address"] = upcoming.get("address") or ""
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
    names = [p["first_name"] for p in turn.data.get("patients", [])]
    return {"options": _page(turn, names, turn.data.get("who_page"), "option", "more_names")}


def doctor_options(turn: Turn) -> dict[str, object]:
    """ "Dr. Nadia Farooq, press 1. ..."."""
    names = [d.name for d in turn.profile.doctors]
    page = turn.data.get("doctor_page")
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
    day = turn.data.get("offered_day")
    previous: date | None = date.fromisoformat(day) if day else None
    for iso in turn.data.get("offered", []):
        start = datetime.fromisoformat(iso)
        label = turn.lang.say_when(start, turn.today, previous=previous)
        labels.append(label[:1].upper() + label[1:])
        previous = start.date()
    return {"options": turn.lang.say_options(labels, template="slot_option")}
