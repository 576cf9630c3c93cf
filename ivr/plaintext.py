"""Text fit for TwiML, HTML and the database: the characters XML 1.0 cannot hold removed.

Control characters (`\\x00`-`\\x08`, `\\x0b`, `\\x0c`, `\\x0e`-`\\x1f`), lone surrogates and the
non-characters U+FFFE/U+FFFF make TwiML malformed (Twilio error 12100), cannot be encoded to
UTF-8 for the database (surrogates) or stored by PostgreSQL at all (`\\x00`). They are removed
where text enters: Clinicea's answers (`ivr.clinicea.models`) and the console's and API's
requests (`ivr.webinput.CleanRequest`); Twilio's webhooks clean their own fields
(`ivr.calls.Inbound`), after the signature is checked over the raw values. No Flask here: the
Clinicea client uses it in processes that have no web app (`ivr worker`).
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["clean", "clean_json"]

_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_MAX_DEPTH = 32  # no request we read nests deeper; deeper parts are dropped, not walked


def clean(text: str) -> str:
    """`text` without the characters XML 1.0 cannot hold."""
    return _NOT_XML.sub("", text)


def clean_json(value: Any, depth: int = 0) -> Any:
    """A parsed JSON value with every string (keys too) cleaned."""
    if isinstance(value, str):
        return clean(value)
    if depth >= _MAX_DEPTH:
        return None
    if isinstance(value, dict):
        return {clean(str(k)): clean_json(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [clean_json(v, depth + 1) for v in value]
    return value
