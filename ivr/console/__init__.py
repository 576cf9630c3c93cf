"""The agents' console (`/console`): one blueprint (`ivr.console.views`, with sign-in and the
screen-pop), its Reminders and History pages in modules of their own; shared rules in
`ivr.desk`."""

from __future__ import annotations

from ivr.console import history, reminders  # importing them adds their pages to the blueprint
from ivr.console.views import bp

__all__ = ["bp", "history", "reminders"]
