"""Text fit for TwiML, HTML and the database: the characters XML 1.0 cannot hold removed.

Control characters (`\\x00`-`\\x08`, `\\x0b`, `\\x0c`, `\\x0e`-`\\x1f`), lone surrogates and the
non-characters U+FFFE/U+FFFF make TwiML malformed (Twilio error 12100), cannot be encoded to
UTF-8 for the database (surrogates) or stored by PostgreSQL at all (`\\x00`). They are removed
where text enters: Clinicea's answers (`ivr.clinicea.models`) and the console's and API's
requests (`CleanRequest`); Twilio's webhooks clean their own fields (`ivr.voice.Inbound`),
after the signature is checked over the raw values.
"""

from __future__ import annotations

import re
from typing import Any

from flask import Request
from werkzeug.datastructures import ImmutableMultiDict, MultiDict
from werkzeug.utils import cached_property

__all__ = ["CleanRequest", "clean", "clean_json"]

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


def _clean_multi(data: Any) -> ImmutableMultiDict[str, str]:
    return ImmutableMultiDict(
        [(clean(k), clean(v) if isinstance(v, str) else v) for k, v in data.items(multi=True)])


class CleanRequest(Request):
    """Flask's request, its query arguments, form fields and JSON body cleaned (`clean`).

    Not under `/voice/`: Twilio signs the raw values, so the webhooks clean their own fields
    after the signature check.
    """

    def _raw(self) -> bool:
        return self.path.startswith("/voice/")

    @cached_property
    def args(self) -> MultiDict[str, str]:
        """The query arguments, cleaned."""
        raw = super().args
        return raw if self._raw() else _clean_multi(raw)

    def _load_form_data(self) -> None:
        super()._load_form_data()
        if not self._raw():
            self.__dict__["form"] = _clean_multi(self.__dict__["form"])

    def get_json(self, *args: Any, **kwargs: Any) -> Any:
        """The JSON body (see Flask), every string in it cleaned."""
        value = super().get_json(*args, **kwargs)
        return value if self._raw() else clean_json(value)
