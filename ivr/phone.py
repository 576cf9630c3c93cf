"""Phone numbers: parse what callers and Twilio give us into one `PhoneNumber` value.

What `parse_phone` accepts (anything else gives None, never an exception):

* International form: `+92 321 6315551`, `0092 321 6315551` (a leading `00` is read as the
  international prefix in every region), or the region's own international dialling prefix
  (`011 44 ...` in the US). Accepted when phonenumbers says the number is valid, or at least
  *possible* (right length for that country): caller IDs come from the carrier in E.164 and
  number ranges change faster than the metadata, so we trust an explicit country code on length.
* National form in the clinic's region: `0321 6315551`, `03216315551`, and without the trunk
  prefix `321-6315551` (we retry with the region's trunk prefix when the bare digits are not
  valid). Must be a *valid* number: national input is ambiguous, so length alone is not enough.
* Country code without the plus: `92 321 6315551`, tried last, and only when it gives a valid
  number.
* Separators: whitespace, `-`, `.`, `(`, `)`, `/`. ASCII digits only. Any letter (vanity
  spellings like `1800 FLOWERS`, extensions like `ext 12`) or other character gives None:
  phonenumbers would silently turn letters into digits, and a caller ID with letters is not a
  number we should call back.
* Withheld caller IDs (`anonymous`, Twilio's keypad spellings such as `+266696687`, `client:`
  and `sip:` callers, empty input) are "no number": None, see `is_withheld`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberFormat

# Words carriers and Twilio put in the From field when the caller hides their number.
WITHHELD_WORDS = frozenset(
    {"anonymous", "restricted", "unknown", "private", "unavailable", "blocked"}
)

# Twilio spells those words on a keypad and sends them as if they were E.164 numbers:
# ANONYMOUS, RESTRICTED, UNAVAILABLE, UNKNOWN, BLOCKED. Some are *possible* real numbers
# (+7 378 ...), so they must be caught before parsing.
WITHHELD_KEYPAD_SPELLINGS = frozenset(
    {"266696687", "7378742833", "86282452253", "8656696", "2562533"}
)

# Non-phone callers (Twilio Client, SIP endpoints) have an identity, not a number.
NON_PHONE_SCHEMES = ("client:", "sip:")

_SEPARATORS = re.compile(r"[\s\-.()/]+")
_MAX_DIGITS = 17  # 15 digits of E.164 plus a "00" prefix; anything longer is not a number


@dataclass(frozen=True, repr=False)
class PhoneNumber:
    """A parsed phone number. `str()` and `repr()` are masked; use `.e164` on the wire."""

    e164: str  # "+923216315551"
    country_code: int  # 92
    national: str  # national significant number, no trunk 0: "3216315551"

    @property
    def masked(self) -> str:
        """For logs: country code and last 3 digits only, e.g. "+92*******551"."""
        hidden = max(len(self.national) - 3, 0)
        return f"{self.country_prefix}{'*' * hidden}{self.national[-3:]}"

    @property
    def country_prefix(self) -> str:
        """The country code with a plus, e.g. "+92" (Clinicea's `countrycode`)."""
        return f"+{self.country_code}"

    def __str__(self) -> str:
        # Masked on purpose: an f-string or %r in a log line must not leak the number.
        return self.masked

    def __repr__(self) -> str:
        return f"PhoneNumber({self.masked})"


def is_withheld(raw: str | None) -> bool:
    """True when the caller ID carries no usable number.

    Empty/None, the withheld words in any case, Twilio's keypad spellings of them (with or
    without the plus), and `client:` / `sip:` callers.
    """
    if raw is None:
        return True
    text = raw.strip()
    if not text:
        return True
    lowered = text.lower()
    if lowered in WITHHELD_WORDS or lowered.startswith(NON_PHONE_SCHEMES):
        return True
    compact = _SEPARATORS.sub("", text).removeprefix("+")
    return compact in WITHHELD_KEYPAD_SPELLINGS


def parse_phone(raw: str | None, region: str) -> PhoneNumber | None:
    """Parse a caller ID or a typed number; None when there is no usable number.

    `region` (ISO 3166 code, e.g. "PK") is used for national-format input. See the module
    docstring for exactly what is accepted.
    """
    if is_withheld(raw):
        return None
    assert raw is not None  # is_withheld covers None; this narrows the type
    text = raw.strip()
    has_plus = text.startswith("+")
    body = text[1:] if has_plus else text
    if not body or any(not (ch.isascii() and ch.isdigit()) for ch in _SEPARATORS.sub("", body)):
        return None  # letters, a second "+", "*", "#", non-ASCII digits...
    digits = _SEPARATORS.sub("", body)
    if not digits or len(digits) > _MAX_DIGITS:
        return None
    if has_plus:
        return _international(digits)
    if digits.startswith("00"):
        return _international(digits[2:])
    return _national(digits, region)


def digits_to_phone(digits: str | None, region: str) -> PhoneNumber | None:
    """Parse a number the caller keyed on the keypad (same rules as `parse_phone`).

    A trailing `#` (Twilio's default finish key) is ignored; `*` or anything else gives None.
    """
    if digits is None:
        return None
    return parse_phone(digits.strip().removesuffix("#"), region)


def mask(raw: str | None, region: str | None = None) -> str:
    """A log-safe rendering of any caller-supplied string, even garbage.

    Never contains more than the last 3 digits: a parseable number becomes "+92*******551",
    anything else with digits becomes "*" per hidden digit plus the last 3 (all stars when
    there are fewer than 7 digits), and input without digits becomes "<redacted>" (it could be
    a name). Withheld caller IDs become "<withheld>"; `client:`/`sip:` keep only the scheme.
    """
    if raw is None or not raw.strip():
        return "<none>"
    text = raw.strip()
    lowered = text.lower()
    for scheme in NON_PHONE_SCHEMES:
        if lowered.startswith(scheme):
            return f"{scheme}***"
    if is_withheld(text):
        return "<withheld>"
    number = parse_phone(text, region) if region else _parse_international_only(text)
    if number is not None:
        return number.masked
    digits = "".join(ch for ch in text if ch.isdigit())
    if not digits:
        return "<redacted>"
    plus = "+" if text.startswith("+") else ""
    if len(digits) < 7:
        return plus + "*" * len(digits)
    return plus + "*" * (len(digits) - 3) + digits[-3:]


def _parse_international_only(text: str) -> PhoneNumber | None:
    # Without a region only "+..." / "00..." input can be read; "ZZ" is phonenumbers' "unknown".
    if text.startswith("+") or text.startswith("00"):
        return parse_phone(text, "ZZ")
    return None


def _international(digits: str) -> PhoneNumber | None:
    number = _try_parse("+" + digits, None)
    if number is None:
        return None
    if phonenumbers.is_valid_number(number) or phonenumbers.is_possible_number(number):
        return _to_value(number)
    return None


def _national(digits: str, region: str) -> PhoneNumber | None:
    candidates: list[tuple[str, str | None]] = [(digits, region)]
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region.upper())
    trunk = metadata.national_prefix if metadata is not None else None
    if trunk and not digits.startswith(trunk):
        # "321-6315551": phonenumbers usually copes, but some regions' patterns want the
        # trunk prefix before they recognise a national number.
        candidates.append((trunk + digits, region))
    # "92 321 6315551": a country code typed without the plus. Tried last so a valid national
    # reading always wins.
    candidates.append(("+" + digits, None))
    for text, reg in candidates:
        number = _try_parse(text, reg)
        if number is not None and _is_valid(number):
            return _to_value(number)
    return None


def _is_valid(number: phonenumbers.PhoneNumber) -> bool:
    return phonenumbers.is_possible_number(number) and phonenumbers.is_valid_number(number)


def _try_parse(text: str, region: str | None) -> phonenumbers.PhoneNumber | None:
    try:
        return phonenumbers.parse(text, region.upper() if region else None)
    except NumberParseException:
        return None


def _to_value(number: phonenumbers.PhoneNumber) -> PhoneNumber | None:
    national = phonenumbers.national_significant_number(number)
    if not national or number.country_code is None:
        return None
    return PhoneNumber(
        e164=phonenumbers.format_number(number, PhoneNumberFormat.E164),
        country_code=int(number.country_code),
        national=national,
    )
