"""Twilio call simulator: plays Twilio's side of an inbound voice call against a TwiML webhook app.

Used by the tests, by the terminal softphone and by the benchmark. Behaviour follows
``shared/docs/twilio-voice.md`` (sections 1, 2, 4, 5, 6, 7, 9 and 12); where Twilio's behaviour
is undocumented ([I] in the spec) the module that models it says what was chosen. The rooms:

* ``events``: what a call produces (heard, pressed, said, dialed, warnings, errors);
* ``wire``: request signing and sending, cookies, HTTP redirects, connection overrides;
* ``document``: the answer validated and the TwiML document parsed;
* ``verbs``: how Twilio runs each verb; ``gather``: how an open ``<Gather>`` takes input;
* ``number``: a number's settings, SIDs, webhook parameters, raw webhooks;
* ``call``: :class:`Call` (one call) and :class:`TwilioSimulator` (places calls: inbound ones
  to the number, and ``outbound`` ones as after the app's ``Calls.create``).

Example::

    sim = TwilioSimulator(base_url="http://testserver", auth_token="secret", http=client)
    call = sim.call(from_="+923216315551")
    call.press("1")
    assert "Dr. Ayesha Khan" in call.heard
"""

from ivr.simulator.call import APP_ERROR_MESSAGE, Call, TwilioSimulator
from ivr.simulator.document import MAX_TWIML_BYTES as MAX_TWIML_BYTES
from ivr.simulator.events import (
    AppError,
    Dialed,
    Event,
    Heard,
    HungUp,
    Paused,
    Played,
    Pressed,
    Redirected,
    Said,
    Silence,
    SimulatorError,
    TwimlWarning,
    Warning,
    format_transcript,
)
from ivr.simulator.number import API_VERSION as API_VERSION
from ivr.simulator.number import DEFAULT_ACCOUNT_SID as DEFAULT_ACCOUNT_SID
from ivr.simulator.verbs import DIAL_OUTCOMES as DIAL_OUTCOMES
from ivr.simulator.wire import MAX_HTTP_REDIRECTS as MAX_HTTP_REDIRECTS
from ivr.simulator.wire import raw_signature as raw_signature
from ivr.simulator.wire import sign

# The constants and raw_signature, re-exported "as" themselves, import from here too but are
# left out of `import *`, as before the package split.
__all__ = [
    "APP_ERROR_MESSAGE",
    "AppError",
    "Call",
    "Dialed",
    "Event",
    "Heard",
    "HungUp",
    "Paused",
    "Played",
    "Pressed",
    "Redirected",
    "Said",
    "Silence",
    "SimulatorError",
    "TwilioSimulator",
    "TwimlWarning",
    "Warning",
    "format_transcript",
    "sign",
]
