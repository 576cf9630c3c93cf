"""The web app's request class: console and API input without what XML cannot hold.

`CleanRequest` is Flask's request whose query arguments, form fields and JSON body pass
through `ivr.plaintext.clean` once, where they enter (`create_app` sets it as the app's request
class).
"""

from __future__ import annotations

from typing import Any

from flask import Request
from werkzeug.datastructures import ImmutableMultiDict, MultiDict
from werkzeug.utils import cached_property

from ivr.plaintext import clean, clean_json

__all__ = ["CleanRequest"]


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
