"""docs/performance.md: one section per run (newest first) under the hand-written analysis,
and the plot of the latest run (latency against offered load; router rates)."""

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


def targets(r: dict[str, Any]) -> list[tuple[str, str, str, bool | None]]:
    """(what, measured, target, met) for each target of the issue whose stage ran; met is None
    for a ratio shown for reference only."""
    rows: list[tuple[str, str, str, bool | None]] = []
    if "ingest" in r:
        ing, bare = r["ingest"]["ingest"], r["ingest"]["bare"]
        sat, bare_sat = ing["saturation"]["rate"], bare["saturation"]["rate"]
        p99_half = ing["runs"][1]["p99"]
        rows += [
            ("ingest accepted webhooks/s at saturation (acks=all)", num(sat), ">= 800", sat >= 800),
            (
                "ingest / A (bare endpoint) throughput",
                num(sat / bare_sat, 3),
                ">= 0.5",
                sat / bare_sat >= 0.5,
            ),
            ("ingest p99 at 50% of saturation", f"{ms(p99_half)} ms", "<= 50 ms", p99_half <= 50),
        ]
    if "e2e" in r:
        run = at_rate(r["e2e"]["runs"], 100)
        e2e, cpu = run["email"], run.get("cpu_ms", {})
        p50, p99 = e2e["p50"], e2e["p99"]
        total = sum(cpu.values())
        missing = run["missing_emails"]
        rows += [
            ("end to end at 100/s, email p50", f"{ms(p50)} ms", "<= 50 ms", p50 <= 50),
            ("end to end at 100/s, email p99", f"{ms(p99)} ms", "<= 250 ms", p99 <= 250),
            ("end to end at 100/s, emails missing", str(missing), "0", missing == 0),
        ]
        live = r["e2e"].get("with_consoles")
        if live is not None:
            lp50, lp99, lmiss = live["email"]["p50"], live["email"]["p99"], live["missing_emails"]
            staff = live["consoles"]["staff"]
            rows += [
                (
                    f"the same with {staff} consoles open (live streams and the pages' "
                    "fetches), email p50 / p99",
                    f"{ms(lp50)} / {ms(lp99)} ms ({lmiss} missing)",
                    "<= 50 / 250 ms, 0 missing",
                    lp50 <= 50 and lp99 <= 250 and lmiss == 0,
                )
            ]
        rows += [
            (
                "CPU per interaction, summed over the services",
                f"{total:.2f} ms ({', '.join(f'{k} {v:.2f}' for k, v in cpu.items())})",
                "<= 3 ms",
                total <= 3,
            ),
        ]
        if "database_cpu_ms" in run:
            rows += [
                (
                    "... and the database server's, beside them",
                    f"{run['database_cpu_ms']:.2f} ms",
                    "-",
                    None,
                )
            ]
    if "catchup" in r:
        c = r["catchup"]
        rows += [
            (
                f"catch-up of a {c['backlog']:,}-interaction backlog after a router outage",
                f"{c['seconds']:.1f} s ({c['duplicates']} duplicates, {c['missing']} missing)",
                "<= 60 s, 0 duplicates",
                c["seconds"] <= 60 and c["duplicates"] == 0 and c["missing"] == 0,
            )
        ]
    if "console" in r:
        from bench.console_stage import targets as console_targets

        rows += [
            (
                what,
                f"{ms(got)} ms",
                "-" if goal is None else f"<= {goal:,} ms",
                None if goal is None else got <= goal,
            )
            for what, got, goal in console_targets(r["console"])
        ]
    if "router" in r:
        raw, piped = router_ratios(r["router"])
        rows += [
            ("router / raw passthrough", num(raw, 3), ">= 0.7", raw >= 0.7),
            ("router / pipelined passthrough", num(piped, 3), "-", None),
        ]
        paced = r["router"]["passthrough"].get("paced")
        if paced is not None:
            rows.append(
                (
                    f"aiokafka alone at {num(paced['rate'])}/s if every poll, produce and commit "
                    f"carried one record (ingest's send, then a consume-produce-commit hop in "
                    f"{', '.join(HOPS)}; the services' polls carry several)",
                    f"{kafka_unbatched_ms(paced):.2f} ms ({num(paced['produce_us'])} µs a send, "
                    f"{num(paced['hop_us'])} µs a hop)",
                    "-",
                    None,
                )
            )
    return rows


HOPS = ("router", "notifier", "status", "publisher")
"""The services that consume an interaction's events and publish on: one Kafka hop each."""


def kafka_unbatched_ms(paced: dict[str, Any]) -> float:
    """What aiokafka would spend on one interaction at the paced rate if nothing batched:
    ingest's send, then a hop per service in HOPS."""
    return float(paced["produce_us"] + len(HOPS) * paced["hop_us"]) / 1000


def at_rate(runs: list[dict[str, Any]], rate: float) -> dict[str, Any]:
    """The run offered at `rate` (or the last one)."""
    return next((run for run in runs if run["offered"] == rate), runs[-1])


def router_ratios(rt: dict[str, Any]) -> tuple[float, float]:
    """The router's rate over the awaited (raw) and over the pipelined passthrough's."""
    rate, pt = rt["router"]["rate"], rt["passthrough"]
    return rate / pt["awaited"]["rate"], rate / pt["pipelined"]["rate"]


def verdict(met: bool | None) -> str:
    """The last cell of a target row."""
    if met is None:
        return "for reference"
    return "met" if met else "**missed**"


def section(r: dict[str, Any], plot: Path) -> str:
    """The markdown for one run."""
    m, v = r["machine"], r["versions"]
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
        f"{v['kafka']} (LocalKafka, free port) and the aiosmtpd mail sink. The services' "
        f"data: {r.get('database', 'SQLite (a file per service)')}.",
        "",
    ]
    lines += ["### Targets", "", "| target | measured | goal | |", "|---|---|---|---|"]
    lines += [f"| {what} | {got} | {goal} | {verdict(ok)} |" for what, got, goal, ok in targets(r)]
    if "ingest" in r:
        lines += ingest_section(r["ingest"])
    if "router" in r:
        lines += router_section(r["router"])
    if "e2e" in r:
        lines += e2e_section(r["e2e"])
    lines += memory_section(r)
    if drawn(r):
        lines += ["", f"![latency against offered load]({plot.name})", ""]
    return "\n".join(lines) + "\n"


def ingest_section(ing: dict[str, Any]) -> list[str]:
    """Stage 1: ingest beside A and B."""
    lines = [
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
    return lines


def router_section(rt: dict[str, Any]) -> list[str]:
    """Stage 2: the router beside the raw passthroughs and explain."""
    pt = rt["passthrough"]
    raw, piped = router_ratios(rt)
    return [
        "",
        "### 2. Router",
        "",
        "| what | decisions (records) /s | CPU µs per record | notes |",
        "|---|---|---|---|",
        f"| router process, broker to broker | {num(rt['router']['rate'])} | "
        f"{num(rt['router']['cpu_us'])} | "
        f"{rt['router']['decided']} of {rt['router']['n']} decided, rate and CPU over those "
        f"after the first {rt['router'].get('first', 1)} to arrive; "
        f"{num(rt['router']['from_start_s'], 1)} s "
        "from process start to the last |",
        f"| raw passthrough, send_and_wait + commit per record | {num(pt['awaited']['rate'])} | "
        f"{num(pt['awaited']['cpu_us'])} | the target's baseline |",
        f"| raw passthrough, pipelined per poll batch | {num(pt['pipelined']['rate'])} | "
        f"{num(pt['pipelined']['cpu_us'])} | the batch router's shape |",
        *paced_rows(pt.get("paced")),
        f"| explain (Policy.decide, no Kafka) | {num(rt['explain']['rate'])} | "
        f"{num(1e6 / rt['explain']['rate'], 1)} | "
        f"bench_explain's target {num(rt['explain']['target'])}/s; rules alone "
        f"{num(rt['explain']['rules_only'])}/s in the same run, the model keeps "
        f"{num(rt['explain']['rate'] / rt['explain']['rules_only'], 2)} of their rate "
        f"(target {num(rt['explain'].get('target_share', 1 / 3), 2)}) |",
        "",
        f"router / raw passthrough = {num(raw, 3)}; "
        f"router / pipelined passthrough = {num(piped, 3)}",
    ]


def paced_rows(paced: dict[str, Any] | None) -> list[str]:
    """The paced passthrough's rows of the router table (absent from older runs)."""
    if paced is None:
        return []
    rate = num(paced["rate"])
    return [
        f"| pipelined passthrough offered {rate}/s (poll batches of one) | {rate} | "
        f"{num(paced['hop_us'])} | one hop at that rate, when nothing batches |",
        f"| send_and_wait offered {rate}/s | {rate} | {num(paced['produce_us'])} | "
        "ingest's publish, alone |",
    ]


def database_cpu(run: dict[str, Any]) -> str:
    """The database server's CPU per interaction, when it runs apart from the services."""
    if "database_cpu_ms" not in run:
        return ""
    return f"; the database server {run['database_cpu_ms']:.2f} beside them"


def e2e_section(e2e: dict[str, Any]) -> list[str]:
    """Stage 3: webhook to decision to email."""
    lines = [
        "",
        "### 3. End to end: webhook accepted -> decision -> email accepted by the SMTP sink",
        "",
        "| offered /s | messages | accepted p50 / p99 ms | decision p50 / p99 ms "
        "| email p50 / p99 ms | missing decisions / emails | CPU ms per interaction |",
        "|---|---|---|---|---|---|---|",
    ]
    idle = e2e.get("cpu_idle")
    if idle:
        services = sum(v for name, v in idle.items() if name != "broker")
        lines[2:2] = [
            "Idle, before the first run (nothing arriving), in ms of CPU a second: "
            + ", ".join(f"{name} {value:.1f}" for name, value in idle.items())
            + f". The services' {services:.0f} ms a second are {services / 10:.1f} ms per "
            f"interaction at 10/s and {services / 100:.2f} ms at 100/s.",
            "",
        ]
    live = e2e.get("with_consoles")
    runs = [*e2e["runs"], *([live] if live is not None else [])]
    for run in runs:
        cpu = run.get("cpu_ms", {})
        per = ", ".join(f"{k} {v:.2f}" for k, v in cpu.items())
        offered = num(run["offered"])
        if "consoles" in run:
            offered += f", {run['consoles']['staff']} consoles open"
        lines.append(
            f"| {offered} | {run['requests']} | {ms(run['accepted']['p50'])} / "
            f"{ms(run['accepted']['p99'])} | {ms(run['decision']['p50'])} / "
            f"{ms(run['decision']['p99'])} | "
            f"{ms(run['email']['p50'])} / {ms(run['email']['p99'])} | "
            f"{run['missing_decisions']} / {run['missing_emails']} | "
            f"{sum(cpu.values()):.2f} ({per}){database_cpu(run)} |"
        )
    pages = (live or {}).get("consoles", {}).get("pages")
    if live is not None and pages is not None:
        fetches = pages["row_fetches"] + pages["queue_reloads"] + pages["unfinished"]
        timing = (
            f" (each fetch p50 / p99 {ms(pages['p50_ms'])} / {ms(pages['p99_ms'])} ms from the "
            f"page's decision, {pages['failed']} failed, {pages['unfinished']} still waiting "
            "at the end)"
            if fetches
            else ": every event carried its row"
        )
        lines += [
            "",
            f"With {live['consoles']['staff']} consoles open, {live['consoles']['events']:,} live "
            f"events reached them and their pages fetched {pages['row_fetches']:,} queue rows and "
            f"reloaded the queue {pages['queue_reloads']:,} times{timing}.",
        ]
    return lines + stall_rows(runs) + profile_rows(e2e.get("profile"))


def stall_rows(runs: list[dict[str, Any]]) -> list[str]:
    """Each run's stalls (interactions later than 1 s at some step) with the machine and the
    services' warnings over them; one sentence when there were none."""
    if not any("stalls" in run for run in runs):
        return []  # a run recorded before the timeline
    found = [(run, stall) for run in runs for stall in run.get("stalls", [])]
    if not found:
        return ["", "Stalls: no interaction of these runs was later than 1 s at any step."]
    lines = [
        "",
        "Stalls (interactions later than 1 s at some step), with what the machine and the "
        "busiest processes did meanwhile (ms of CPU per second; `waiting for CPU / I/O`: "
        "the kernel's pressure stall figures, time in which some task waited) and the "
        "warnings the services logged:",
        "",
    ]
    for run, stall in found:
        offered = num(run["offered"]) + ("/s with consoles" if "consoles" in run else "/s")
        worst = stall["worst_ms"]
        where = stall.get("timeline") or {}
        machine, pressure = where.get("machine", {}), where.get("pressure", {})
        parts = [
            f"{offered}, {stall['at_s']:.1f} s into the run, {stall['length_s']:.1f} s long, "
            f"{stall['interactions']:,} interactions late; worst accepted / decision / email "
            f"{ms(worst['accepted'])} / {ms(worst['decision'])} / {ms(worst['email'])} ms"
        ]
        if machine:
            parts.append(
                f"machine busy {machine['busy']:,.0f}, waiting for the disk "
                f"{machine['iowait']:,.0f}, stolen {machine['steal']:,.0f}"
            )
        if pressure:
            parts.append(
                f"waiting for CPU {pressure.get('cpu', 0):,.0f} / I/O {pressure.get('io', 0):,.0f}"
            )
        if where.get("busiest"):
            parts.append(
                "busiest "
                + ", ".join(f"{name} {value:,.0f}" for name, value in where["busiest"].items())
            )
        warned = stall.get("warnings", [])
        parts.append(
            "warnings: "
            + "; ".join(
                f'{w["service"]} "{w["message"]}" x{w["count"]}'
                + (f" (worst {w['worst_ms']:,.0f} ms)" if w["worst_ms"] else "")
                for w in warned
            )
            if warned
            else "no warning logged"
        )
        lines.append("- " + "; ".join(parts) + ".")
    return lines


def profile_rows(profile: dict[str, Any] | None) -> list[str]:
    """Where each service's CPU went in the profiled run (absent from older runs, or without
    py-spy): its CPU per interaction, split by the shares of its samples."""
    if not profile or not profile["services"]:
        return []
    lines = [
        "",
        f"Where the CPU goes at {num(profile['rate'])}/s: a run of {num(profile['duration'])} s "
        "of its own with py-spy sampling each service while it holds the interpreter's lock, "
        "each sample counted for the library nearest the top of its stack (the event loop's "
        "own work apart), and the service's CPU in that run split in proportion (C code run "
        "with the lock released, such as SQLite's statements on a database thread, is not "
        "sampled and is split with the rest; "
        "the shares move with how many records each poll brings, i.e. with the machine's "
        "speed in that minute).",
        "",
        "| service | CPU ms per interaction | where (ms per interaction) |",
        "|---|---|---|",
    ]
    totals: dict[str, float] = {}
    for name, found in profile["services"].items():
        cpu = profile["cpu_ms"].get(name, 0.0)
        parts = []
        for what, share in found["shares"].items():
            totals[what] = totals.get(what, 0.0) + share * cpu
            if share >= 0.02:
                parts.append(f"{what} {share * cpu:.2f}")
        lines.append(f"| {name} | {cpu:.2f} | {', '.join(parts)} |")
    overall = sorted(totals.items(), key=lambda item: -item[1])
    lines.append(
        f"| sum | {sum(totals.values()):.2f} | "
        + ", ".join(f"{what} {value:.2f}" for what, value in overall if value >= 0.05)
        + " |"
    )
    return lines


def memory_section(r: dict[str, Any]) -> list[str]:
    """Stage 4: each service's VmRSS idle and at its peak under the stages that ran."""
    peaks: dict[str, list[tuple[float, str]]] = {}
    if "e2e" in r:
        for name in ("router", "notifier", "status"):
            peaks.setdefault(name, []).append((r["e2e"]["rss_peak"][name], "end to end 100/s"))
    if "ingest" in r:
        peak = r["ingest"]["ingest"]["saturation"]["rss_peak"]
        peaks.setdefault("ingest", []).append((peak, "ingest saturation"))
    if "router" in r:
        peaks.setdefault("router", []).append((r["router"]["router"]["rss_peak"], "router stage"))
    idle = r.get("rss_idle", {})
    names = [*idle, *(n for n in peaks if n not in idle)]
    if not names:
        return []
    lines = [
        "",
        "### 4. Memory (VmRSS, MiB)",
        "",
        "| service | idle | under load | load |",
        "|---|---|---|---|",
    ]
    for name in names:
        loads = peaks.get(name, [])
        under = max((v for v, _ in loads), default=float("nan"))
        what = " and ".join(w for _, w in loads) or "-"
        idle_mib = idle.get(name, float("nan"))
        lines.append(f"| {name} | {num(idle_mib)} | {num(under)} | {what} (peak) |")
    return lines


STYLES = {"p50": "-", "p99": "--", "p999": ":"}


def drawn(r: dict[str, Any]) -> bool:
    """Whether a run draws the plot: only one with a latency stage (ingest or end to end), so
    that a run of the router alone (or of catch-up, or the console) does not replace the
    latency plot that earlier sections and the README show."""
    return bool({"ingest", "e2e"} & set(r))


def draw(r: dict[str, Any], plot: Path) -> None:
    """One panel per stage that ran: ingest beside A and B and end to end (latency against
    offered load), and the router beside the passthroughs (rate and CPU per record)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [
        (name, fn)
        for name, fn in (("ingest", _ingest_panel), ("e2e", _e2e_panel), ("router", _router_panel))
        if name in r
    ]
    if not panels:
        return
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.8), squeeze=False)
    for ax, (name, fn) in zip(axes[0], panels, strict=True):
        fn(ax, r[name])
    fig.suptitle(
        f"refdesk, {r['when']}, {r['machine']['nproc']} cores, load {r['machine']['load']}, "
        f"{r.get('database', 'SQLite').split(' (')[0]}"
    )
    fig.tight_layout()
    fig.savefig(plot, dpi=110)
    plt.close(fig)


def _ingest_panel(ax: Any, ing: dict[str, Any]) -> None:
    for key, label, color in (
        ("ingest", "ingest", "tab:red"),
        ("bare", "A bare", "tab:blue"),
        ("raw", "B aiokafka", "tab:green"),
    ):
        runs = ing[key]["runs"]
        for q, style in STYLES.items():
            ys = [min(run[q], 1e5) for run in runs]
            ax.plot(
                [run["offered"] for run in runs],
                ys,
                style,
                color=color,
                marker="o",
                label=f"{label} {q.replace('p999', 'p99.9')}",
            )
    ax.set(
        xlabel="offered webhooks/s (25/50/75% of ingest saturation)",
        ylabel="latency ms",
        yscale="log",
        title="Ingest vs baselines",
    )
    ax.legend(fontsize=7, ncol=3)


def _e2e_panel(ax: Any, e2e: dict[str, Any]) -> None:
    runs = e2e["runs"]
    for step, color in (
        ("accepted", "tab:red"),
        ("decision", "tab:orange"),
        ("email", "tab:purple"),
    ):
        for q in ("p50", "p99"):
            ax.plot(
                [run["offered"] for run in runs],
                [min(run[step][q], 1e6) for run in runs],
                STYLES[q],
                color=color,
                marker="o",
                label=f"{step} {q}",
            )
    ax.axhline(50, color="grey", lw=0.8)
    ax.axhline(250, color="grey", lw=0.8, ls="--")
    ax.set(
        xlabel="offered interactions/s",
        ylabel="latency ms from the scheduled send",
        yscale="log",
        xscale="log",
        title="End to end (grey: 50 / 250 ms targets)",
    )
    ax.legend(fontsize=7)


def _router_panel(ax: Any, rt: dict[str, Any]) -> None:
    pt = rt["passthrough"]
    rows = [
        ("router", rt["router"], "tab:red"),
        ("passthrough\nawaited", pt["awaited"], "tab:green"),
        ("passthrough\npipelined", pt["pipelined"], "tab:blue"),
    ]
    xs = range(len(rows))
    ax.bar(xs, [row["rate"] for _, row, _ in rows], color=[c for _, _, c in rows])
    for x, (_, row, _) in zip(xs, rows, strict=True):
        ax.annotate(
            f"{num(row['rate'])}/s\n{num(row['cpu_us'])} µs CPU",
            (x, row["rate"]),
            ha="center",
            va="bottom",
            fontsize=8,
        )
    raw, piped = router_ratios(rt)
    rates = [row["rate"] for _, row, _ in rows]
    ax.set_yscale("log")
    ax.set_ylim(min(rates) / 3, max(rates) * 3)
    ax.set(
        xticks=list(xs),
        xticklabels=[name for name, _, _ in rows],
        ylabel="records (decisions) per second",
        title=f"Router: {num(raw, 2)} of awaited, {num(piped, 2)} of pipelined passthrough",
    )


def write(r: dict[str, Any], out: Path, plot: Path) -> None:
    """Insert this run's section under the marker (creating the file if needed); draw the plot."""
    text = out.read_text() if out.exists() else HEADER
    if MARKER not in text:
        text = text.rstrip() + "\n\n" + MARKER + "\n"
    head, tail = text.split(MARKER, 1)
    out.write_text(head + MARKER + "\n\n" + section(r, plot) + tail.lstrip("\n"))
    if drawn(r):
        draw(r, plot)
