"""Structured logs: one JSON object per line, carrying the CallSid of the call being served.

`configure(level)` (called by whoever starts a process: the `ivr` commands, gunicorn.conf.py,
the test rig; never by `create_app`) installs one `JsonFormatter` handler on the root logger,
writing to the *current* `sys.stderr` (gunicorn, `ivr serve`, pytest's capture all work), and
holds httpx's loggers at WARNING (they log every Clinicea URL: tokens, phone numbers). It is
idempotent and never removes other handlers, so pytest's `caplog` keeps working.

Every line has `time` (UTC, ISO 8601, milliseconds), `level`, `logger`, `message` and, when
logged while a `/voice` webhook is being served, `call_sid`. The CallSid comes from a context
variable (`call_sid_var`) that `ivr.ops` sets for the whole `/voice` request from Twilio's form;
a record's own `call_sid` (`log.info(..., extra={"call_sid": sid})`) wins. Work a webhook hands
to a helper thread (the booking attempt, `ivr.clinicea_services`) runs in a copy of the
webhook's context (`contextvars.copy_context().run`), so it is attributed to that call too.
Exceptions are logged as `exc_type` and `exc` (the formatted traceback).

Servers write nothing else: `gunicorn_logconfig(level)` is gunicorn's `logconfig_dict` (in
gunicorn.conf.py and `ivr serve`'s gunicorn alike): its own lines ("Booting worker", "Handling
signal") through the same formatter on stderr, and the access log on stdout as JSON too (one
object per request, built by `ivr.accesslog`, the CallSid from the WSGI environ key
`CALL_SID_ENVIRON` that `ivr.ops` sets).

Nothing here masks data: callers log masked numbers (`ivr.phone.mask`), never names or dates of
birth.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "CALL_SID_ENVIRON",
    "JsonFormatter",
    "bind_call_sid",
    "call_sid_var",
    "configure",
    "current_call_sid",
    "gunicorn_logconfig",
    "json_handler",
]

CALL_SID_ENVIRON = "ivr.call_sid"  # WSGI environ key: the CallSid of a /voice request

call_sid_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "ivr_call_sid", default=None
)
# Attributes every LogRecord has; anything else was passed with `extra=` and is emitted.
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
_HANDLER_MARK = "_ivr_json_handler"
_PINNED = ("httpx", "httpcore")  # libraries held at WARNING whatever the level


def current_call_sid() -> str | None:
    """The CallSid of the webhook being served in this context (its helper threads' too)."""
    return call_sid_var.get() or None


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
    """Writes to whatever `sys.stderr` (or `sys.stdout`) is at emit time (pytest swaps it)."""

    def __init__(self, stream: str = "stderr") -> None:
        super().__init__()
        self._stream = stream

    def emit(self, record: logging.LogRecord) -> None:
        try:
            stream = getattr(sys, self._stream)
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
    # httpx logs every URL at INFO; Clinicea URLs carry tokens and phone numbers.
    for name in _PINNED:
        logging.getLogger(name).setLevel(logging.WARNING)
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


def json_handler(stream: str = "stderr") -> logging.Handler:
    """A JSON handler writing to `sys.<stream>` (a `logging.config` handler factory).

    The stderr one is the handler `configure` installs, so an app built under gunicorn finds
    it on the root logger and adds no second one.
    """
    if stream not in ("stderr", "stdout"):
        raise ValueError(f"json_handler: stream must be stderr or stdout, not {stream!r}")
    handler = _StderrHandler(stream)
    handler.setFormatter(JsonFormatter())
    if stream == "stderr":
        setattr(handler, _HANDLER_MARK, True)
    return handler


def gunicorn_logconfig(level: str = "INFO", *, access: bool = True) -> dict[str, Any]:
    """gunicorn's `logconfig_dict`: every line JSON, one formatter for app and server.

    gunicorn merges this over its own defaults, whose root logger would print the app's
    records a second time in plain text: the root gets the JSON stderr handler instead. The
    access log (`ivr.accesslog.JsonAccessLogger`) goes to stdout, everything else to stderr;
    `access=False` drops it (with a `logconfig_dict`, gunicorn's `accesslog` is not consulted).
    """
    level = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {},
        "handlers": {
            "error_console": {"()": "ivr.logs.json_handler", "stream": "stderr"},
            "console": {"()": "ivr.logs.json_handler", "stream": "stdout"},
        },
        "root": {"level": level, "handlers": ["error_console"]},
        "loggers": {
            "gunicorn.error": {"level": level, "handlers": ["error_console"],
                               "propagate": False, "qualname": "gunicorn.error"},
            "gunicorn.access": {"level": "INFO" if access else "CRITICAL",
                                "handlers": ["console"] if access else [], "propagate": False,
                                "qualname": "gunicorn.access"},
        },
    }
