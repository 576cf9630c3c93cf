"""English prompts (en-GB wording), and how dates, times and menus are said in English.

Wording follows ../shared/docs/call-script.md: short, digits as "press N", no repetition.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time, timedelta

PROMPTS: dict[str, str] = {
    # Greeting and identification
    "welcome": "Welcome to {clinic}.",
    "language_offer": "For English, press {n}.",
    "language_offer_hint": "For English, press {n}.",
    "ask_number": "Your number is hidden. Please key in your mobile number, then press the hash "
    "key.",
    "ask_number_hint": "Key in your mobile number, then press hash. For example, 0 3 2 1, and "
    "so on.",
    "who": "Who is calling? {options}",
    "who_hint": "Please press the number for your name. {options}",
    "dob": "For your security, please key in your date of birth as day, month and year. "
    "For example, 0 5 0 3 1 9 8 7.",
    "dob_hint": "Key in your date of birth: two digits for the day, two for the month, "
    "four for the year.",
    "dob_failed": "Sorry, that doesn't match our records.",
    "greet_known": "Hello {first_name}, welcome back to {clinic}.",
    "last_visit": "Your last visit was on {visit_date} with {visit_doctor}, at {visit_address}.",
    "last_visit_service": "Your last visit was on {visit_date}, for {visit_service}, "
    "with {visit_doctor}, at {visit_address}.",
    # Menu
    "menu": "To book an appointment, press 1 or say book. To speak to someone, press 0.",
    "menu_hint": "Press 1 to book, or 0 for a person.",
    # Doctor and time
    "same_doctor": "Would you like {last_doctor} again? Press 1 for yes, 2 for another doctor.",
    "same_doctor_hint": "Press 1 for {last_doctor}, or 2 for another doctor.",
    "doctor": "Which doctor? {options}",
    "doctor_hint": "Say the doctor's name, or press a number. {options}",
    "slots": "{doctor}'s next free times: {options} Or say another day and time.",
    "slots_hint": "Press 1 for the first time, or say a day and time, for example tomorrow "
    "at 11. To key in a date, press 9.",
    "slots_on_day": "{day}, {doctor} is free: {options} Or say another day.",
    "no_slots": "Sorry, {doctor} has no free times in the next few weeks.",
    "day_full": "{doctor} has no free time on {day}.",
    "time_not_free": "{requested} is not free.",
    "offer_one": "{doctor} on {day}: the {part} is free from {time}. Is {time} good? "
    "Say yes, or another time.",
    "offer_one_hint": "Press 1 for {time}, or say another time.",
    "key_date": "Key in the day and month as four digits. For example, 2 4 1 1 for the 24th of "
    "November.",
    "key_date_hint": "Four digits: day, then month. For example, 0 5 1 2 for the 5th of December.",
    "key_time": "Now key in the time as four digits, in 24-hour form. For example, 1 4 3 0 for "
    "2:30 p.m.",
    "key_time_hint": "Four digits, 24-hour. For example, 0 9 2 0 for 9:20 in the morning.",
    "reason": "Briefly, what is the visit for? Or press hash to skip.",
    "reason_hint": "Say the reason for your visit, or press hash to skip.",
    "confirm": "{when} with {doctor}. Press 1 to book it, 2 to change.",
    "confirm_hint": "Press 1 to book {when}, or 2 to change it.",
    "check_heard": "I heard {heard}. Is that right? Press 1 for yes, 2 for no.",
    "check_heard_hint": "Press 1 if {heard} is right, 2 if not.",
    # Booking
    "hold_booking": "One moment.",
    "booked": "You're booked for {when}, at {address}.",
    "sms_note": "We'll text you the details.",
    "sms_booked": "{clinic}: you're booked for {when} with {doctor}, at {address}. Reply or "
    "call us to change it.",
    "recorded": "I've taken your request for {when}. Our system is slow right now, so the clinic "
    "will confirm it {confirm_by} shortly.",
    "confirm_by_sms": "by text",
    "confirm_by_call": "by phone",
    "slot_taken": "Sorry, that time was just taken.",
    # New caller
    "new_caller": "This number isn't in our records. To register with it as a new patient, press "
    "1. To speak to someone, press 2.",
    "new_caller_hint": "Press 1 to register with this number, or 2 to speak to someone.",
    "name": "Please say your first and last name.",
    "name_hint": "Say your first name and then your last name, for example Ayaan Khan.",
    "name_confirm": "{new_name}. Is that right? Press 1 for yes, 2 to say it again.",
    "name_confirm_hint": "Press 1 if {new_name} is right, 2 to say it again.",
    # People
    "connecting": "Connecting you to our reception team.",
    "nobody": "Sorry, everyone is busy. I can book an appointment for you now: press 1. Or press "
    "2 and we'll call you back.",
    "nobody_hint": "Press 1 to book now, or 2 for a call back.",
    "closed": "Our reception is closed now. I can book an appointment for you: press 1. Or press "
    "2 and we'll call you back when we open.",
    "closed_hint": "Press 1 to book now, or 2 for a call back when we open.",
    "unverified_callback": "Without your date of birth I can't book for you, so I'll ask the "
    "clinic to call you back.",
    "callback_done": "Thank you. The clinic will call you back as soon as it can.",
    "callback_no_number": "Sorry, I can't arrange a call back without your number. Please call "
    "again during opening hours.",
    "callback_not_recorded": "I couldn't record your request just now. Please call us again "
    "later.",
    "records_down": "Sorry, I can't reach our records right now.",
    "records_still_down": "I still can't reach our records, so I'll ask the clinic to call you "
    "back.",
    "give_up": "Let me get someone to help you.",
    "not_understood": "Sorry, I didn't catch that.",
    "weekday_mismatch": "Sorry, that day and date don't match.",
    "past_day": "Sorry, that day has already passed.",
    "movable_day": "Sorry, I need the date of that day.",
    "goodbye": "Goodbye.",
    "thanks_goodbye": "Thank you for calling. Goodbye.",
    "fallback": "Sorry, something went wrong on our side.",
    "restart": "Sorry, let's start again.",
    "which_half": "{hour} in the morning, or in the evening? Press 1 for the morning, 2 for the "
    "evening.",
    "which_half_hint": "Press 1 for {hour} in the morning, 2 for {hour} in the evening.",
    # Questions that are not bookings
    "anything_else": "Is there anything else? Say what you need, or press 1 to book. "
    "To end the call, say no.",
    "anything_else_hint": "Press 1 to book, say what you need, or say no to end the call.",
    "next_appointment": "Your next appointment is {appt_when} with {appt_doctor}, at "
    "{appt_address}.",
    "no_next_appointment": "I can't find an upcoming appointment for you.",
    "opening_hours": "We are open {hours}",
    "addresses": "{addresses}",
    "site_address": "{name} is at {address}.",
    "weekdays": "Monday,Tuesday,Wednesday,Thursday,Friday,Saturday,Sunday",
    "days_range": "{first} to {last}",
    "hours_span": "{opens} to {closes}",
    "hours_open": "{days}, {times}.",
    "hours_closed": "Closed on {days}.",
    "cancel_confirm": "Your next appointment is {appt_when} with {appt_doctor}. To cancel it, "
    "press 1. To keep it, press 2.",
    "cancel_confirm_hint": "Press 1 to cancel {appt_when}, or 2 to keep it.",
    "move_confirm": "Your next appointment is {appt_when} with {appt_doctor}. To move it, press "
    "1, or say the new day and time. To keep it, press 2.",
    "move_confirm_hint": "Press 1 or say a new day and time to move it, or 2 to keep it.",
    "cancel_requested": "I've asked the reception team to cancel your appointment on "
    "{appt_when}. They will call you if anything is unclear.",
    # Fragments used to build sentences
    "option": "For {label}, press {n}.",
    "doctor_option": "{label}, press {n}.",  # "Dr." already says what the list is
    "slot_option": "{label}, press {n}.",
    "more_names": "For more names, press {more_key}.",  # a long family menu (flows/menus.py)
    "more_doctors": "For more doctors, press {more_key}.",
    "part_morning": "morning",
    "part_afternoon": "afternoon",
    "part_evening": "evening",
    # Appointment reminders (flows/reminders): the call
    "reminder_greet": "Hello {first_name}, this is {clinic} with a reminder of your appointment "
    "{appointments}, at {reminder_address}.",
    "reminder_greet_many": "Hello {first_name}, this is {clinic} with a reminder of your "
    "appointments {appointments}, at {reminder_address}.",
    "reminder_menu": "To confirm, press 1 or say yes. To move it, press 2. To cancel, press 3. "
    "For reception, press 0.",
    "reminder_menu_hint": "Press 1 to confirm, 2 to move it, 3 to cancel, or 0 for reception.",
    "reminder_menu_many": "To confirm them, press 1 or say yes. To change them, press 2. To "
    "cancel them, press 3. For reception, press 0.",
    "reminder_menu_many_hint": "Press 1 to confirm, 2 to change them, 3 to cancel, or 0 for "
    "reception.",
    "reminder_confirmed": "Thank you, we'll see you then. Goodbye.",
    "reminder_cancel_requested": "I've asked the reception team to cancel your appointment. "
    "They will call you if anything is unclear. Goodbye.",
    "reminder_cancel_requested_many": "I've asked the reception team to cancel your "
    "appointments. They will call you if anything is unclear. Goodbye.",
    "reminder_move_start": "Let's find you a new time.",
    "reminder_move_requested": "I've asked the reception team to call you to find new times. "
    "Goodbye.",
    "reminder_voicemail": "This is {clinic} with a reminder for {first_name} of an appointment "
    "{first_when}. To change it, please call us. Goodbye.",
    # Appointment reminders: the text message and its fragments
    "reminder_sms": "{clinic}: a reminder of your appointment {appointments}, at {address}. "
    "Reply 1 to confirm, 2 to move, 3 to cancel, or {call_us}.",
    "reminder_sms_many": "{clinic}: a reminder of your appointments {appointments}, at "
    "{address}. Reply 1 to confirm, 2 to move, 3 to cancel, or {call_us}.",
    "reminder_call_us_on": "call us on {phone}",
    "reminder_call_us": "call us",
    "reminder_item": "{when} with {doctor}",
    "reminder_item_no_doctor": "{when}",
    "reminder_and": "and",
}

_ORDINAL_SUFFIX = {1: "st", 2: "nd", 3: "rd", 21: "st", 22: "nd", 23: "rd", 31: "st"}
_WEEKDAY = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTH = ("January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December")


_PART_SPANS = {
    (time(8), time(12)): "morning", (time(12), time(17)): "afternoon",
    (time(17), time(21)): "evening",
}  # fmt: skip


def ordinal(n: int) -> str:
    """1 -> "1st", 22 -> "22nd"."""
    return f"{n}{_ORDINAL_SUFFIX.get(n, 'th')}"


class English:
    """The English catalogue."""

    code = "en"
    name = "English"
    prompts = PROMPTS

    def say_date(self, day: date, today: date) -> str:
        """ "today", "tomorrow", or "Tuesday the 24th of November" (year only if not this one)."""
        if day == today:
            return "today"
        if day == today + timedelta(days=1):
            return f"tomorrow, {_WEEKDAY[day.weekday()]} the {ordinal(day.day)}"
        text = f"{_WEEKDAY[day.weekday()]} the {ordinal(day.day)} of {_MONTH[day.month - 1]}"
        if day.year != today.year:
            text += f" {day.year}"
        return text

    def say_time(self, moment: time) -> str:
        """ "10 a.m.", "2:20 p.m.", "noon"."""
        if moment.hour == 12 and moment.minute == 0:
            return "noon"
        hour = moment.hour % 12 or 12
        half = "a.m." if moment.hour < 12 else "p.m."
        if moment.minute:
            return f"{hour}:{moment.minute:02d} {half}"
        return f"{hour} {half}"

    def say_when(self, moment: datetime, today: date, *, previous: date | None = None) -> str:
        """ "Tuesday the 24th of November at 10 a.m.", or "at 10:20 a.m." on the same day."""
        if previous == moment.date():
            return f"at {self.say_time(moment.time())}"
        return f"{self.say_date(moment.date(), today)} at {self.say_time(moment.time())}"

    def say_understood(
        self,
        day: date | None,
        start: time | None,
        end: time | None,
        today: date,
        *,
        doctor: str | None = None,
    ) -> str:
        """What a read-back confirms, from the parsed value (never the transcript): "Monday the
        30th of November at 10 a.m.", "tomorrow, Tuesday the 24th, in the afternoon",
        "between 2 p.m. and 3 p.m.", "after 4 p.m.", with ", with Dr. Farooq"."""
        parts = [self.say_date(day, today)] if day is not None else []
        if start is not None and end is None:
            parts.append(f"at {self.say_time(start)}")
        elif start is not None and end is not None:
            parts.append(self._say_span(start, end))
        text = " ".join(parts)
        if doctor:
            text = f"{text}, with {doctor}" if text else doctor
        return text

    def _say_span(self, start: time, end: time) -> str:
        part = _PART_SPANS.get((start, end))
        if part:
            return f"in the {part}"
        if end >= time(21):
            return f"after {self.say_time(start)}"
        if start <= time(8):
            return f"before {self.say_time(end)}"
        return f"between {self.say_time(start)} and {self.say_time(end)}"

    def say_options(self, labels: Sequence[str], *, template: str = "option") -> str:
        """ "For Ali, press 1. For Sara, press 2."."""
        pattern = PROMPTS[template]
        return " ".join(pattern.format(label=label, n=i) for i, label in enumerate(labels, 1))


ENGLISH = English()
