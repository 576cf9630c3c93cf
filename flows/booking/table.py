"""The clinic booking call: one row per thing the caller hears or does, in call order.

Read top to bottom, this is the call script of product.md. A row goes to the row below unless
`next` says otherwise; `next={label: step}` routes a handler's outcome. Prompts are keys into
`flows/lang/<language>.py`. To add a question: add one `Ask` row here (and its wording in each
catalogue).
"""

from __future__ import annotations

from flows.booking import actions as a
from flows.booking import conversation as c
from flows.booking import facts as f
from flows.booking.frame import BookingFrame
from flows.lang import CATALOGUES
from flows.steps import Ask, Do, Flow, Hangup, Say, Transfer

YES_NO = ("yes", "no")
# Speech hints wherever a day or a time may be said.
WHEN_WORDS = ("tomorrow", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday",
              "morning", "afternoon", "evening")

# What a caller may want, from the menu and from "anything else?".
WANTS = {"book": "same_doctor", "person": "person", "next": "next_appointment",
         "hours": "opening_hours", "address": "addresses", "cancel": "cancel_find",
         "move": "move_find", "done": "bye_answered"}

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
    Ask("menu", "menu", c.what_caller_wants, next=WANTS, digits=1, hints=c.request_hints),
    # 6: doctor, then day and time
    Ask("same_doctor", "same_doctor", c.same_doctor, next={"yes": "slots_find", "no": "doctor"},
        digits=1, when=c.asks_same_doctor, hints=a.doctor_hints),
    Ask("doctor", "doctor", c.choose_doctor, next={"more": "doctor"}, digits=1,
        facts=f.doctor_options, hints=a.doctor_hints, when=c.needs_doctor),
    # the day and time already asked for, else the earliest free times
    Do("slots_find", c.find_times,
       next={"none": "no_slots", "picked": "reason", "day": "day_slots", "offer": "offer_one",
             "earliest": "slots", "which_half": "which_half"}),
    Ask("slots", "slots", c.choose_slot, digits=1, facts=f.slot_options,
        next={"picked": "reason", "key": "key_date", "day": "day_slots", "offer": "offer_one",
              "earliest": "slots", "doctor": "slots_find", "none": "no_slots",
              "which_half": "which_half"},
        hints=WHEN_WORDS),
    Ask("day_slots", "slots_on_day", c.choose_slot, digits=1, facts=f.slot_options,
        reprompt="slots_hint",
        next={"picked": "reason", "key": "key_date", "day": "day_slots", "offer": "offer_one",
              "earliest": "slots", "doctor": "slots_find", "none": "no_slots",
              "which_half": "which_half"},
        hints=WHEN_WORDS),
    Ask("offer_one", "offer_one", c.accept_offer, digits=1,
        next={"picked": "reason", "key": "key_date", "day": "day_slots", "offer": "offer_one",
              "earliest": "slots", "earliest_again": "slots_find", "doctor": "slots_find",
              "none": "no_slots", "which_half": "which_half"}, hints=WHEN_WORDS),
    Ask("key_date", "key_date", a.keyed_date, digits=4, next="key_time", hints=WHEN_WORDS),
    Ask("key_time", "key_time", a.keyed_time, digits=4, hints=WHEN_WORDS,
        next={"picked": "reason", "day": "day_slots", "offer": "offer_one", "earliest": "slots",
              "none": "no_slots"}),
    Say("no_slots", "no_slots", next="doctor"),
    Ask("which_half", "which_half", c.which_half, next="slots_find", digits=1, facts=c.half_facts,
        hints=("morning", "evening")),
    # optional reason for the visit; silence or # skips it
    Ask("reason", "reason", c.reason, input="speech dtmf", finish_on_key="#", on_silence="confirm",
        timeout=3, when=c.needs_reason, next={"change": "slots_find"}),
    # 7: read back and confirm
    Ask("confirm", "confirm", c.confirm, next={"yes": "book", "change": "slots_find"}, digits=1,
        hints=(*YES_NO, *WHEN_WORDS)),
    # 8-9: book and confirm in words
    Do("book", a.book, hold="hold_booking",
       next={"booked": "booked", "recorded": "move_recorded", "slot_taken": "slot_taken"},
       on_error="move_recorded"),
    Say("booked", "booked", next="move_cancel"),
    # a move: the new time is booked, the old one goes to the desk to cancel
    Do("move_cancel", c.request_cancellation, next="move_cancelled", when=c.is_moving,
       on_error="booked_sms"),
    Say("move_cancelled", "cancel_requested", next="booked_sms", when=c.is_moving),
    Say("booked_sms", "sms_note", next="bye_booked", when=a.wants_sms_note),
    Hangup("bye_booked", "goodbye", outcome="booked"),
    # a move whose new time is recorded for the worker: the desk still cancels the old one
    Do("move_recorded", c.request_cancellation, next="recorded", when=c.is_moving,
       on_error="recorded"),
    Hangup("recorded", "recorded", outcome="recorded"),
    Say("slot_taken", "slot_taken", next="slots_find"),
    # a caller we could not find: consent, name, then the same booking path
    Ask("new_caller", "new_caller", c.consent, next={"yes": "name", "no": "person"}, digits=1,
        hints=YES_NO),
    Ask("name", "name", c.name_and_request, input="speech", timeout=6, private=True),
    Ask("name_confirm", "name_confirm", a.yes_no, next={"yes": "doctor", "no": "name"}, digits=1,
        private=True, hints=YES_NO),
    # questions that are not bookings, then "anything else?"
    Do("next_appointment", c.load_next_appointment, next={"none": "no_next_appointment"}),
    Say("next_appointment_found", "next_appointment", next="anything_else"),
    Say("no_next_appointment", "no_next_appointment", next="anything_else"),
    Say("opening_hours", "opening_hours", next="anything_else"),
    Say("addresses", "addresses", next="anything_else"),
    Do("cancel_find", c.load_next_appointment, next={"none": "no_next_appointment"}),
    Ask("cancel_confirm", "cancel_confirm", a.yes_no, next={"yes": "cancel_record", "no":
        "anything_else"}, digits=1, hints=YES_NO),
    Do("cancel_record", c.request_cancellation, next="cancel_recorded"),
    Say("cancel_recorded", "cancel_requested", next="anything_else"),
    Do("move_find", c.load_next_appointment, next={"none": "no_next_appointment"}),
    Ask("move_confirm", "move_confirm", c.move_confirm,
        next={"yes": "same_doctor", "no": "anything_else"}, digits=1,
        hints=(*YES_NO, *WHEN_WORDS)),
    Ask("anything_else", "anything_else", c.anything_else, next=WANTS, digits=1,
        on_silence="bye_answered", hints=c.request_hints),
    Hangup("bye_answered", "thanks_goodbye", outcome="answered"),
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
],
    person="person", unavailable="records_down", facts=f.common_facts,
    # A prompt key missing from a catalogue fails here, at import, not as silence on a call.
    catalogues=[lang.prompts for lang in CATALOGUES.values()],
    frame=BookingFrame.load,
)
