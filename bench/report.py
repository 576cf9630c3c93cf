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


def targets(report: Report) -> list[tuple[str, str, str]]:
    """(target, measured, "met"/"not met"/"not measured") for the issue's targets."""
    out = []
    r50 = next((r for r in report.rounds if r.calls == 50), None)
    if r50 is not None and not math.isnan(r50.own_p99_ratio):
        out.append(("own time p99 <= 2x bare Flask at 50 calls",
                    f"{r50.app_own.p99:.0f} ms vs {r50.baseline_latency.p99:.0f} ms "
                    f"= {r50.own_p99_ratio:.2f}x",
                    "met" if r50.own_p99_ratio <= TARGET_RATIO else "not met"))
    else:
        out.append(("own time p99 <= 2x bare Flask at 50 calls", "-", "not measured"))
    r200 = next((r for r in report.rounds if r.calls == 200), None)
    if r200 is not None:
        out.append(("zero errors at 200 concurrent calls",
                    f"{r200.errors} errors ({r200.timeouts} timeouts)",
                    "met" if r200.errors == 0 else "not met"))
    else:
        out.append(("zero errors at 200 concurrent calls", "-", "not measured"))
    logins = max((r.logins for r in report.rounds), default=0)
    workers = report.config["workers"]
    out.append(("one Clinicea login per token lifetime per host",
                f"{logins} logins per round ({workers} workers)",
                "met" if logins <= 1 else "not met"))
    ret = next((s for s in report.scenarios if s.name.startswith("returning")), None)
    if ret is not None:
        n = sum(ret.requests.values())
        out.append(("returning keypad booking <= 4 Clinicea requests (no login)",
                    f"{n} ({', '.join(f'{k} {v}' for k, v in ret.requests.items())})",
                    "met" if n <= TARGET_REQUESTS and ret.completed else "not met"))
    slow = [s for s in report.scenarios if s.caller_seconds is not None]
    if slow:
        worst = max(slow, key=lambda s: s.caller_seconds or 0)
        out.append(("caller time to booking < 60 s",
                    "; ".join(f"{s.name.split(',')[0]} {s.caller_seconds:.0f} s" for s in slow),
                    "met" if (worst.caller_seconds or 0) < TARGET_CALLER_SECONDS else "not met"))
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
        f" and baseline alike); sandbox Clinicea latency {c['clinicea_latency']}; clinic clock"
        f" {c['clinic_clock']}{'; QUICK smoke run' if c['quick'] else ''}. Produced by"
        " `python -m bench` (`./dev bench`); see docs/benchmark.md.",
        "",
        "## Load: N calls at once, no pause between turns",
        "",
        "Latencies in ms, p50 / p95 / p99, per webhook as the caller's side sees it. *Own* ="
        " latency minus the app's time inside Clinicea requests (`X-IVR-Clinicea-Ms`); *server"
        " own* = `X-IVR-Own-Ms` (inside Flask only).",
        "",
        "| calls | webhooks | app latency | app own | server own | bare Flask | own p99 /"
        " bare p99 | app webhooks/s | bare webhooks/s | booked | errors (timeouts) |"
        " peak RSS/worker MiB | logins | Clinicea req./booking |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report.rounds:
        lines.append(
            f"| {r.calls} | {r.webhooks} | {_ms(r.app_latency)} | {_ms(r.app_own)} |"
            f" {_ms(r.server_own)} | {_ms(r.baseline_latency)} | {r.own_p99_ratio:.2f}x |"
            f" {r.throughput:.0f} | {r.baseline_throughput:.0f} | {r.booked}/{r.calls} |"
            f" {r.errors} ({r.timeouts}) | {', '.join(f'{x:.0f}' for x in r.peak_rss_mb)} |"
            f" {r.logins} | {r.requests_per_booked_call:.1f} |")
    examples = [e for r in report.rounds for e in r.error_examples]
    if examples:
        lines += ["", "Error examples: " + "; ".join(f"`{e}`" for e in examples[:6])]
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
    lines += ["", "## Targets", "", "| target | measured | |", "|---|---|---|"]
    for name, measured, verdict in targets(report):
        lines.append(f"| {name} | {measured} | {verdict} |")
    return "\n".join(lines) + "\n"


def chart(report: Report, path: Path) -> None:
    """Latency percentiles against concurrency: app, app own time, bare Flask."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rounds = report.rounds
    xs = [r.calls for r in rounds]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for series, label, style in (("app_latency", "app (caller side)", "-o"),
                                 ("app_own", "app own (minus Clinicea)", "-s"),
                                 ("baseline_latency", "bare Flask", "-^")):
        for key, alpha in (("p50", 0.45), ("p99", 1.0)):
            axes[0].plot(xs, [getattr(getattr(r, series), key) for r in rounds], style,
                         alpha=alpha, label=f"{label} {key}")
    axes[0].set_xlabel("concurrent calls")
    axes[0].set_ylabel("ms per webhook")
    axes[0].set_yscale("log")
    axes[0].set_title("Webhook latency")
    axes[0].legend(fontsize=7)
    axes[1].bar([str(x) for x in xs], [r.throughput for r in rounds], label="app")
    axes[1].plot([str(x) for x in xs], [r.baseline_throughput for r in rounds], "k^--",
                 label="bare Flask")
    axes[1].set_xlabel("concurrent calls")
    axes[1].set_ylabel("webhooks per second")
    axes[1].set_title("Throughput")
    axes[1].legend(fontsize=8)
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
