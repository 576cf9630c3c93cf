"""Phone number parsing, withheld caller IDs and masking (ivr/phone.py)."""

from __future__ import annotations

import dataclasses

import pytest

from ivr.phone import PhoneNumber, digits_to_phone, is_withheld, mask, parse_phone

PK = ("+923216315551", "3216315551")
IN = ("+919876543210", "9876543210")
AE = ("+971501234567", "501234567")
GB = ("+447911123456", "7911123456")
US = ("+12124567890", "2124567890")

# (raw input, region, expected (e164, national) or None)
TABLE = [
    # Pakistan: national with and without trunk 0, international, 00, bare country code
    ("0321 6315551", "PK", PK),
    ("03216315551", "PK", PK),
    ("321-6315551", "PK", PK),
    ("3216315551", "PK", PK),
    ("+92 321 6315551", "PK", PK),
    ("+923216315551", "PK", PK),
    ("0092 321 6315551", "PK", PK),
    ("92 321 6315551", "PK", PK),
    ("  0321-631-5551  ", "PK", PK),
    ("021 3555 0100", "PK", ("+922135550100", "2135550100")),
    ("0321 631", "PK", None),  # too short
    ("+92 321", "PK", None),  # too short, international
    ("0321 63155519999", "PK", None),  # too long
    ("0321 63l5551", "PK", None),  # a letter l for a one
    ("0321 6315551 ext 2", "PK", None),
    ("++923216315551", "PK", None),
    ("*123#", "PK", None),
    # India
    ("098765 43210", "IN", IN),
    ("98765-43210", "IN", IN),
    ("+91 98765 43210", "IN", IN),
    ("0091 98765 43210", "IN", IN),
    ("91 98765 43210", "IN", IN),
    ("022 2345 6789", "IN", ("+912223456789", "2223456789")),
    ("98765", "IN", None),
    # United Arab Emirates
    ("050 123 4567", "AE", AE),
    ("50 123 4567", "AE", AE),
    ("+971 50 123 4567", "AE", AE),
    ("00971501234567", "AE", AE),
    ("971 50 123 4567", "AE", AE),
    ("04 234 5678", "AE", ("+97142345678", "42345678")),
    ("050 12", "AE", None),
    # United Kingdom
    ("07911 123456", "GB", GB),
    ("7911 123456", "GB", GB),
    ("+44 7911 123456", "GB", GB),
    ("0044 7911 123456", "GB", GB),
    ("44 7911 123456", "GB", GB),
    ("(020) 7946-0958", "GB", ("+442079460958", "2079460958")),
    ("07911", "GB", None),
    # United States
    ("(212) 456-7890", "US", US),
    ("212.456.7890", "US", US),
    ("1 212 456 7890", "US", US),
    ("+1 212-456-7890", "US", US),
    ("001 212 456 7890", "US", US),
    ("011 44 7911 123456", "US", GB),  # the US international prefix
    ("12345", "US", None),
    ("1800 FLOWERS", "US", None),  # vanity letters are not converted
    ("1-800-356-9377x12", "US", None),
    # The caller's own country code wins over the clinic's region
    ("+44 7911 123456", "PK", GB),
    ("+923216315551", "US", PK),
    # Withheld and non-phone callers
    (None, "PK", None),
    ("", "PK", None),
    ("   ", "PK", None),
    ("anonymous", "PK", None),
    ("Anonymous", "GB", None),
    (" RESTRICTED ", "US", None),
    ("unknown", "PK", None),
    ("Private", "PK", None),
    ("unavailable", "IN", None),
    ("BLOCKED", "AE", None),
    ("+266696687", "PK", None),
    ("+7378742833", "PK", None),
    ("+86282452253", "PK", None),
    ("+8656696", "PK", None),
    ("+2562533", "PK", None),
    ("client:alice", "PK", None),
    ("client:+923216315551", "PK", None),
    ("sip:+923216315551@pbx.example.com", "PK", None),
    ("SIP:alice@example.com", "PK", None),
    ("abc", "PK", None),
]


@pytest.mark.parametrize(("raw", "region", "expected"), TABLE)
def test_parse_phone_table(raw: str | None, region: str, expected: tuple[str, str] | None) -> None:
    number = parse_phone(raw, region)
    if expected is None:
        assert number is None
    else:
        assert number is not None
        assert (number.e164, number.national) == expected
        assert number.e164 == f"+{number.country_code}{number.national}"


def test_table_is_broad() -> None:
    assert len(TABLE) >= 40
    assert {region for _, region, _ in TABLE} >= {"PK", "IN", "AE", "GB", "US"}


@pytest.mark.parametrize(
    "raw",
    [
        None, "", " ", "anonymous", "ANONYMOUS", " Restricted\n", "unknown", "private",
        "unavailable", "blocked", "+266696687", "266696687", "+7378742833", "+86282452253",
        "+8656696", "+2562533", "client:bob", "sip:100@pbx",
    ],
)
def test_withheld_forms(raw: str | None) -> None:
    assert is_withheld(raw)
    assert parse_phone(raw, "PK") is None


@pytest.mark.parametrize("raw", ["+923216315551", "0321 6315551", "garbage", "+44"])
def test_not_withheld(raw: str) -> None:
    assert not is_withheld(raw)


def test_phone_number_fields() -> None:
    number = parse_phone("0321 6315551", "PK")
    assert number == PhoneNumber(e164="+923216315551", country_code=92, national="3216315551")
    assert number.country_prefix == "+92"
    assert number.masked == "+92*******551"
    with pytest.raises(dataclasses.FrozenInstanceError):
        number.e164 = "+1"  # type: ignore[misc]


def test_str_and_repr_are_masked() -> None:
    number = parse_phone("+923216315551", "PK")
    assert number is not None
    assert "3216315551" not in str(number)
    assert "3216315551" not in repr(number)
    assert "3216315551" not in f"{number}"


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("03216315551", "PK", "+923216315551"),
        ("3216315551", "PK", "+923216315551"),
        ("00923216315551", "PK", "+923216315551"),
        ("03216315551#", "PK", "+923216315551"),
        ("2124567890", "US", "+12124567890"),
        ("07911123456", "GB", "+447911123456"),
        ("0321631", "PK", None),
        ("0321*6315551", "PK", None),
        ("", "PK", None),
        (None, "PK", None),
    ],
)
def test_digits_to_phone(raw: str | None, region: str, expected: str | None) -> None:
    number = digits_to_phone(raw, region)
    assert (number.e164 if number else None) == expected


@pytest.mark.parametrize(("raw", "region", "expected"), [r for r in TABLE if r[2] is not None])
def test_masked_never_shows_the_national_number(
    raw: str, region: str, expected: tuple[str, str]
) -> None:
    number = parse_phone(raw, region)
    assert number is not None
    national = expected[1]
    assert national not in number.masked
    assert number.masked.startswith(number.country_prefix)
    assert number.masked.endswith(national[-3:])
    assert number.masked.count("*") == len(national) - 3
    for rendered in (mask(raw), mask(raw, region)):
        assert national not in rendered
        assert national[:-3] not in rendered.replace("*", "")


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("+923216315551", None, "+92*******551"),
        ("0092 321 6315551", None, "+92*******551"),
        ("0321 6315551", "PK", "+92*******551"),
        ("0321 6315551", None, "********551"),
        ("call me on 0321-6315551 please", None, "********551"),
        ("+92 321", None, "+*****"),
        ("12", None, "**"),
        ("garbage", None, "<redacted>"),
        ("Ayesha Khan", None, "<redacted>"),
        (None, None, "<none>"),
        ("   ", None, "<none>"),
        ("anonymous", None, "<withheld>"),
        ("+266696687", None, "<withheld>"),
        ("client:alice", None, "client:***"),
        ("sip:+923216315551@pbx.example.com", None, "sip:***"),
    ],
)
def test_mask(raw: str | None, region: str | None, expected: str) -> None:
    assert mask(raw, region) == expected


def test_mask_keeps_at_most_three_digits_of_garbage() -> None:
    garbage = "x9x8x7x6x5x4x3x2x1"
    rendered = mask(garbage)
    assert sum(ch.isdigit() for ch in rendered) == 3
    assert "x" not in rendered
