"""Structured logs: one JSON object per line, carrying the CallSid of the call being served.

`configure(level)` (called by `create_app`) installs one `JsonFormatter` handler on the root
logger, writing to the *current* `sys.stderr` (gunicorn, `ivr serve`, pytest's capture all
work). It is idempotent and never removes other handlers, so pytest's `caplog` keeps working.

Every line has `time` (UTC, ISO 8601, milliseconds), `level`, `logger`, `message` and, when
logged while a `/voice` webhook is being served, `call_sid`. The CallSid comes from a context
variable that `ivr.ops` sets in a `before_request` hook from Twilio's form; a record's own
`call_sid` (`log.info(..., extra={"call_sid": sid})`) wins. Work a webhook hands to a helper
thread named `book-<CallSid>:<n>` (the booking attempt, `ivr.services`) is attributed to that
call too. Exceptions are logged as `exc_type` and `exc` (the formatted traceback).

Nothing here masks data: callers log masked numbers (`ivr.phone.mask`), never names or dates of
birth.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "JsonFormatter",
    "bind_call_sid",
    "call_sid_var",
    "configure",
    "current_call_sid",
]

call_sid_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "ivr_call_sid", default=None
)
_HELPER_THREAD = re.compile(r"^book-(CA[0-9a-fA-F]{32})\b")
# Attributes every LogRecord has; anything else was passed with `extra=` and is emitted.
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
_HANDLER_MARK = "_ivr_json_handler"


def current_call_sid() -> str | None:
    """The CallSid of the webhook being served in this thread (or its booking helper)."""
    sid = call_sid_var.get()
    if sid:
        return sid
    match = _HELPER_THREAD.match(threading.current_thread().name)
    return match.group(1) if match else None


@contextmanager
def bind_call_sid(call_sid: str | None) -> Iterator[None]:
    """Log lines inside the block carry `call_sid` (jobs outside a request, tests)."""
    token = call_sid_var.set(call_sid)
    try:
        yield
    finally:
        call_sid_var.reset(token)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, call_sid, extras, exception."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as a single-line JSON object."""
        out: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        sid = getattr(record, "call_sid", None) or current_call_sid()
        if sid:
            out["call_sid"] = sid
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key not in out and not key.startswith("_"):
                out[key] = value if isinstance(value, (str, int, float, bool, type(None))) \
                    else repr(value)
        if record.exc_info:
            out["exc_type"] = record.exc_info[0].__name__ if record.exc_info[0] else None
            out["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            out["exc"] = record.exc_text
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        return json.dumps(out, ensure_ascii=False, default=str)


class _StderrHandler(logging.Handler):
    """Writes to whatever `sys.stderr` is at emit time (pytest swaps it per test)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            stream = sys.stderr
            stream.write(self.format(record) + "\n")
            stream.flush()
        except Exception:  # pragma: no cover - logging must never raise
            self.handleError(record)


def configure(level: str | int = "INFO") -> logging.Handler:
    """Install (once) the JSON handler on the root logger at `level`; returns the handler.

    The root logger's level is only ever lowered to `level`, never raised, so a test's
    `caplog.set_level(...)` or an embedding program's own setup keeps what it asked for.
    """
    numeric = logging.getLevelName(level.upper()) if isinstance(level, str) else level
    if not isinstance(numeric, int):
        raise ValueError(f"log level: unknown level {level!r}")
    root = logging.getLogger()
    handler = next((h for h in root.handlers if getattr(h, _HANDLER_MARK, False)), None)
    if handler is None:
        handler = _StderrHandler()
        setattr(handler, _HANDLER_MARK, True)
        handler.setFormatter(JsonFormatter())
        root.addHandler(handler)
    handler.setLevel(numeric)
    if root.level == logging.NOTSET or root.level > numeric:
        root.setLevel(numeric)
    return handler
