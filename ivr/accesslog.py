"""gunicorn's logger with a JSON access log (`logger_class` in gunicorn.conf.py and `ivr serve`).

gunicorn formats access lines with a printf template over "atoms" it has already escaped for
a quoted log format (`"` becomes `\\"`; a missing size is `None`), which cannot make valid JSON
from a path holding a quote or a newline. Here each request is one record with its fields as
values; `ivr.logs.JsonFormatter` (gunicorn's `logconfig_dict`, `ivr.logs.gunicorn_logconfig`)
encodes them, like every other line:

    {"time": ..., "level": "INFO", "logger": "gunicorn.access", "message": "POST /voice/incoming
     200", "method": "POST", "path": "/voice/incoming", "status": 200, "bytes": 312,
     "duration_ms": 41.7, "remote": "127.0.0.1", "call_sid": "CA..."}

The path without its query string (no caller data is in Twilio's URLs; other paths' queries
may hold a phone number). `call_sid` is there for /voice requests (`ivr.ops` puts it in the
WSGI environ: the log is written after the response, outside the request's context).
"""

from __future__ import annotations

import datetime
from typing import Any

from gunicorn.glogging import Logger

from ivr.logs import CALL_SID_ENVIRON


class JsonAccessLogger(Logger):  # type: ignore[misc]  # gunicorn ships no types
    """gunicorn's Logger; `access` logs one structured record per request."""

    def access(self, resp: Any, req: Any, environ: dict[str, Any],
               request_time: datetime.timedelta) -> None:
        """Log the finished request (gunicorn calls this in the worker after the response)."""
        if not self.access_log_enabled:
            return
        status = resp.status
        if isinstance(status, str):
            status = status.split(None, 1)[0]
        try:
            status = int(status)
        except (TypeError, ValueError):
            pass
        method = environ.get("REQUEST_METHOD", "-")
        path = environ.get("PATH_INFO", "")
        fields: dict[str, Any] = {
            "method": method,
            "path": path,
            "status": status,
            "bytes": getattr(resp, "sent", None) or 0,
            "duration_ms": round(request_time.total_seconds() * 1000, 2),
            "remote": environ.get("REMOTE_ADDR", "-"),
        }
        sid = environ.get(CALL_SID_ENVIRON)
        if sid:
            fields["call_sid"] = sid
        self.access_log.info("%s %s %s", method, path, status, extra=fields)
