"""A terminal softphone: you are the caller, the terminal is the phone.

You read what the IVR says; you type keys (digits, `*`, `#`) or what you would say, or just
press Enter to stay silent. `/hangup` hangs up; `/busy`, `/no-answer` before a transfer choose
what the person you are put through to does. Built on the Twilio call simulator, so the app
sees exactly what Twilio would send. `run` places a call to the clinic; `answer` takes one the
clinic places (an appointment reminder).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from typing import TextIO

from ivr.simulator import Call, Dialed, Heard, TwilioSimulator

KEYS = re.compile(r"^[0-9*#]+$")
DIAL_OUTCOMES = {"/busy": "busy", "/no-answer": "no-answer", "/failed": "failed",
                 "/answer": "completed"}


def run(
    phone: TwilioSimulator,
    caller: str,
    *,
    read: Callable[[str], str] = input,
    out: TextIO = sys.stdout,
    dial_outcome: str = "completed",
) -> Call:
    """Place one call from `caller` and let the person at the terminal drive it."""
    out.write(f"Calling the clinic from {caller or 'a withheld number'}...\n")
    out.write("Type digits to press keys, words to speak, Enter for silence, /hangup to end.\n\n")
    call = phone.call(from_=caller, dial_outcome=dial_outcome)
    return _drive(call, read, out)


def answer(
    phone: TwilioSimulator,
    url: str,
    patient: str,
    *,
    status_callback: str | None = None,
    call_sid: str | None = None,
    read: Callable[[str], str] = input,
    out: TextIO = sys.stdout,
) -> Call:
    """The clinic calls `patient` (an outbound call to `url`, as Twilio places it after
    `Calls.create`); the person at the terminal answers it and drives it."""
    out.write(f"Your phone ({patient}) rings: the clinic is calling. You answer.\n")
    out.write("Type digits to press keys, words to speak, Enter for silence, /hangup to end.\n\n")
    call = phone.outbound(url, to=patient, answered_by="human", status_callback=status_callback,
                          call_sid=call_sid)
    return _drive(call, read, out)


def _drive(call: Call, read: Callable[[str], str], out: TextIO) -> Call:
    """Show what the IVR says and pass on what is typed until the call ends."""
    shown = _show(call, 0, out)
    while not call.ended:
        try:
            typed = read("you> ").strip()
        except (EOFError, KeyboardInterrupt):
            out.write("\n")
            call.hang_up()
            break
        if typed == "/hangup":
            call.hang_up()
            break
        if typed in DIAL_OUTCOMES:
            call.dial_outcome = DIAL_OUTCOMES[typed]
            out.write(f"(if you are put through, the person will: {call.dial_outcome})\n")
            continue
        if not typed:
            call.silence()
        elif KEYS.match(typed.replace(" ", "")):
            call.press(typed.replace(" ", ""))
        else:
            call.say(typed, confidence=0.9)
        shown = _show(call, shown, out)
    out.write(f"\nCall ended ({call.status}).\n")
    return call


def _show(call: Call, since: int, out: TextIO) -> int:
    """Print what the IVR said since event `since`; return the new position."""
    events = call.transcript
    for event in events[since:]:
        if isinstance(event, Heard):
            out.write(f"IVR: {event.text}\n")
        elif isinstance(event, Dialed):
            out.write(f"(the IVR puts you through to {event.number}: {event.outcome})\n")
    out.flush()
    return len(events)
