"""The benchmark's report: a markdown table (printed and written) and a PNG chart."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bench.run import Report

TARGET_RATIO = 2.0
TARGET_REQUESTS = 4
TARGET_CALLER_SECONDS = 60


def _ms(p: object) -> str:
    return f"{p.p50:.0f} / {p.p95:.0f} / {p.p99:.0f}"  # type: ignore[attr-defined]


def _round(report: Report, mode: str, calls: int) -> object | None:
    return next((r for r in report.rounds if r.mode == mode and r.calls == calls), None)


def targets(report: Report) -> list[tuple[str, str, str]]:
    """(target, measured, "met"/"not met"/"not measured") for the issue's targets."""
    out = []
    for mode in ("paced", "stress"):
        r50 = _round(report, mode, 50)
        name = f"own time p99 <= 2x bare Flask, 50 calls ({mode})"
        if r50 is not None and not math.isnan(r50.own_p99_ratio):
            out.append((name, f"{r50.app_own.p99:.0f} ms vs {r50.baseline_latency.p99:.0f} ms "
                              f"= {r50.own_p99_ratio:.2f}x",
                        "met" if r50.own_p99_ratio <= TARGET_RATIO else "not met"))
        else:
            out.append((name, "-", "not measured"))
    for mode in ("paced", "stress"):
        r200 = _round(report, mode, 200)
        name = f"zero errors at 200 concurrent calls ({mode})"
        if r200 is not None:
            out.append((name, f"{r200.errors} errors ({r200.timeouts} timeouts), "
                              f"{r200.booked}/200 booked",
                        "met" if r200.errors == 0 else "not met"))
        else:
            out.append((name, "-", "not measured"))
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
        what = "to the transfer" if "transfer" in s.name else "to a confirmed booking"
        out.append((f"caller time {what} < 60 s: {s.name}", f"{s.caller_seconds:.0f} s",
                    "met" if s.caller_seconds < TARGET_CALLER_SECONDS else "not met"))
    return out


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
        f" {c['clinicea_latency']}; clinic clock"
        f" {c['clinic_clock']}{'; QUICK smoke run' if c['quick'] else ''}. Produced by"
        " `python -m bench` (`./dev bench`); see docs/benchmark.md.",
        "",
    ]
    for mode, title, note in (
        ("paced", "Load: N calls at once, callers listening to every prompt",
         f"Each caller waits x{c.get('pace', 1)} the time to hear the prompt at 150 words a"
         " minute plus 1 s per key before answering (bare Flask callers alike)."),
        ("stress", "Stress: N calls at once, no pause between turns",
         "Every caller answers the moment the TwiML arrives: N webhooks always in flight."),
    ):
        rounds = [r for r in report.rounds if r.mode == mode]
        if not rounds:
            continue
        lines += [
            f"## {title}", "", note, "",
            "Latencies in ms, p50 / p95 / p99, per webhook as the caller's side sees it."
            " *Own* = latency minus the app's time inside Clinicea requests"
            " (`X-IVR-Clinicea-Ms`); *server own* = `X-IVR-Own-Ms` (inside Flask only).",
            "",
            "| calls | webhooks | app latency | app own | server own | bare Flask | own p99 /"
            " bare p99 | app webhooks/s | bare webhooks/s | booked | errors (timeouts) |"
            " peak RSS/worker MiB | logins | Clinicea req./booking |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in rounds:
            lines.append(
                f"| {r.calls} | {r.webhooks} | {_ms(r.app_latency)} | {_ms(r.app_own)} |"
                f" {_ms(r.server_own)} | {_ms(r.baseline_latency)} | {r.own_p99_ratio:.2f}x |"
                f" {r.throughput:.0f} | {r.baseline_throughput:.0f} | {r.booked}/{r.calls} |"
                f" {r.errors} ({r.timeouts}) |"
                f" {', '.join(f'{x:.0f}' for x in r.peak_rss_mb)} |"
                f" {r.logins} | {r.requests_per_booked_call:.1f} |")
        lines.append("")
    examples = [e for r in report.rounds for e in r.error_examples]
    if examples:
        lines += ["Error examples: " + "; ".join(f"`{e}`" for e in examples[:6])]
    lines += [
        "",
        "## Scenarios: one call at a time, fresh app (cold token and calendar cache)",
        "",
        "| scenario | completed | webhooks | Clinicea requests (no login) | logins |"
        " caller seconds | webhook wait ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in report.scenarios:
        reqs = ", ".join(f"{k} {v}" for k, v in s.requests.items())
        lines.append(
            f"| {s.name} | {'yes' if s.completed else 'NO'} | {s.webhooks} |"
            f" {sum(s.requests.values())} ({reqs}) | {s.logins} |"
            f" {s.caller_seconds if s.caller_seconds is not None else '-'} | {s.webhook_ms:.0f} |")
    detail = _round(report, "paced", 50) or next(
        (r for r in report.rounds if r.mode == "paced"), None)
    if detail is not None and detail.by_step:
        lines += [
            "",
            f"## Per step: {detail.calls} paced calls",
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
    for ax, mode in zip(axes, ("paced", "stress"), strict=True):
        rounds = [r for r in report.rounds if r.mode == mode]
        xs = [r.calls for r in rounds]
        for series, label, style in (("app_latency", "app (caller side)", "-o"),
                                     ("app_own", "app own (minus Clinicea)", "-s"),
                                     ("baseline_latency", "bare Flask", "-^")):
            for key, alpha in (("p50", 0.4), ("p99", 1.0)):
                ax.plot(xs, [getattr(getattr(r, series), key) for r in rounds], style,
                        alpha=alpha, label=f"{label} {key}")
        ax.set_xlabel("concurrent calls")
        ax.set_ylabel("ms per webhook")
        ax.set_yscale("log")
        ax.set_title(f"{mode}: webhook latency"
                     + ("" if not rounds else
                        " (" + ", ".join(f"{r.calls}: {r.throughput:.0f}/s" for r in rounds)
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
