"""The benchmark (`python -m bench`, `./dev bench`): see `bench.run` and docs/benchmark.md."""

from __future__ import annotations

from bench.run import Report, Round, Scenario, run

__all__ = ["Report", "Round", "Scenario", "run"]
