"""`ConfigError`: the one exception a bad setting or clinic file raises, at start-up.

Its own module because both halves of `ivr.config` raise it (the environment in `settings`,
the clinic file in `clinic`) and callers catch it without caring which.
"""

from __future__ import annotations


class ConfigError(ValueError):
    """A configuration value is missing or invalid; the message is one line: "<key>: <what>"."""

    def __init__(self, message: str) -> None:
        # One line, always: it is printed at start-up and by `ivr check`.
        super().__init__(" ".join(message.split()))
