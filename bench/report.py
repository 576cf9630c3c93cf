"""The benchmark's report: a markdown table (printed and written) and a PNG chart."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bench.run import Report

TARGET_RATIO = 2.0
TARGET_REQUESTS = 4
TARGET_REQUESTS_PER_BOOKING = 4.5
TARGET_CALLER_SECONDS = 60
TARGET_ONE_BREATH_SECONDS = 25  # issue 10: a whole request said at once, returning patient
MODES = (
    ("poisson", "Load: callers arriving at random (Poisson), N calls in progress on average",
     "Callers arrive one by one at random (exponential gaps) at N / mean call duration per"
     " second (Little's law), each listening x{pace} the time to hear every prompt at 150 words"
     " a minute plus 1 s per key; the figures are the webhooks of {measure} mean call"
     " durations after one of warm-up, every caller followed to the end. Bare Flask gets the"
     " same arrivals on its own prompt."),
    ("stress", "Stress: N calls at once, no pause between turns",
     "Every caller answers the moment the TwiML arrives: N webhooks always in flight."),
)


def _ms(p: object) -> str:
    return f"{p.p50:.0f} / {p.p95:.0f} / {p.p99:.0f}"  # type: ignore[attr-defined]


def _ratios(r: object) -> str:
    ratio = getattr(r, "own_ratio", None) or {}
    if not ratio:
        return f"- / - / {r.own_p99_ratio:.2f}x"  # type: ignore[attr-defined]
    return " / ".join(f"{ratio.get(k, float('nan')):.1f}" for k in ("p50", "p95", "p99")) + "x"


def _rounds(report: Report, mode: str) -> list:
    return [r for r in report.rounds if r.mode == mode]


def _round(report: Report, mode: str, calls: int) -> object | None:
    return next((r for r in report.rounds if r.mode == mode and r.in_progress == calls), None)


def targets(report: Report) -> list[tuple[str, str, str]]:
    """(target, measured, "met"/"not met"/"not measured") for the issue's targets."""
    out = []
    levels = report.config.get("calls") or [10, 50, 200]
    poisson = _rounds(report, "poisson")

    def each(name: str, measured: object, met: object) -> None:
        if not poisson:
            out.append((name, "-", "not measured"))
            return
        out.append((name, "; ".join(f"{r.in_progress:.0f}: {measured(r)}" for r in poisson),
                    "met" if all(met(r) for r in poisson) else "not met"))

    each(f"booked / wanted = 100% at {', '.join(map(str, levels))} calls in progress",
         lambda r: f"{r.booked}/{r.wanted}", lambda r: r.wanted and r.booked == r.wanted)
    each(f"Clinicea requests per booking <= {TARGET_REQUESTS_PER_BOOKING} at every load",
         lambda r: f"{r.requests_per_booked_call:.1f}",
         lambda r: 0 < r.requests_per_booked_call <= TARGET_REQUESTS_PER_BOOKING)
    each('0 "slot taken" after the read-back', lambda r: f"{r.slot_taken}",
         lambda r: r.slot_taken == 0)
    each("0 appointments booked over another (same doctor)", lambda r: f"{r.double_booked}",
         lambda r: r.double_booked == 0)
    each("0 errors", lambda r: f"{r.errors} ({r.timeouts} timeouts)", lambda r: r.errors == 0)
    each(f"own time p99 <= {TARGET_RATIO:g}x bare Flask (Poisson load)",
         lambda r: f"{r.app_own.p99:.0f} vs {r.baseline_latency.p99:.0f} ms"
                   f" = {r.own_p99_ratio:.2f}x",
         lambda r: not math.isnan(r.own_p99_ratio) and r.own_p99_ratio <= TARGET_RATIO)
    stress = _rounds(report, "stress")
    if stress:
        out.append(("0 errors under the all-at-once stress (not a target of the issue: a"
                    " capacity check)",
                    "; ".join(f"{r.calls}: {r.errors} ({r.timeouts} timeouts),"
                              f" {r.booked}/{r.wanted} booked" for r in stress),
                    "met" if all(r.errors == 0 for r in stress) else "not met"))
    logins = max((r.logins for r in report.rounds), default=0)
    workers = report.config["workers"]
    out.append(("one Clinicea login per token lifetime per host",
                f"up to {logins} logins per round ({workers} workers)",
                "met" if logins <= 1 else "not met"))
    ret = next((s for s in report.scenarios if s.name.startswith("returning")), None)
    if ret is not None:
        n = sum(ret.requests.values())
        out.append(("returning keypad booking <= 4 Clinicea requests (no login)",
                    f"{n} ({', '.join(f'{k} {v}' for k, v in ret.requests.items())})",
                    "met" if n <= TARGET_REQUESTS and ret.completed else "not met"))
    for s in report.scenarios:
        if s.caller_seconds is None:
            continue
        if s.name == "one breath: returning patient":
            out.append(("one-breath booking (returning) < 25 s and <= 3 questions",
                        f"{s.caller_seconds:.0f} s, {s.questions} questions",
                        "met" if s.completed and s.caller_seconds < TARGET_ONE_BREATH_SECONDS
                        and s.questions <= 3 else "not met"))
            continue
        what = "to the transfer" if "transfer" in s.name else "to a confirmed booking"
        out.append((f"caller time {what} < 60 s: {s.name}", f"{s.caller_seconds:.0f} s",
                    "met" if s.caller_seconds < TARGET_CALLER_SECONDS else "not met"))
    return out


_OVERLAP = {
    "on": "the sandbox accepts overlapping appointments (`overlap`), like many clinic systems",
    "unsupported": "the sandbox does not know the `overlap` fault: it refused overlapping"
                   " appointments itself",
    "off": "overlapping appointments refused by the sandbox (`--no-overlap`)",
}


def markdown(report: Report) -> str:
    """The whole report as markdown."""
    m, c = report.machine, report.config
    lines = [
        "# Benchmark results",
        "",
        f"{m['date']} · nproc {m['nproc']} · {m['cpu']} · {m['memory']} · Python {m['python']}"
        f" · gunicorn {m['gunicorn']} · {m['os']}",
        "",
        f"gunicorn `{c['worker_class']}`, {c['workers']} workers x {c['threads']} threads (app"
        f" and baseline alike); store {c.get('store', 'SQLite')}; sandbox Clinicea latency"
        f" {c['clinicea_latency']}; {_OVERLAP.get(c.get('overlap', 'off'), '')}; clinic clock"
        f" {c['clinic_clock']}{'; QUICK smoke run' if c['quick'] else ''}. Produced by"
        " `python -m bench` (`./dev bench`); see docs/benchmark.md.",
        "",
    ]
    for mode, title, note in MODES:
        rounds = _rounds(report, mode)
        if not rounds:
            continue
        lines += [
            f"## {title}", "",
            note.format(pace=f"{c.get('pace', 1):g}", measure=f"{c.get('measure', 1):g}"), "",
        ]
        if mode == "poisson":
            lines += [f"Mean call duration the rates are set from: {c.get('mean_call_s', 0):g} s"
                      " (the booking scenarios' caller seconds x the pace).", ""]
        lines += [
            "Latencies in ms, p50 / p95 / p99, per webhook as the caller's side sees it."
            " *Own* = latency minus the app's time inside Clinicea requests"
            " (`X-IVR-Clinicea-Ms`); *server own* = `X-IVR-Own-Ms` (inside Flask only)."
            " *Slot taken* = \"that time was just taken\" heard after the read-back;"
            " *booked twice* = appointments overlapping another of the same doctor in the sandbox.",
            "",
            "| in progress (measured) | callers | booked / wanted | slot taken | booked twice |"
            " Clinicea req./booking | errors (timeouts) | app own | bare Flask | own ÷ bare |"
            " app latency | server own | webhooks | app webhooks/s | peak RSS/worker MiB |"
            " logins |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in rounds:
            measured = (f"{r.in_progress:.0f} ({r.in_progress_measured:.1f})"
                        if mode == "poisson" else f"{r.in_progress:.0f} at once")
            lines.append(
                f"| {measured} | {r.calls} | {r.booked}/{r.wanted} | {r.slot_taken} |"
                f" {r.double_booked} | {r.requests_per_booked_call:.1f} |"
                f" {r.errors} ({r.timeouts}) | {_ms(r.app_own)} | {_ms(r.baseline_latency)} |"
                f" {_ratios(r)} | {_ms(r.app_latency)} | {_ms(r.server_own)} | {r.webhooks} |"
                f" {r.throughput:.0f} | {', '.join(f'{x:.0f}' for x in r.peak_rss_mb)} |"
                f" {r.logins} |")
        lines.append("")
    examples = [e for r in report.rounds for e in r.error_examples]
    if examples:
        lines += ["Error examples: " + "; ".join(f"`{e}`" for e in examples[:6])]
    lines += [
        "",
        "## Scenarios: one call at a time, fresh app (cold token and calendar cache)",
        "",
        "| scenario | completed | questions | webhooks | Clinicea requests (no login) | logins |"
        " caller seconds | webhook wait ms |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in report.scenarios:
        reqs = ", ".join(f"{k} {v}" for k, v in s.requests.items())
        lines.append(
            f"| {s.name} | {'yes' if s.completed else 'NO'} | {s.questions} | {s.webhooks} |"
            f" {sum(s.requests.values())} ({reqs}) | {s.logins} |"
            f" {s.caller_seconds if s.caller_seconds is not None else '-'} | {s.webhook_ms:.0f} |")
    detail = _round(report, "poisson", 50) or next(iter(_rounds(report, "poisson")), None)
    if detail is not None and detail.by_step:
        lines += [
            "",
            f"## Per step: Poisson arrivals, {detail.in_progress:.0f} calls in progress",
            "",
            "ms; *server own* = `X-IVR-Own-Ms`; *Clinicea* = `X-IVR-Clinicea-Ms`.",
            "",
            "| step | webhooks | latency p50 / p99 | server own p50 / p99 | Clinicea p50 |",
            "|---|---|---|---|---|",
        ]
        for step, f in detail.by_step.items():
            lines.append(
                f"| {step} | {f['n']:.0f} | {f['latency_p50']:.0f} / {f['latency_p99']:.0f} |"
                f" {f['own_p50']:.1f} / {f['own_p99']:.1f} | {f['clinicea_p50']:.0f} |")
    lines += ["", "## Targets", "", "| target | measured | |", "|---|---|---|"]
    for name, measured, verdict in targets(report):
        lines.append(f"| {name} | {measured} | {verdict} |")
    return "\n".join(lines) + "\n"


def chart(report: Report, path: Path) -> None:
    """Latency percentiles against concurrency: app, app own time, bare Flask."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.4))
    for ax, mode in zip(axes, ("poisson", "stress"), strict=True):
        rounds = [r for r in report.rounds if r.mode == mode]
        xs = [r.in_progress for r in rounds]
        for series, label, style in (("app_latency", "app (caller side)", "-o"),
                                     ("app_own", "app own (minus Clinicea)", "-s"),
                                     ("baseline_latency", "bare Flask", "-^")):
            for key, alpha in (("p50", 0.4), ("p99", 1.0)):
                ax.plot(xs, [getattr(getattr(r, series), key) for r in rounds], style,
                        alpha=alpha, label=f"{label} {key}")
        ax.set_xlabel("calls in progress (Poisson arrivals)" if mode == "poisson"
                      else "calls at once")
        ax.set_ylabel("ms per webhook")
        ax.set_yscale("log")
        ax.set_title(f"{mode}: webhook latency"
                     + ("" if not rounds else
                        " (" + ", ".join(f"{r.in_progress:.0f}: {r.throughput:.0f}/s"
                                         for r in rounds)
                        + " webhooks)"), fontsize=9)
        ax.legend(fontsize=7)
    m, c = report.machine, report.config
    fig.suptitle(f"clinic-ivr, {c['workers']}x{c['threads']} gthread, Clinicea "
                 f"{c['clinicea_latency']}, {m['nproc']} CPU, {m['date']}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(report: Report, out: Path) -> None:
    """latest.md, latest.png and latest.json in `out`."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "latest.md").write_text(markdown(report), encoding="utf-8")
    (out / "latest.json").write_text(report.to_json() + "\n", encoding="utf-8")
    if report.rounds:
        chart(report, out / "latest.png")
