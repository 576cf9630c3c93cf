"""Errors the Clinicea client raises. Every failure of a call ends in one of these.

```
CliniceaError                    .operation, .status
├── CliniceaUnavailable          timeout, connection error, 5xx, 429/503 after retries,
│                                an answer we cannot read (malformed JSON, required field missing)
├── CliniceaRejected             400 (or another 4xx), .message = its plain-text or JSON message
├── CliniceaAuthError            credentials refused (login 401, or 401 again after one re-login)
└── CliniceaOutcomeUnknown       a write was sent and no usable answer came back: it may or
                                 may not be stored (look it up before sending it again)
```

Messages name the operation and the HTTP status only: never a phone number, a name or a URL
(URLs carry the token, the password and phone numbers). A rejection's server text is kept in
`CliniceaRejected.message`, not in `str(error)`, for the same reason.
"""

from __future__ import annotations

__all__ = [
    "CliniceaAuthError",
    "CliniceaError",
    "CliniceaOutcomeUnknown",
    "CliniceaRejected",
    "CliniceaUnavailable",
]


class CliniceaError(Exception):
    """Base of every Clinicea client error.

    `operation` is the logical operation name ("search", "book", ...); `status` is the HTTP
    status code of the last answer, or None when no answer came (timeout, connection error).
    """

    def __init__(self, what: str, *, operation: str, status: int | None = None) -> None:
        self.operation = operation
        self.status = status
        code = f"HTTP {status}" if status is not None else "no response"
        super().__init__(f"clinicea {operation}: {what} ({code})")


class CliniceaUnavailable(CliniceaError):
    """Clinicea could not be reached or could not answer usefully; trying later may work."""


class CliniceaRejected(CliniceaError):
    """Clinicea refused the request (400 or another 4xx); sending it again will not help.

    `message` is the server's explanation (plain text, or the `Message`/`message`/`error` of a
    JSON body), e.g. "The selected slot is not available". It may be empty.
    """

    def __init__(self, what: str, *, operation: str, status: int | None, message: str) -> None:
        super().__init__(what, operation=operation, status=status)
        self.message = message


class CliniceaAuthError(CliniceaError):
    """Clinicea refused our credentials: a configuration problem, not a passing fault."""


class CliniceaOutcomeUnknown(CliniceaError):
    """A write (POST) was sent and no usable answer came: it may or may not have been stored.

    The client never sends a POST twice; whoever retries must first look the booking up.
    """
