"""Urdu prompts, and how dates, times and menus are said in Urdu (the second language).

Why Urdu: the demo clinic and Clinicea's South Asian customers serve Urdu speakers; Twilio's
<Gather> recognises `ur-PK` (Google STT) and <Say> speaks it with Google's `ur-IN` voices
(see docs/understanding.md for the codes and the voice). Digits are written as numerals, which
the voice reads in Urdu. Doctor and clinic names stay as they are written in the clinic config.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time, timedelta

PROMPTS: dict[str, str] = {
    "welcome": "{clinic} میں خوش آمدید۔",
    "language_offer": "اردو کے لیے {n} دبائیں۔",
    "language_offer_hint": "اردو کے لیے {n} دبائیں۔",
    "ask_number": "آپ کا نمبر ظاہر نہیں ہو رہا۔ براہ کرم اپنا موبائل نمبر درج کریں، "
    "پھر ہیش دبائیں۔",
    "ask_number_hint": "اپنا موبائل نمبر درج کریں اور آخر میں ہیش دبائیں۔",
    "who": "کون بات کر رہا ہے؟ {options}",
    "who_hint": "اپنے نام کے لیے نمبر دبائیں۔ {options}",
    "dob": "حفاظت کے لیے اپنی تاریخ پیدائش دن، مہینہ اور سال کی صورت میں درج کریں۔ "
    "مثال کے طور پر 0 5 0 3 1 9 8 7۔",
    "dob_hint": "دن کے دو، مہینے کے دو اور سال کے چار ہندسے درج کریں۔",
    "dob_failed": "معذرت، یہ ہمارے ریکارڈ سے نہیں ملتا۔",
    "greet_known": "السلام علیکم {first_name}، {clinic} میں دوبارہ خوش آمدید۔",
    "last_visit": "آپ کی پچھلی ملاقات {visit_date} کو {visit_doctor} کے ساتھ، "
    "{visit_address} پر ہوئی تھی۔",
    "last_visit_service": "آپ کی پچھلی ملاقات {visit_date} کو {visit_service} کے لیے "
    "{visit_doctor} کے ساتھ، {visit_address} پر ہوئی تھی۔",
    "menu": "اپوائنٹمنٹ کے لیے 1 دبائیں یا بکنگ کہیں۔ کسی سے بات کرنے کے لیے 0 دبائیں۔",
    "menu_hint": "بکنگ کے لیے 1، یا کسی سے بات کے لیے 0 دبائیں۔",
    "same_doctor": "کیا آپ دوبارہ {last_doctor} سے ملنا چاہیں گے؟ ہاں کے لیے 1، "
    "کسی اور ڈاکٹر کے لیے 2 دبائیں۔",
    "same_doctor_hint": "{last_doctor} کے لیے 1، کسی اور ڈاکٹر کے لیے 2 دبائیں۔",
    "doctor": "آپ کس ڈاکٹر سے ملنا چاہیں گے؟ {options}",
    "doctor_hint": "ڈاکٹر کا نام بتائیں یا نمبر دبائیں۔ {options}",
    "slots": "{doctor} کے اگلے خالی اوقات: {options} یا کوئی اور دن اور وقت بتائیں۔",
    "slots_hint": "پہلے وقت کے لیے 1 دبائیں، یا دن اور وقت بتائیں، جیسے کل صبح 11 بجے۔ "
    "تاریخ درج کرنے کے لیے 9 دبائیں۔",
    "slots_on_day": "{day} کو {doctor} ان اوقات میں فارغ ہیں: {options} یا کوئی اور دن بتائیں۔",
    "no_slots": "معذرت، {doctor} کے پاس اگلے چند ہفتوں میں کوئی وقت خالی نہیں۔",
    "day_full": "{day} کو {doctor} کے پاس کوئی وقت خالی نہیں۔",
    "time_not_free": "{requested} خالی نہیں۔",
    "offer_one": "{day} کو {doctor} کے پاس {part} {time} سے وقت خالی ہے۔ کیا {time} ٹھیک ہے؟ "
    "ہاں کہیں، یا کوئی اور وقت بتائیں۔",
    "offer_one_hint": "{time} کے لیے 1 دبائیں، یا کوئی اور وقت بتائیں۔",
    "key_date": "دن اور مہینہ چار ہندسوں میں درج کریں۔ مثلاً 24 نومبر کے لیے 2 4 1 1۔",
    "key_date_hint": "چار ہندسے: پہلے دن، پھر مہینہ۔ مثلاً 5 دسمبر کے لیے 0 5 1 2۔",
    "key_time": "اب وقت چار ہندسوں میں، 24 گھنٹے کے حساب سے درج کریں۔ مثلاً دوپہر ڈھائی بجے کے "
    "لیے 1 4 3 0۔",
    "key_time_hint": "چار ہندسے، 24 گھنٹے کے حساب سے۔ مثلاً صبح 9 بج کر 20 منٹ کے لیے 0 9 2 0۔",
    "reason": "مختصراً بتائیں کہ ملاقات کس لیے ہے؟ یا چھوڑنے کے لیے ہیش دبائیں۔",
    "reason_hint": "ملاقات کی وجہ بتائیں، یا ہیش دبائیں۔",
    "confirm": "{when}، {doctor} کے ساتھ۔ بک کرنے کے لیے 1، تبدیل کرنے کے لیے 2 دبائیں۔",
    "confirm_hint": "{when} بک کرنے کے لیے 1، یا تبدیل کرنے کے لیے 2 دبائیں۔",
    "check_heard": "میں نے سنا: {heard}۔ کیا یہ درست ہے؟ ہاں کے لیے 1، نہیں کے لیے 2 دبائیں۔",
    "check_heard_hint": "اگر {heard} درست ہے تو 1، ورنہ 2 دبائیں۔",
    "hold_booking": "ایک لمحہ۔",
    "booked": "آپ کی اپوائنٹمنٹ {when} کے لیے بک ہو گئی ہے، {address} پر۔",
    "sms_note": "ہم آپ کو تفصیلات کا پیغام بھیج دیں گے۔",
    "sms_booked": "{clinic}: آپ کی اپوائنٹمنٹ {when}، {doctor} کے ساتھ، {address} پر بک ہے۔",
    "recorded": "میں نے {when} کے لیے آپ کی درخواست لے لی ہے۔ ہمارا نظام اس وقت سست ہے، "
    "کلینک جلد {confirm_by} تصدیق کر دے گا۔",
    "confirm_by_sms": "پیغام کے ذریعے",
    "confirm_by_call": "فون پر",
    "slot_taken": "معذرت، یہ وقت ابھی ابھی کسی اور نے لے لیا۔",
    "new_caller": "یہ نمبر ہمارے ریکارڈ میں نہیں ملا۔ کیا میں آپ کو اسی نمبر کے ساتھ نئے مریض کے "
    "طور پر رجسٹر کر دوں؟ ہاں کے لیے 1، کسی سے بات کرنے کے لیے 2 دبائیں۔",
    "new_caller_hint": "رجسٹریشن کے لیے 1، یا کسی سے بات کے لیے 2 دبائیں۔",
    "name": "براہ کرم اپنا پہلا اور آخری نام بتائیں۔",
    "name_hint": "پہلا نام اور پھر آخری نام بتائیں، جیسے ایان خان۔",
    "name_confirm": "{new_name}۔ کیا یہ درست ہے؟ ہاں کے لیے 1، دوبارہ بتانے کے لیے 2 دبائیں۔",
    "name_confirm_hint": "اگر {new_name} درست ہے تو 1، ورنہ 2 دبائیں۔",
    "connecting": "آپ کو ہماری ریسیپشن سے ملایا جا رہا ہے۔",
    "nobody": "معذرت، سب مصروف ہیں۔ میں ابھی آپ کی اپوائنٹمنٹ بک کر سکتی ہوں: 1 دبائیں۔ "
    "یا 2 دبائیں اور ہم آپ کو واپس کال کریں گے۔",
    "nobody_hint": "ابھی بکنگ کے لیے 1، واپس کال کے لیے 2 دبائیں۔",
    "closed": "ہماری ریسیپشن اس وقت بند ہے۔ میں آپ کی اپوائنٹمنٹ بک کر سکتی ہوں: 1 دبائیں۔ یا 2 "
    "دبائیں اور کھلنے پر ہم آپ کو کال کریں گے۔",
    "closed_hint": "ابھی بکنگ کے لیے 1، واپس کال کے لیے 2 دبائیں۔",
    "unverified_callback": "تاریخ پیدائش کے بغیر میں آپ کی بکنگ نہیں کر سکتی، اس لیے کلینک آپ کو "
    "واپس کال کرے گا۔",
    "callback_done": "شکریہ۔ کلینک جلد از جلد آپ کو واپس کال کرے گا۔",
    "callback_no_number": "معذرت، آپ کے نمبر کے بغیر واپس کال ممکن نہیں۔ براہ کرم اوقات کار میں "
    "دوبارہ کال کریں۔",
    "callback_not_recorded": "میں ابھی آپ کی درخواست درج نہیں کر سکی۔ براہ کرم کچھ دیر بعد دوبارہ "
    "کال کریں۔",
    "records_down": "معذرت، میں اس وقت ہمارے ریکارڈ تک نہیں پہنچ پا رہی۔",
    "records_still_down": "میں ابھی بھی ریکارڈ تک نہیں پہنچ پا رہی، اس لیے کلینک آپ کو واپس کال "
    "کرے گا۔",
    "give_up": "میں آپ کی مدد کے لیے کسی کو بلاتی ہوں۔",
    "not_understood": "معذرت، میں سمجھ نہیں پائی۔",
    "weekday_mismatch": "معذرت، دن اور تاریخ آپس میں نہیں ملتے۔",
    "past_day": "معذرت، یہ دن گزر چکا ہے۔",
    "movable_day": "معذرت، اس دن کی تاریخ بتا دیں۔",
    "goodbye": "خدا حافظ۔",
    "thanks_goodbye": "کال کرنے کا شکریہ۔ خدا حافظ۔",
    "fallback": "معذرت، ہماری طرف کچھ خرابی ہو گئی ہے۔",
    "restart": "معذرت، آئیے دوبارہ شروع کرتے ہیں۔",
    "which_half": "صبح {hour} بجے یا شام {hour} بجے؟ صبح کے لیے 1، شام کے لیے 2 دبائیں۔",
    "which_half_hint": "صبح {hour} بجے کے لیے 1، شام کے لیے 2 دبائیں۔",
    "anything_else": "کیا کچھ اور؟ بتائیں کیا چاہیے، یا بکنگ کے لیے 1 دبائیں۔ کال ختم کرنے کے "
    "لیے نہیں کہیں۔",
    "anything_else_hint": "بکنگ کے لیے 1 دبائیں، بتائیں کیا چاہیے، یا نہیں کہیں۔",
    "next_appointment": "آپ کی اگلی اپوائنٹمنٹ {appt_when}، {appt_doctor} کے ساتھ، "
    "{appt_address} پر ہے۔",
    "no_next_appointment": "مجھے آپ کی کوئی آنے والی اپوائنٹمنٹ نہیں ملی۔",
    "opening_hours": "ہمارے اوقات: {hours}",
    "addresses": "{addresses}",
    "site_address": "{name}: {address}۔",
    "weekdays": "پیر,منگل,بدھ,جمعرات,جمعہ,ہفتہ,اتوار",
    "days_range": "{first} سے {last}",
    "hours_span": "{opens} سے {closes}",
    "hours_open": "{days}، {times}۔",
    "hours_closed": "{days} بند۔",
    "cancel_confirm": "آپ کی اگلی اپوائنٹمنٹ {appt_when}، {appt_doctor} کے ساتھ ہے۔ منسوخ کرنے کے "
    "لیے 1، برقرار رکھنے کے لیے 2 دبائیں۔",
    "cancel_confirm_hint": "منسوخ کرنے کے لیے 1، برقرار رکھنے کے لیے 2 دبائیں۔",
    "move_confirm": "آپ کی اگلی اپوائنٹمنٹ {appt_when}، {appt_doctor} کے ساتھ ہے۔ وقت بدلنے کے لیے "
    "1 دبائیں یا نیا دن اور وقت بتائیں۔ برقرار رکھنے کے لیے 2 دبائیں۔",
    "move_confirm_hint": "وقت بدلنے کے لیے 1، برقرار رکھنے کے لیے 2 دبائیں۔",
    "cancel_requested": "میں نے ریسیپشن سے {appt_when} والی اپوائنٹمنٹ منسوخ کرنے کو کہہ دیا ہے۔",
    "option": "{label} کے لیے {n} دبائیں۔",
    "doctor_option": "{label} کے لیے {n} دبائیں۔",
    "more_names": "مزید ناموں کے لیے {more_key} دبائیں۔",
    "more_doctors": "مزید ڈاکٹروں کے لیے {more_key} دبائیں۔",
    "slot_option": "{label}، {n} دبائیں۔",
    "part_morning": "صبح",
    "part_afternoon": "دوپہر",
    "part_evening": "شام",
    # Appointment reminders (flows/reminders): the call
    "reminder_greet": "السلام علیکم {first_name}، یہ {clinic} ہے۔ آپ کی اپوائنٹمنٹ کی یاد دہانی: "
    "{appointments}، {reminder_address} پر۔",
    "reminder_greet_many": "السلام علیکم {first_name}، یہ {clinic} ہے۔ آپ کی اپوائنٹمنٹس کی یاد "
    "دہانی: {appointments}، {reminder_address} پر۔",
    "reminder_menu": "تصدیق کے لیے 1 دبائیں یا ہاں کہیں۔ وقت بدلنے کے لیے 2 دبائیں۔ منسوخ کرنے کے "
    "لیے 3 دبائیں۔ ریسیپشن کے لیے 0 دبائیں۔",
    "reminder_menu_hint": "تصدیق کے لیے 1، وقت بدلنے کے لیے 2، منسوخ کرنے کے لیے 3، یا ریسیپشن کے "
    "لیے 0 دبائیں۔",
    "reminder_menu_many": "ان کی تصدیق کے لیے 1 دبائیں یا ہاں کہیں۔ وقت بدلنے کے لیے 2 دبائیں۔ "
    "منسوخ کرنے کے لیے 3 دبائیں۔ ریسیپشن کے لیے 0 دبائیں۔",
    "reminder_menu_many_hint": "تصدیق کے لیے 1، وقت بدلنے کے لیے 2، منسوخ کرنے کے لیے 3، یا "
    "ریسیپشن کے لیے 0 دبائیں۔",
    "reminder_confirmed": "شکریہ، ہم آپ کا انتظار کریں گے۔ خدا حافظ۔",
    "reminder_cancel_requested": "میں نے ریسیپشن سے آپ کی اپوائنٹمنٹ منسوخ کرنے کو کہہ دیا ہے۔ "
    "کچھ واضح نہ ہوا تو وہ آپ کو کال کریں گے۔ خدا حافظ۔",
    "reminder_cancel_requested_many": "میں نے ریسیپشن سے آپ کی اپوائنٹمنٹس منسوخ کرنے کو کہہ دیا "
    "ہے۔ کچھ واضح نہ ہوا تو وہ آپ کو کال کریں گے۔ خدا حافظ۔",
    "reminder_move_start": "آئیے آپ کے لیے نیا وقت تلاش کرتے ہیں۔",
    "reminder_move_requested": "میں نے ریسیپشن سے کہہ دیا ہے کہ وہ نئے اوقات طے کرنے کے لیے آپ کو "
    "کال کریں۔ خدا حافظ۔",
    "reminder_voicemail": "یہ {clinic} ہے۔ {first_name} کے لیے {first_when} کی اپوائنٹمنٹ کی یاد "
    "دہانی۔ تبدیلی کے لیے براہ کرم ہمیں کال کریں۔ خدا حافظ۔",
    # Appointment reminders: the text message and its fragments
    "reminder_sms": "{clinic}: آپ کی اپوائنٹمنٹ کی یاد دہانی: {appointments}، {address} پر۔ "
    "تصدیق کے لیے 1، وقت بدلنے کے لیے 2، منسوخ کرنے کے لیے 3 بھیجیں، یا {call_us}۔",
    "reminder_sms_many": "{clinic}: آپ کی اپوائنٹمنٹس کی یاد دہانی: {appointments}، {address} "
    "پر۔ تصدیق کے لیے 1، وقت بدلنے کے لیے 2، منسوخ کرنے کے لیے 3 بھیجیں، یا {call_us}۔",
    "reminder_call_us_on": "ہمیں {phone} پر کال کریں",
    "reminder_call_us": "ہمیں کال کریں",
    "reminder_item": "{when}، {doctor} کے ساتھ",
    "reminder_item_no_doctor": "{when}",
    "reminder_and": "اور",
}

_PART_SPANS = {
    (time(8), time(12)): "صبح", (time(12), time(17)): "دوپہر", (time(17), time(21)): "شام",
}  # fmt: skip
_WEEKDAY = ("پیر", "منگل", "بدھ", "جمعرات", "جمعہ", "ہفتہ", "اتوار")
_MONTH = ("جنوری", "فروری", "مارچ", "اپریل", "مئی", "جون", "جولائی", "اگست", "ستمبر", "اکتوبر",
          "نومبر", "دسمبر")


class Urdu:
    """The Urdu catalogue."""

    code = "ur"
    name = "اردو"
    prompts = PROMPTS

    def say_date(self, day: date, today: date) -> str:
        """ "آج", "کل، منگل 24 نومبر", or "منگل، 24 نومبر"."""
        if day == today:
            return "آج"
        text = f"{_WEEKDAY[day.weekday()]}، {day.day} {_MONTH[day.month - 1]}"
        if day == today + timedelta(days=1):
            return f"کل، {text}"
        if day.year != today.year:
            text += f" {day.year}"
        return text

    def say_time(self, moment: time) -> str:
        """ "صبح 10 بجے", "دوپہر 2 بج کر 20 منٹ"."""
        hour = moment.hour % 12 or 12
        part = "صبح" if moment.hour < 12 else "دوپہر" if moment.hour < 16 else (
            "شام" if moment.hour < 19 else "رات")
        if moment.minute:
            return f"{part} {hour} بج کر {moment.minute} منٹ"
        return f"{part} {hour} بجے"

    def say_when(self, moment: datetime, today: date, *, previous: date | None = None) -> str:
        """Date and time; the date is left out when it equals `previous`."""
        if previous == moment.date():
            return self.say_time(moment.time())
        return f"{self.say_date(moment.date(), today)}، {self.say_time(moment.time())}"

    def say_understood(
        self,
        day: date | None,
        start: time | None,
        end: time | None,
        today: date,
        *,
        doctor: str | None = None,
    ) -> str:
        """What a read-back confirms, from the parsed value: "پیر، 30 نومبر، صبح 10 بجے"."""
        parts = [self.say_date(day, today)] if day is not None else []
        if start is not None and end is None:
            parts.append(self.say_time(start))
        elif start is not None and end is not None:
            part = _PART_SPANS.get((start, end))
            if part:
                parts.append(part)
            elif end >= time(21):
                parts.append(f"{self.say_time(start)} کے بعد")
            elif start <= time(8):
                parts.append(f"{self.say_time(end)} سے پہلے")
            else:
                parts.append(f"{self.say_time(start)} سے {self.say_time(end)} کے درمیان")
        if doctor:
            parts.append(doctor)
        return "، ".join(parts)

    def say_options(self, labels: Sequence[str], *, template: str = "option") -> str:
        """ "کامران کے لیے 1 دبائیں۔ ..."."""
        pattern = PROMPTS[template]
        return " ".join(pattern.format(label=label, n=i) for i, label in enumerate(labels, 1))


CATALOGUE = Urdu()
