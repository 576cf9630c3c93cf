"""Per-language vocabularies: surface words and phrases mapped to canonical English tokens.

Every parser works on canonical tokens, so a second language only adds rows here.
Canonical tokens: `wd0`..`wd6` (Monday..Sunday), `m1`..`m12` (months), digit strings,
`N#` (an ordinal day, "5#"), and English words (`today`, `tomorrow`, `dayafter`, `next`, `this`,
`morning`, `afternoon`, `evening`, `night`, `noon`, `midnight`, `am`, `pm`, `oclock`,
`halfpast`, `quarterpast`, `quarterto`, `date`, `yes`, `no`, `person`...).

Languages: "en" (always active: callers mix English words into any language) and "ur" (Urdu,
in Urdu script as Twilio's ur-PK recogniser writes it, and in common Roman Urdu spellings).
"""

from __future__ import annotations

WEEKDAY_EN = {
    "monday": 0, "mon": 0, "mondays": 0, "munday": 0,
    "tuesday": 1, "tues": 1, "tue": 1, "tuesdays": 1, "chewsday": 1,
    "wednesday": 2, "wed": 2, "weds": 2, "wednesdays": 2, "wensday": 2, "wendsday": 2,
    "wednes day": 2, "wends day": 2,
    "thursday": 3, "thurs": 3, "thur": 3, "thu": 3, "thursdays": 3, "thirsday": 3,
    "thurday": 3, "thurs day": 3,
    "friday": 4, "fri": 4, "fridays": 4, "fryday": 4, "fri day": 4,
    "saturday": 5, "sat": 5, "saturdays": 5, "satur day": 5, "saterday": 5,
    "sunday": 6, "sundays": 6, "sun day": 6,
}  # fmt: skip

MONTH_EN = {
    "january": 1, "jan": 1, "february": 2, "feb": 2, "febuary": 2, "march": 3,
    "april": 4, "apr": 4, "may": 5, "june": 6, "jun": 6, "july": 7, "jul": 7,
    "august": 8, "aug": 8, "september": 9, "sept": 9, "sep": 9, "october": 10, "oct": 10,
    "november": 11, "nov": 11, "december": 12, "dec": 12, "decemeber": 12,
}  # fmt: skip

ORDINAL_EN = {
    "first": 1, "second": 2, "third": 3, "fourth": 4, "forth": 4, "fifth": 5, "fith": 5,
    "sixth": 6, "seventh": 7, "eighth": 8, "eight th": 8, "ninth": 9, "nineth": 9,
    "tenth": 10, "eleventh": 11, "twelfth": 12, "twelveth": 12, "thirteenth": 13,
    "fourteenth": 14, "fifteenth": 15, "sixteenth": 16, "seventeenth": 17, "eighteenth": 18,
    "nineteenth": 19, "twentieth": 20, "thirtieth": 30,
}  # fmt: skip

UNITS_EN = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7,
    "eight": 8, "nine": 9,
}  # fmt: skip
TEENS_EN = {
    "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19,
}  # fmt: skip
TENS_EN = {
    "twenty": 20, "thirty": 30, "forty": 40, "fourty": 40, "fifty": 50, "sixty": 60,
    "seventy": 70, "eighty": 80, "ninety": 90,
}  # fmt: skip

# Recogniser mishearings that are numbers wherever a number is expected.
SOUNDALIKE_UNITS = {"won": 1, "to": 2, "too": 2, "tu": 2, "tree": 3, "for": 4, "fore": 4,
                    "ate": 8, "nein": 9}  # fmt: skip
# Soundalikes safe to convert anywhere (no ordinary English meaning in a booking call).
ALWAYS_NUMBERS = {"tutu": "22", "twentytwo": "22"}

# English phrases (space-separated normalised words) -> canonical tokens.
PHRASES_EN: dict[str, str] = {
    "to morrow": "tomorrow", "tomorow": "tomorrow", "tommorow": "tomorrow",
    "tommorrow": "tomorrow", "tomoro": "tomorrow", "tomorro": "tomorrow", "2morrow": "tomorrow",
    "tmrw": "tomorrow", "tomorrows": "tomorrow", "two morrow": "tomorrow",
    "to day": "today", "2day": "today", "tonight": "today night",
    "the day after tomorrow": "dayafter", "day after tomorrow": "dayafter",
    "the day after": "dayafterof", "day after": "dayafterof", "overmorrow": "dayafter",
    "a m": "am", "a.m": "am", "p m": "pm", "p.m": "pm", "in the morning": "morning",
    "in the afternoon": "afternoon", "in the evening": "evening", "at night": "night",
    "o'clock": "oclock", "o clock": "oclock", "o'clocks": "oclock", "a clock": "oclock",
    "half past": "halfpast", "half passed": "halfpast", "half pass": "halfpast",
    "quarter past": "quarterpast", "quarter passed": "quarterpast", "quarter after": "quarterpast",
    "a quarter past": "quarterpast", "quarter to": "quarterto", "quarter of": "quarterto",
    "a quarter to": "quarterto", "quarter till": "quarterto",
    "twelve noon": "noon", "12 noon": "noon", "12 midday": "noon", "twelve midday": "noon",
    "first thing": "morning", "first thing in the morning": "morning", "mid day": "noon",
    "midday": "noon", "lunchtime": "noon",
    "lunch time": "noon", "mid night": "midnight",
    "this coming": "this", "coming": "this", "upcoming": "this", "the coming": "this",
    "the next": "next", "next week's": "next", "following": "next",
    "yesterday": "past", "fortnight's": "fortnight", "week's": "week",
    "this time next week": "a week today", "same time next week": "a week today",
    "same day next week": "a week today", "this day next week": "a week today",
}  # fmt: skip

# Urdu: native script and Roman Urdu spellings.
NUMBERS_UR = {
    0: ["صفر", "sifar", "sifr", "zero"],
    1: ["ایک", "ek", "aik", "ik"], 2: ["دو", "do"], 3: ["تین", "teen", "tin"],
    4: ["چار", "char", "chaar"], 5: ["پانچ", "panch", "paanch", "paanj"],
    6: ["چھ", "چھے", "chay", "chhe", "che", "chhay"], 7: ["سات", "saat", "sat"],
    8: ["آٹھ", "aath", "aat", "ath"], 9: ["نو", "nau"], 10: ["دس", "das", "dus"],
    11: ["گیارہ", "gyarah", "gyara", "giyarah"], 12: ["بارہ", "barah", "bara", "baara"],
    13: ["تیرہ", "terah", "tera"], 14: ["چودہ", "chaudah", "chauda", "choda"],
    15: ["پندرہ", "pandrah", "pandra"], 16: ["سولہ", "solah", "sola"],
    17: ["سترہ", "satrah", "satra"], 18: ["اٹھارہ", "atharah", "athara", "attharah"],
    19: ["انیس", "unnees", "unees", "unnis"], 20: ["بیس", "bees", "bis"],
    21: ["اکیس", "ikkees", "ikees", "ikkis"], 22: ["بائیس", "بایئس", "baees", "bais", "baais"],
    23: ["تئیس", "teyees", "teis", "tais"], 24: ["چوبیس", "chaubees", "chobees", "chaubis"],
    25: ["پچیس", "pachees", "pachchees", "pachis"], 26: ["چھبیس", "chhabbees", "chabees"],
    27: ["ستائیس", "sattaees", "sattais", "sataees"],
    28: ["اٹھائیس", "atthaees", "athaees", "athais"], 29: ["انتیس", "untees", "untis"],
    30: ["تیس", "tees", "tis"], 31: ["اکتیس", "iktees", "ikattees", "iktis"],
    40: ["چالیس", "chalees", "chalis"], 45: ["پینتالیس", "paintalees", "paintalis"],
    50: ["پچاس", "pachaas", "pachas"],
}  # fmt: skip

PHRASES_UR: dict[str, str] = {
    # days
    "آج": "today", "aaj": "today", "aj": "today", "کل": "tomorrow", "kal": "tomorrow",
    "پرسوں": "dayafter", "parson": "dayafter", "parsoon": "dayafter", "parso": "dayafter",
    "اگلے": "next", "اگلا": "next", "اگلی": "next", "agle": "next", "agla": "next",
    "agli": "next", "aglay": "next", "اس": "this", "is": "this", "iss": "this",
    "آنے والے": "this", "aane wale": "this", "anay walay": "this",
    "پیر": "wd0", "peer": "wd0", "pir": "wd0", "سوموار": "wd0", "somvar": "wd0",
    "somwar": "wd0", "منگل": "wd1", "mangal": "wd1", "بدھ": "wd2", "budh": "wd2",
    "bodh": "wd2", "جمعرات": "wd3", "jumeraat": "wd3", "jumerat": "wd3", "jumairat": "wd3",
    "jumeraat ko": "wd3", "جمعہ": "wd4", "juma": "wd4", "jumma": "wd4", "jumah": "wd4",
    "ہفتہ": "wd5", "ہفتے": "wd5", "hafta": "wd5", "hafte": "wd5", "haftay": "wd5",
    "اتوار": "wd6", "itwar": "wd6", "itwaar": "wd6", "atwar": "wd6",
    "جنوری": "m1", "فروری": "m2", "مارچ": "m3", "اپریل": "m4", "مئی": "m5", "جون": "m6",
    "جولائی": "m7", "اگست": "m8", "ستمبر": "m9", "اکتوبر": "m10", "نومبر": "m11",
    "دسمبر": "m12", "تاریخ": "date", "tarikh": "date", "tareekh": "date", "tareek": "date",
    # times
    "صبح": "morning", "subah": "morning", "subha": "morning", "dopahar": "afternoon",
    "دوپہر": "afternoon", "dopehar": "afternoon", "سہ پہر": "afternoon",
    "شام": "evening", "shaam": "evening", "sham": "evening", "رات": "night", "raat": "night",
    "بجے": "oclock", "baje": "oclock", "bajay": "oclock", "bje": "oclock",
    "ساڑھے": "halfpast", "saade": "halfpast", "sarhe": "halfpast", "sadhe": "halfpast",
    "saarhe": "halfpast", "سوا": "quarterpast", "sawa": "quarterpast", "sava": "quarterpast",
    "پونے": "quarterto", "paune": "quarterto", "pone": "quarterto", "پونے تین": "2:45",
    "ڈھائی": "2:30", "dhai": "2:30", "dhaai": "2:30", "ڈیڑھ": "1:30", "derh": "1:30",
    "dedh": "1:30",
    # yes / no
    "جی ہاں": "yes", "ji haan": "yes", "jee haan": "yes", "ji han": "yes", "ہاں": "yes",
    "haan": "yes", "han": "yes", "haa": "yes", "ہاں جی": "yes", "جی": "ji", "ji": "ji",
    "jee": "ji", "بالکل": "yes", "bilkul": "yes", "ٹھیک ہے": "okay", "theek hai": "okay",
    "thik hai": "okay", "theek": "okay", "ٹھیک": "okay", "صحیح": "correct", "sahi": "correct",
    "sahee": "correct", "درست": "correct", "durust": "correct", "کر دیں": "go ahead",
    "kar dein": "go ahead", "kar do": "go ahead", "جی نہیں": "no", "ji nahi": "no",
    "ٹھیک نہیں": "no", "theek nahi": "no", "صحیح نہیں": "no", "sahi nahi": "no",
    "نہیں": "no", "nahi": "no", "nahin": "no", "nai": "no", "nahi ji": "no", "نہ": "no",
    "na": "no", "غلط": "wrong", "ghalat": "wrong", "galat": "wrong", "بدل": "change",
    "بدلیں": "change", "badal": "change", "badlo": "change", "badlein": "change",
    "تبدیل": "change", "tabdeel": "change", "بالکل نہیں": "no", "bilkul nahi": "no",
    "bilkul nahin": "no",
    # weeks ("ہفتہ" is also Saturday: only these phrases make it a week)
    "اگلے ہفتے": "next week", "agle hafte": "next week", "aglay haftay": "next week",
    "ہفتے بعد": "week later", "hafte baad": "week later", "haftay baad": "week later",
    "ہفتے کے بعد": "week later", "ہفتوں بعد": "weeks later", "hafton baad": "weeks later",
    "دن بعد": "days later", "din baad": "days later", "دن کے بعد": "days later",
    # time windows, said after the time: "4 بجے کے بعد", "11 سے پہلے", "2 سے 3 کے درمیان"
    "کے بعد": "post_after", "ke baad": "post_after", "بعد": "post_after", "baad": "post_after",
    "سے پہلے": "post_before", "se pehle": "post_before", "se pehlay": "post_before",
    "کے درمیان": "post_between", "ke darmiyan": "post_between", "درمیان": "post_between",
    "تک": "post_until", "tak": "post_until", "سے": "se",
    # people, menus, languages
    "ریسپشن": "reception", "ریسیپشن": "reception", "ریسپشنسٹ": "receptionist",
    "ایجنٹ": "agent", "آپریٹر": "operator", "انسان": "human", "insaan": "human",
    "بندے": "person", "banday": "person", "bande": "person", "آدمی": "person",
    "aadmi": "person", "kisi se baat": "someone", "کسی سے بات": "someone",
    "نمائندے": "representative", "numainde": "representative",
    "اپوائنٹمنٹ": "appointment", "اپائنٹمنٹ": "appointment", "بکنگ": "booking",
    "بک": "book", "وقت": "appointment", "waqt": "appointment", "ڈاکٹر": "doctor",
    "daktar": "doctor", "انگریزی": "english", "انگلش": "english", "angrezi": "english",
    "angrezee": "english", "اردو": "urdu",
}  # fmt: skip
for _n, _words in NUMBERS_UR.items():
    for _w in _words:
        PHRASES_UR.setdefault(_w, str(_n))

FILLERS_EN = {
    "uh", "uhh", "um", "umm", "uhm", "er", "erm", "hmm", "hm", "mm", "ah", "well", "like",
    "so", "please", "just", "actually", "i", "i'd", "id", "want", "would", "to",
    "the", "a", "an", "on", "at", "of", "for", "in", "is", "it", "it's", "its", "be", "can",
    "could", "we", "you", "me", "my", "maybe", "about", "around", "say", "lets", "let's",
    "book", "appointment", "make", "come", "there", "then", "that", "this", "and", "or",
    "how", "what", "with", "by", "thanks", "thank", "ok", "okay", "yes", "yeah", "sure",
    "great", "good", "fine", "time", "day", "date", "one", "any", "possible", "if",
}  # fmt: skip

FILLERS_UR = {
    "کو", "ko", "مجھے", "mujhe", "chahiye", "چاہیے", "ہے", "hai", "میں", "main", "mein",
    "کا", "کی", "کے", "ka", "ki", "ke", "سے", "se", "والا", "wala", "wali", "والی",
    "براہ", "کرم", "مہربانی", "meherbani", "plz", "please", "تو", "to", "toh", "بھی",
    "bhi", "اچھا", "acha", "achha", "ٹائم", "time", "یہ", "ye", "yeh", "وہ", "wo",
}  # fmt: skip

PERSON_WORDS = {
    "agent", "agents", "reception", "receptionist", "person", "operator", "human", "someone",
    "somebody", "representative", "staff", "nurse", "real", "people", "anyone", "anybody",
    "receptionists", "front desk", "customer service", "speak", "talk",
}  # fmt: skip

LANGUAGE_NAMES = {
    "english": "en", "inglish": "en", "urdu": "ur", "oordu": "ur", "hindi": "hi",
    "arabic": "ar",
}  # fmt: skip

# Urdu yes/no words callers drop into an English answer ("Haan ji", "Theek hai", "Nahi, nahi",
# "Bilkul"), in Roman Urdu as the en-US/en-IN recognisers write them and in Urdu script; only
# the yes/no parser reads them (as whole-answer words they never clash with English ones).
YES_NO_LOANS: dict[str, str] = {
    "haan": "yes", "han": "yes", "haa": "yes", "haanji": "yes", "hanji": "yes", "haan ji": "yes",
    "han ji": "yes", "ji haan": "yes", "jee haan": "yes", "ji han": "yes", "ji": "ji",
    "jee": "ji", "jii": "ji", "bilkul": "bilkul absolutely", "zaroor": "yes", "zarur": "yes",
    "theek": "okay", "thik": "okay", "theek hai": "okay", "thik hai": "okay", "teek": "okay",
    "sahi": "correct", "sahih": "correct", "acha": "okay", "achha": "okay", "accha": "okay",
    "nahi": "nahi", "nahin": "nahi", "nai": "nahi", "na": "nahi", "ji nahi": "nahi",
    "jee nahi": "nahi", "ghalat": "wrong", "galat": "wrong", "mat": "nahi",
    "ہاں": "yes", "جی": "ji", "بالکل": "bilkul absolutely", "ٹھیک": "okay", "صحیح": "correct",
    "نہیں": "nahi", "غلط": "wrong", "hai": "", "ہے": "",
}  # fmt: skip

PHRASES: dict[str, dict[str, str]] = {"en": PHRASES_EN, "ur": PHRASES_UR}
FILLERS: dict[str, set[str]] = {"en": FILLERS_EN, "ur": FILLERS_UR}
LANGUAGES = ("en", "ur")
