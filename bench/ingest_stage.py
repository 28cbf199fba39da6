"""Stage 1: ingest's SMS webhook at saturation and at fixed rates, beside baselines A and B."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from bench import rawkafka
from bench.drive import loadgen, summarise_closed, summarise_open
from bench.machine import RssPeak
from bench.payloads import interaction_records
from bench.system import start_bare_app

log = logging.getLogger("bench")
FRACTIONS = (0.25, 0.50, 0.75)
RAW_TOPIC = "bench.raw.send"


def _spec(port: int, pid: int | None, tag: int, **kw: Any) -> dict[str, Any]:
    return {
        "port": port,
        "server_pid": pid,
        "tag": tag,
        "kind": "sms",
        "phone_base": "+1817555",
        **kw,
    }


def saturation(
    root: Path, port: int, pid: int, tag: int, *, levels: tuple[int, ...], duration: float
) -> dict[str, Any]:
    """The best accepted/s over closed-loop runs at each concurrency level."""
    loadgen(root, _spec(port, None, tag, mode="open", rate=50, duration=2))  # warm-up
    best: dict[str, Any] = {"rate": 0.0}
    for k, conc in enumerate(levels):
        with RssPeak({"server": pid}) as rss:
            got = summarise_closed(
                loadgen(
                    root,
                    _spec(
                        port, pid, tag + k + 1, mode="closed", concurrency=conc, duration=duration
                    ),
                )
            )
        got["concurrency"], got["rss_peak"] = conc, rss.peak["server"]
        log.info(
            "  saturation at %d clients: %.0f/s (server CPU %.0f%%, generator %.0f%%)",
            conc,
            got["rate"],
            got["server_cpu_pct"],
            got["gen_cpu_pct"],
        )
        best = got if got["rate"] > best["rate"] else best
    return best


def fixed_rates(
    root: Path, port: int, pid: int, tag: int, rates: list[float], duration: float
) -> list[dict[str, Any]]:
    """Open-loop runs at each rate (after a short warm-up at the first one)."""
    out = []
    for k, rate in enumerate(rates):
        res = loadgen(
            root,
            _spec(
                port,
                pid,
                tag + k,
                mode="open",
                rate=rate,
                duration=duration,
                warmup=1.0,
                warmup_rate=rate,
            ),
        )
        summary = summarise_open(res, rate)
        log.info(
            "  %.0f/s offered: p50 %.1f ms, p99 %.1f ms, p99.9 %.1f ms, %d errors",
            rate,
            summary["p50"],
            summary["p99"],
            summary["p999"],
            summary["errors"],
        )
        out.append(summary)
    return out


def raw_send(
    bootstrap: str, rates: list[float], *, duration: float, concurrency: int
) -> dict[str, Any]:
    """Baseline B: aiokafka send_and_wait (acks=all, idempotent) at saturation and the rates."""
    records = interaction_records(2000, tag=0xB)

    async def go() -> dict[str, Any]:
        await rawkafka.create_topics(bootstrap, [RAW_TOPIC], 3)
        sat = await rawkafka.send_saturation(
            bootstrap, RAW_TOPIC, records, concurrency=concurrency, duration=duration
        )
        log.info("  B saturation: %.0f sends/s", sat["rate"])
        runs = []
        for rate in rates:
            got = await rawkafka.send_open(
                bootstrap, RAW_TOPIC, records, rate=rate, duration=duration
            )
            lat = [v * 1e3 if v == v else float("inf") for v in got["lat"]]
            runs.append({"offered": rate, "lat": lat, "cpu_us": got["cpu_us"]})
        return {"saturation": sat, "runs": runs}

    import uvloop

    result: dict[str, Any] = uvloop.run(go())
    from bench.drive import percentile

    for run in result["runs"]:
        lat = run.pop("lat")
        run.update(
            requests=len(lat),
            errors=sum(1 for v in lat if v == float("inf")),
            p50=percentile(lat, 50),
            p99=percentile(lat, 99),
            p999=percentile(lat, 99.9),
        )
    return result


def run(
    root: Path, bootstrap: str, ingest_port: int, ingest_pid: int, *, quick: bool
) -> dict[str, Any]:
    """Saturation of ingest, A and B, then each at 25/50/75% of ingest's saturation."""
    levels = (16,) if quick else (8, 32)
    sat_s, rate_s = (4.0, 5.0) if quick else (8.0, 12.0)
    log.info("ingest: saturation")
    ingest_sat = saturation(root, ingest_port, ingest_pid, 0x100, levels=levels, duration=sat_s)
    proc, port = start_bare_app(root)
    try:
        log.info("baseline A (bare FastAPI endpoint): saturation")
        bare_sat = saturation(
            root, port, proc.pid, 0x200, levels=(16,) if quick else (32, 64), duration=sat_s
        )
        rates = [round(ingest_sat["rate"] * f, 1) for f in FRACTIONS]
        log.info("ingest at %s/s", rates)
        ingest_runs = fixed_rates(root, ingest_port, ingest_pid, 0x300, rates, rate_s)
        log.info("baseline A at %s/s", rates)
        bare_runs = fixed_rates(root, port, proc.pid, 0x400, rates, rate_s)
    finally:
        proc.terminate()
        proc.wait(10)
    log.info("baseline B (aiokafka send_and_wait)")
    raw = raw_send(bootstrap, rates, duration=sat_s if quick else rate_s, concurrency=32)
    return {
        "ingest": {"saturation": ingest_sat, "runs": ingest_runs},
        "bare": {"saturation": bare_sat, "runs": bare_runs},
        "raw": raw,
        "rates": rates,
    }
