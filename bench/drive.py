"""Running the load generator process and summarising what it measured."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

OK = (200, 202)


def loadgen(root: Path, spec: dict[str, Any]) -> dict[str, Any]:
    """Run bench.loadgen in its own process with a spec; its results."""
    name = uuid.uuid4().hex[:8]
    spec_file, out = root / f"spec-{name}.json", root / f"out-{name}.json"
    spec_file.write_text(json.dumps(spec))
    subprocess.run(
        [sys.executable, "-m", "bench.loadgen", str(spec_file), str(out)],
        check=True,
        timeout=float(spec.get("duration", 10)) + float(spec.get("warmup", 0)) + 120,
    )
    result: dict[str, Any] = json.loads(out.read_text())
    out.unlink()
    spec_file.unlink()
    return result


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of unsorted values; nan when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(0, math.ceil(q / 100 * len(ordered)) - 1)
    return ordered[rank]


def latencies_ms(result: dict[str, Any]) -> list[float]:
    """Per request: answer time minus scheduled time in ms; inf when refused or unanswered."""
    out = []
    for due, end, code in zip(result["sched"], result["end"], result["status"], strict=True):
        ok = code in OK and end == end  # end is nan when unanswered
        out.append((end - due) * 1e3 if ok else math.inf)
    return out


def summarise_open(result: dict[str, Any], rate: float) -> dict[str, Any]:
    """Latency percentiles, errors and CPU per request of an open-loop run."""
    lat = latencies_ms(result)
    n = len(lat)
    return {
        "offered": rate,
        "requests": n,
        "errors": sum(1 for v in lat if v == math.inf),
        "p50": percentile(lat, 50),
        "p99": percentile(lat, 99),
        "p999": percentile(lat, 99.9),
        "server_cpu_us": (result["server_cpu_s"] or 0) / max(n, 1) * 1e6,
        "gen_cpu_us": result["cpu_s"] / max(n, 1) * 1e6,
        "gen_cpu_pct": result["cpu_s"] / max(result["offer_s"], 1e-9) * 100,
        "lag_p99_ms": result["lag_p99_ms"],
        "conns": result["conns"],
    }


def summarise_closed(result: dict[str, Any]) -> dict[str, Any]:
    """Accepted requests per second over the run and CPU per accepted request."""
    t0, t1 = result["window"]
    accepted = sum(
        1
        for end, code in zip(result["end"], result["status"], strict=True)
        if code in OK and end <= t1
    )
    elapsed = t1 - t0
    errors = sum(1 for code in result["status"] if code not in OK)
    return {
        "rate": accepted / elapsed,
        "accepted": accepted,
        "errors": errors,
        "server_cpu_us": (result["server_cpu_s"] or 0) / max(accepted, 1) * 1e6,
        "server_cpu_pct": (result["server_cpu_s"] or 0) / result["offer_s"] * 100,
        "gen_cpu_pct": result["cpu_s"] / result["offer_s"] * 100,
        "gen_cpu_us": result["cpu_s"] / max(len(result["status"]), 1) * 1e6,
        "p50": percentile(
            [(e - s) * 1e3 for s, e in zip(result["sched"], result["end"], strict=True)], 50
        ),
    }
