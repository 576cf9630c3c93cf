"""What the store raises: a refused operation, a taken name or time, a database out of reach."""

from __future__ import annotations

from ivr.config import ConfigError


class StoreError(Exception):
    """A store operation was refused (bad argument, conflicting row)."""


class AlreadyExists(StoreError):
    """A row with that unique name already exists."""


class StoreUnavailable(StoreError, ConfigError):
    """The database cannot be used at all (no driver, unreachable, read-only): one line for
    the operator, naming `IVR_DATABASE_URL` but never its password. A `ConfigError` too, so
    every command (and the app's start) reports it like any other bad setting."""


class SlotUnavailable(StoreError):
    """A time is held by another caller or claimed by another booking (nothing was written)."""
