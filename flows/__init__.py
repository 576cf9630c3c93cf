"""The conversation: what a caller hears and does, as data, with no web or Clinicea code."""
