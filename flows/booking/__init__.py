"""The clinic booking call: its table (`table.py`), what its rows do (`actions.py`,
`conversation.py`), the facts its prompts mention (`facts.py`) and its typed per-call data
(`frame.py`). `FLOW` is the call the app runs."""

from flows.booking.table import FLOW

__all__ = ["FLOW"]
