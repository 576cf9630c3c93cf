"""Appointment reminders: who is reminded of what (`plan`), the text and the replies
(`texting`), the outbound reminder call (`table`, `frame`, `actions`) and the statuses
(`status`). `FLOW` is the call; see docs/reminders.md."""

from flows.reminders.table import FLOW

__all__ = ["FLOW"]
