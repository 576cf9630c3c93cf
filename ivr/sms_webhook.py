"""The /sms blueprint: patients' texts to the clinic's number (replies to reminders).

`POST /sms/incoming` is signature-checked like /voice, hands the message to
`ivr.reminders.ReminderReplies.sms_reply` and answers an empty `<Response/>`: Twilio's own
keyword replies (STOP, START, HELP) stay the only answer a patient gets. Thin on purpose.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, current_app, request

from ivr import twiml
from ivr.reminders import replies_for
from ivr.voice import refuse_unsigned

log = logging.getLogger(__name__)
bp = Blueprint("sms", __name__, url_prefix="/sms")


@bp.before_request
def check_signature() -> Response | None:
    """403 for anything Twilio did not sign."""
    return refuse_unsigned()


@bp.post("/incoming")
def incoming() -> Response:
    """An inbound text: opt-out mirrored, the reminder answered (never the body in logs)."""
    form = request.form
    try:
        replies_for(current_app.extensions["ivr"]).sms_reply((form.get("From") or "")[:64],
                                          (form.get("Body") or "")[:1600],
                                          (form.get("OptOutType") or "")[:20] or None)
    except Exception:  # Twilio retries nothing here; the error is ours to see
        log.exception("could not record an inbound text")
    return Response(twiml.empty(), status=200, mimetype="text/xml")
