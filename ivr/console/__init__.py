"""The agents' console (`/console`): see `ivr.console.views`; shared rules in `ivr.desk`."""

from __future__ import annotations

from ivr.console.views import bp

__all__ = ["bp"]
