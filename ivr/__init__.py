"""clinic-ivr: a phone front desk for clinics on Clinicea, answering through Twilio."""

__version__ = "0.1.0"
