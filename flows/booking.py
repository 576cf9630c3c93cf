"""The clinic booking call: one row per thing the caller hears or does, in call order.

Read top to bottom, this is the call script of product.md. A row goes to the row below unless
`next` says otherwise; `next={label: step}` routes a handler's outcome. Prompts are keys into
`flows/lang/<language>.py`. To add a question: add one `Ask` row here (and its wording in each
catalogue).
"""

from __future__ import annotations

from flows import actions as a
from flows import facts as f
from flows.steps import Ask, Do, Flow, Hangup, Say, Transfer

YES_NO = ("yes", "no")
# Speech hints wherever a day or a time may be said.
WHEN_WORDS = ("tomorrow", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday",
              "morning", "afternoon", "evening")

FLOW = Flow("booking", [
    # 1-3: who is calling
    Say("welcome", "welcome", next="language", when=a.offers_languages),
    Ask("language", "language_offer", a.choose_language, next="identify", digits=1,
        when=a.offers_languages, on_give_up="identify", on_silence="identify", person_ok=False,
        each_language=True),
    Do("identify", a.identify,
       next={"known": "verify", "family": "welcome_family", "unknown": "welcome_new",
             "withheld": "welcome_hidden"}),
    Say("welcome_hidden", "welcome", next="number", when=a.not_welcomed),
    Say("welcome_family", "welcome", next="who", when=a.not_welcomed),
    Say("welcome_new", "welcome", next="new_caller", when=a.not_welcomed),
    Ask("number", "ask_number", a.keyed_number, next="identify", finish_on_key="#",
        timeout=8, private=True),
    Ask("who", "who", a.choose_family_member, next={"chosen": "verify", "more": "who"},
        digits=1, facts=f.family_options, private=True),
    # 4: identity check (clinic setting), greeting and last completed visit
    Ask("verify", "dob", a.check_date_of_birth, next="greet", digits=8, input="dtmf",
        when=a.needs_dob_check, private=True),
    Say("greet", "greet_known"),
    Do("last_visit", a.load_last_visit, next={"none": "menu", "service": "last_visit_service"}),
    Say("last_visit_found", "last_visit", next="menu"),
    Say("last_visit_service", "last_visit_service"),
    # 5: main menu
    Ask("menu", "menu", a.main_menu, next={"book": "same_doctor"}, digits=1,
        hints=("book", "appointment", "reception")),
    # 6: doctor, then day and time
    Ask("same_doctor", "same_doctor", a.same_doctor, next={"yes": "slots_find", "no": "doctor"},
        digits=1, when=a.has_last_doctor, hints=a.doctor_hints),
    Ask("doctor", "doctor", a.choose_doctor, next={"more": "doctor"}, digits=1,
        facts=f.doctor_options, hints=a.doctor_hints),
    Do("slots_find", a.find_slots, next={"none": "no_slots"}),
    Ask("slots", "slots", a.choose_slot, digits=1, facts=f.slot_options,
        next={"picked": "reason", "key": "key_date", "day": "day_slots", "offer": "offer_one",
              "earliest": "slots", "doctor": "slots_find", "none": "no_slots"},
        hints=WHEN_WORDS),
    Ask("day_slots", "slots_on_day", a.choose_slot, digits=1, facts=f.slot_options,
        reprompt="slots_hint",
        next={"picked": "reason", "key": "key_date", "day": "day_slots", "offer": "offer_one",
              "earliest": "slots", "doctor": "slots_find", "none": "no_slots"},
        hints=WHEN_WORDS),
    Ask("offer_one", "offer_one", a.accept_offer, digits=1,
        next={"picked": "reason", "key": "key_date", "day": "day_slots", "offer": "offer_one",
              "earliest": "slots", "earliest_again": "slots_find", "doctor": "slots_find",
              "none": "no_slots"}, hints=WHEN_WORDS),
    Ask("key_date", "key_date", a.keyed_date, digits=4, next="key_time", hints=WHEN_WORDS),
    Ask("key_time", "key_time", a.keyed_time, digits=4, hints=WHEN_WORDS,
        next={"picked": "reason", "day": "day_slots", "offer": "offer_one", "earliest": "slots",
              "none": "no_slots"}),
    Say("no_slots", "no_slots", next="doctor"),
    # optional reason for the visit; silence or # skips it
    Ask("reason", "reason", a.reason, input="speech dtmf", finish_on_key="#", on_silence="confirm",
        timeout=3),
    # 7: read back and confirm
    Ask("confirm", "confirm", a.confirm, next={"yes": "book", "change": "slots_find"}, digits=1,
        hints=YES_NO),
    # 8-9: book and confirm in words
    Do("book", a.book, hold="hold_booking",
       next={"booked": "booked", "recorded": "recorded", "slot_taken": "slot_taken"},
       on_error="recorded"),
    Say("booked", "booked", next="booked_sms"),
    Say("booked_sms", "sms_note", next="bye_booked", when=a.wants_sms_note),
    Hangup("bye_booked", "goodbye", outcome="booked"),
    Hangup("recorded", "recorded", outcome="recorded"),
    Say("slot_taken", "slot_taken", next="slots_find"),
    # a caller we could not find: consent, name, then the same booking path
    Ask("new_caller", "new_caller", a.yes_no, next={"yes": "name", "no": "person"}, digits=1,
        hints=YES_NO),
    Ask("name", "name", a.new_patient_name, input="speech", timeout=6, private=True),
    Ask("name_confirm", "name_confirm", a.yes_no, next={"yes": "doctor", "no": "name"}, digits=1,
        private=True, hints=YES_NO),
    # 10: a person, or no ringing of an empty room
    Do("route_booking", a.route_booking,
       next={"known": "same_doctor", "registered": "doctor", "unknown": "new_caller",
             "unverified": "unverified", "unidentified": "identify_again"}),
    Do("identify_again", a.identify,
       next={"known": "verify", "family": "welcome_family", "unknown": "welcome_new",
             "withheld": "welcome_hidden"},
       on_error="records_still_down"),
    Say("records_still_down", "records_still_down", next="callback"),
    Say("records_down", "records_down", next="person"),
    Transfer("person", "connecting", on_no_answer="nobody", closed="closed"),
    Ask("nobody", "nobody", a.book_or_callback,
        next={"book": "route_booking", "callback": "callback"}, digits=1,
        on_give_up="callback", person_ok=False),
    Ask("closed", "closed", a.book_or_callback,
        next={"book": "route_booking", "callback": "callback"}, digits=1,
        on_give_up="callback", person_ok=False),
    Say("unverified", "unverified_callback", next="callback"),
    Do("callback", a.request_callback, next={"no_number": "no_callback_number"},
       on_error="no_callback_number"),
    Hangup("callback_done", "callback_done", outcome="callback"),
    Hangup("no_callback_number", "callback_no_number", outcome="abandoned"),
])
