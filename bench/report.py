"""docs/performance.md: one section per run (newest first) under the hand-written analysis,
and the latency-against-offered-load plot of the latest run."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

MARKER = "<!-- bench runs: `python -m bench` inserts each new run below this line -->"
HEADER = f"""# Performance

Measured by `python -m bench` (see bench/__main__.py). Not part of `make test`.

{MARKER}
"""


def ms(value: float) -> str:
    """A latency in ms for a table cell."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if math.isinf(value):
        return "failed"
    return f"{value:,.1f}" if value < 100 else f"{value:,.0f}"


def num(value: float, digits: int = 0) -> str:
    """A number for a table cell."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:,.{digits}f}"


def targets(r: dict[str, Any]) -> list[tuple[str, str, str, bool]]:
    """(what, measured, target, met) for each target of the issue."""
    ing, bare = r["ingest"]["ingest"], r["ingest"]["bare"]
    sat, bare_sat = ing["saturation"]["rate"], bare["saturation"]["rate"]
    p99_half = ing["runs"][1]["p99"]
    e2e = r["e2e"]["runs"][-1]["email"]
    router, raw = r["router"]["router"]["rate"], r["router"]["passthrough"]["awaited"]["rate"]
    return [
        ("ingest accepted webhooks/s at saturation (acks=all)", num(sat), ">= 800", sat >= 800),
        (
            "ingest / A (bare endpoint) throughput",
            num(sat / bare_sat, 3),
            ">= 0.5",
            sat / bare_sat >= 0.5,
        ),
        ("ingest p99 at 50% of saturation", f"{ms(p99_half)} ms", "<= 50 ms", p99_half <= 50),
        ("end to end at 100/s, p50", f"{ms(e2e['p50'])} ms", "<= 30 ms", e2e["p50"] <= 30),
        ("end to end at 100/s, p99", f"{ms(e2e['p99'])} ms", "<= 250 ms", e2e["p99"] <= 250),
        ("router / raw passthrough", num(router / raw, 3), ">= 0.7", router / raw >= 0.7),
    ]


def section(r: dict[str, Any], plot: Path) -> str:
    """The markdown for one run."""
    m, v, ing = r["machine"], r["versions"], r["ingest"]
    lines = [f"## Run {r['when']} ({r['command']}, {r['duration_s'] / 60:.1f} min)", ""]
    lines += [
        "| machine | |",
        "|---|---|",
        f"| nproc | {m['nproc']} |",
        f"| CPU | {m['cpu']} |",
        f"| memory | {m['memory']} |",
        f"| kernel | {m['kernel']} |",
        f"| load average (1/5/15 min) at start / end | {m['load']} / {m.get('load_end', '?')} |",
        "",
    ]
    lines += ["| versions | |", "|---|---|"] + [f"| {k} | {val} |" for k, val in v.items()] + [""]
    lines += [
        f"Reproduce: `{r['command']}` (or `make bench`), on loopback, with a fresh Kafka "
        f"{v['kafka']} (LocalKafka, free port) and the aiosmtpd mail sink.",
        "",
    ]
    lines += ["### Targets", "", "| target | measured | goal | |", "|---|---|---|---|"]
    lines += [
        f"| {what} | {got} | {goal} | {'met' if ok else '**missed**'} |"
        for what, got, goal, ok in targets(r)
    ]
    lines += [
        "",
        "### 1. Ingest: SMS webhook (open loop, latency from the scheduled send time)",
        "",
    ]
    lines += [
        "| system | saturation /s (best of closed-loop clients) | server CPU µs/req at saturation "
        "| generator CPU at saturation |",
        "|---|---|---|---|",
    ]
    names = {"ingest": "ingest, full SMS path", "bare": "A: bare FastAPI endpoint"}
    for key, label in names.items():
        s = ing[key]["saturation"]
        lines.append(
            f"| {label} | {num(s['rate'])} ({s['concurrency']} clients) | "
            f"{num(s['server_cpu_us'])} | {num(s['gen_cpu_pct'])}% of a core |"
        )
    raw = ing["raw"]["saturation"]
    lines.append(
        f"| B: aiokafka send_and_wait, acks=all, idempotent | {num(raw['rate'])} (32 tasks) | "
        f"{num(raw['cpu_us'])} (client process) | - |"
    )
    sat = ing["ingest"]["saturation"]["rate"]
    lines += [
        "",
        f"ingest / A = {num(sat / ing['bare']['saturation']['rate'], 3)}; "
        f"ingest / B = {num(sat / raw['rate'], 3)}",
        "",
    ]
    lines += [
        "| system | offered /s | p50 ms | p99 ms | p99.9 ms | failed | server CPU µs/req "
        "| generator CPU µs/req | generator dispatch lag p99 ms |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for key, label in (("ingest", "ingest"), ("bare", "A")):
        for run in ing[key]["runs"]:
            lines.append(
                f"| {label} | {num(run['offered'], 1)} | {ms(run['p50'])} | {ms(run['p99'])} | "
                f"{ms(run['p999'])} | {run['errors']}/{run['requests']} | "
                f"{num(run['server_cpu_us'])} | "
                f"{num(run['gen_cpu_us'])} | {ms(run['lag_p99_ms'])} |"
            )
    for run in ing["raw"]["runs"]:
        lines.append(
            f"| B | {num(run['offered'], 1)} | {ms(run['p50'])} | {ms(run['p99'])} | "
            f"{ms(run['p999'])} | {run['errors']}/{run['requests']} | "
            f"{num(run['cpu_us'])} (client) | - | - |"
        )
    rt = r["router"]
    pt = rt["passthrough"]
    lines += [
        "",
        "### 2. Router",
        "",
        "| what | decisions (records) /s | CPU µs per record | notes |",
        "|---|---|---|---|",
        f"| router process, broker to broker | {num(rt['router']['rate'])} | "
        f"{num(rt['router']['cpu_us'])} | "
        f"{rt['router']['decided']} of {rt['router']['n']} decided; "
        f"{num(rt['router']['from_start_s'], 1)} s "
        "from process start to the last |",
        f"| raw passthrough, send_and_wait + commit per record | {num(pt['awaited']['rate'])} | "
        f"{num(pt['awaited']['cpu_us'])} | the router's shape |",
        f"| raw passthrough, pipelined per poll batch | {num(pt['pipelined']['rate'])} | "
        f"{num(pt['pipelined']['cpu_us'])} | for reference only |",
        f"| explain (Policy.decide, no Kafka) | {num(rt['explain']['rate'])} | "
        f"{num(1e6 / rt['explain']['rate'], 1)} | "
        f"bench_explain's target {num(rt['explain']['target'])}/s |",
        "",
        f"router / passthrough = {num(rt['router']['rate'] / pt['awaited']['rate'], 3)}",
        "",
    ]
    lines += [
        "### 3. End to end: webhook accepted -> decision -> email accepted by the SMTP sink",
        "",
        "| offered /s | messages | accepted p50 / p99 ms | decision p50 / p99 ms "
        "| email p50 / p99 ms | missing decisions / emails |",
        "|---|---|---|---|---|---|",
    ]
    for run in r["e2e"]["runs"]:
        lines.append(
            f"| {num(run['offered'])} | {run['requests']} | {ms(run['accepted']['p50'])} / "
            f"{ms(run['accepted']['p99'])} | {ms(run['decision']['p50'])} / "
            f"{ms(run['decision']['p99'])} | "
            f"{ms(run['email']['p50'])} / {ms(run['email']['p99'])} | "
            f"{run['missing_decisions']} / {run['missing_emails']} |"
        )
    peak = r["e2e"]["rss_peak"]
    lines += [
        "",
        "### 4. Memory (VmRSS, MiB)",
        "",
        "| service | idle | under load | load |",
        "|---|---|---|---|",
    ]
    loads = {
        "ingest": (ing["ingest"]["saturation"]["rss_peak"], "ingest saturation"),
        "router": (
            max(peak["router"], rt["router"]["rss_peak"]),
            "end to end 100/s and the router stage",
        ),
        "notifier": (peak["notifier"], "end to end 100/s"),
        "status": (peak["status"], "end to end 100/s"),
    }
    for name, idle in r["rss_idle"].items():
        under, what = loads[name]
        lines.append(f"| {name} | {num(idle)} | {num(under)} | {what} (peak) |")
    lines += ["", f"![latency against offered load]({plot.name})", ""]
    return "\n".join(lines) + "\n"


def draw(r: dict[str, Any], plot: Path) -> None:
    """Latency percentiles against offered load, ingest beside A and B, and end to end."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8))
    styles = {"p50": "-", "p99": "--", "p999": ":"}
    ing = r["ingest"]
    for key, label, color in (
        ("ingest", "ingest", "tab:red"),
        ("bare", "A bare", "tab:blue"),
        ("raw", "B aiokafka", "tab:green"),
    ):
        runs = ing[key]["runs"]
        for q, style in styles.items():
            ys = [min(run[q], 1e5) for run in runs]
            left.plot(
                [run["offered"] for run in runs],
                ys,
                style,
                color=color,
                marker="o",
                label=f"{label} {q.replace('p999', 'p99.9')}",
            )
    left.set(
        xlabel="offered webhooks/s (25/50/75% of ingest saturation)",
        ylabel="latency ms",
        yscale="log",
        title="Ingest vs baselines",
    )
    left.legend(fontsize=7, ncol=3)
    runs = r["e2e"]["runs"]
    for step, color in (
        ("accepted", "tab:red"),
        ("decision", "tab:orange"),
        ("email", "tab:purple"),
    ):
        for q in ("p50", "p99"):
            right.plot(
                [run["offered"] for run in runs],
                [min(run[step][q], 1e6) for run in runs],
                styles[q],
                color=color,
                marker="o",
                label=f"{step} {q}",
            )
    right.axhline(30, color="grey", lw=0.8)
    right.axhline(250, color="grey", lw=0.8, ls="--")
    right.set(
        xlabel="offered interactions/s",
        ylabel="latency ms from the scheduled send",
        yscale="log",
        xscale="log",
        title="End to end (grey: 30 / 250 ms targets)",
    )
    right.legend(fontsize=7)
    fig.suptitle(
        f"refdesk, {r['when']}, {r['machine']['nproc']} cores, load {r['machine']['load']}"
    )
    fig.tight_layout()
    fig.savefig(plot, dpi=110)
    plt.close(fig)


def write(r: dict[str, Any], out: Path, plot: Path) -> None:
    """Insert this run's section under the marker (creating the file if needed); draw the plot."""
    text = out.read_text() if out.exists() else HEADER
    if MARKER not in text:
        text = text.rstrip() + "\n\n" + MARKER + "\n"
    head, tail = text.split(MARKER, 1)
    out.write_text(head + MARKER + "\n\n" + section(r, plot) + tail.lstrip("\n"))
    draw(r, plot)
