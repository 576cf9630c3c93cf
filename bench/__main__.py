"""`python -m bench [--calls 10,50,200] [--quick] [--workers N] [--threads N] [--no-overlap]`."""

from __future__ import annotations

import argparse
import sys

from bench import report, run
from bench.run import MEASURE


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark, print the table, write bench/results/latest.{md,png,json}."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--calls", default=None,
                        help="calls in progress per round (Poisson arrivals; the stress rounds"
                             " start that many at once), comma-separated (default 10,50,200;"
                             " --quick: 2)")
    parser.add_argument("--quick", action="store_true", help="a seconds-long smoke run")
    parser.add_argument("--workers", type=int, default=None, help="gunicorn workers (nproc)")
    parser.add_argument("--threads", type=int, default=16, help="threads per worker (16)")
    parser.add_argument("--latency", type=int, default=150, help="Clinicea latency, ms (150)")
    parser.add_argument("--jitter", type=int, default=50, help="latency jitter, ms (50)")
    parser.add_argument("--pace", type=float, default=None,
                        help="callers' listening time x this in the Poisson rounds (1.0;"
                             " quick 0.05)")
    parser.add_argument("--measure", type=float, default=MEASURE,
                        help="Poisson rounds: mean call durations measured after one of"
                             f" warm-up ({MEASURE:g})")
    parser.add_argument("--no-overlap", action="store_true",
                        help="let the sandbox refuse overlapping appointments (default: ask it"
                             " to accept them, as many clinic systems do, if it knows how)")
    parser.add_argument("--no-stress", action="store_true",
                        help="skip the rounds with no pause between turns")
    parser.add_argument("--out", default=None, help="output directory (bench/results)")
    parser.add_argument("--no-write", action="store_true", help="print only")
    parser.add_argument("--postgres", metavar="URL", default=None,
                        help="store the app's data in PostgreSQL (a fresh database per app start"
                             " on this server, e.g. postgresql+psycopg://postgres@127.0.0.1:5432"
                             "/postgres) instead of SQLite")
    args = parser.parse_args(argv)
    if args.measure <= 0:
        parser.error("--measure: a positive number of mean call durations")
    default = "2" if args.quick else "10,50,200"
    try:
        calls = [int(x) for x in (args.calls or default).split(",") if x.strip()]
    except ValueError:
        parser.error("--calls: comma-separated whole numbers, e.g. 10,50")
    if not calls or min(calls) < 1:
        parser.error("--calls: at least one round of at least 1 call")
    result = run(calls, quick=args.quick, workers=args.workers, threads=args.threads,
                 latency_ms=args.latency, jitter_ms=args.jitter, out_dir=args.out,
                 write=not args.no_write, pace=args.pace, stress=not args.no_stress,
                 postgres=args.postgres, overlap=not args.no_overlap, measure=args.measure)
    print(report.markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
