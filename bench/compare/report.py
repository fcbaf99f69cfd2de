"""The comparison table: one row per system, ratios against Celery and raw Dramatiq (Markdown)."""

from __future__ import annotations

from typing import Any

CELERY = "celery-prefork-2"
# The raw Dramatiq row with the same process count as each system (ratios compare like with like).
DRAMATIQ_FOR = {1: "dramatiq-1x8", 2: "dramatiq-2x8"}


def _num(value: float | None, digits: int = 0) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def _ratios(value: float | None, celery: float | None, dramatiq: float | None) -> str:
    parts = []
    if value is not None and celery:
        parts.append(f"{value / celery:.2f}x C")
    if value is not None and dramatiq:
        parts.append(f"{value / dramatiq:.2f}x D")
    return "; ".join(parts) or "—"


def _lat(result: dict[str, Any], mode: str) -> str:
    lat = result.get("latency", {}).get(mode)
    if not lat or not lat.get("n"):
        return "—"
    missing = f" ({lat['missing']} lost)" if lat.get("missing") else ""
    return f"{lat['p50']:.1f} / {lat['p95']:.1f} / {lat['p99']:.1f}{missing}"


def render(run: dict[str, Any]) -> str:
    results: dict[str, dict[str, Any]] = run["results"]
    systems: dict[str, dict[str, Any]] = run["systems"]

    def drain_of(key: str) -> float | None:
        return results.get(key, {}).get("drain", {}).get("median")

    def enqueue_of(key: str, how: str) -> float | None:
        return results.get(key, {}).get(f"enqueue_{how}", {}).get("rate")

    header = ["system", "processes x threads", "drain jobs/s, median (range)", "drain vs Celery / Dramatiq",
              "enqueue single /s", "enqueue bulk /s", "enqueue single vs C / D",
              "latency ms p50/p95/p99: back to back", "0.1 s gaps", "idle worker",
              "first send of a fresh process, ms",
              "idle CPU % (all processes)", "RSS MB per process", "Redis bytes / queued job",
              "ledger writes / job (PostgreSQL)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for key, system in systems.items():
        result = results.get(key, {})
        dramatiq_key = DRAMATIQ_FOR.get(system["processes"], "dramatiq-2x8")
        drain = result.get("drain", {})
        runs = drain.get("runs") or []
        drain_cell = "n/a" if not runs else f"{drain['median']:,.0f} ({min(runs):,.0f}-{max(runs):,.0f})"
        if runs and not drain.get("complete"):
            drain_cell += " (a run did not drain)"
        single, bulk = enqueue_of(key, "single"), enqueue_of(key, "bulk")
        bulk_call = result.get("enqueue_bulk", {}).get("call", "")
        idle = result.get("idle", {})
        writes = result.get("db_writes")
        writes_cell = "; ".join(
            f"{phase} {w['inserted']:.2f} ins + {w['updated']:.2f} upd + {w['deleted']:.2f} del, "
            f"{w['commits']:.2f} commits" for phase, w in writes.items()) if writes else "—"
        cells = [
            f"{key} ({system['label']})",
            f"{system['processes']} x {system['threads']}",
            drain_cell,
            _ratios(drain_of(key), drain_of(CELERY) if key != CELERY else None,
                    drain_of(dramatiq_key) if key != dramatiq_key else None),
            _num(single) if "enqueue_single" in result else "—",
            (_num(bulk) + f" ({bulk_call})" if bulk else (bulk_call or "—")) if "enqueue_bulk" in result else "—",
            _ratios(single, enqueue_of(CELERY, "single") if key != CELERY else None,
                    enqueue_of("dramatiq-2x8", "single") if not key.startswith("dramatiq") else None)
            if single else "—",
            _lat(result, "b2b"), _lat(result, "gap"), _lat(result, "idle"),
            _num(result["latency"]["cold"]["max"], 1) if result.get("latency", {}).get("cold") else "—",
            f"{idle['cpu_total']:.2f} ({idle['processes']} processes)" if idle else "—",
            f"{idle['rss_mean']:.0f} (total {idle['rss_total']:.0f})" if idle.get("rss_mean") else "—",
            _num(result.get("redis_bytes_per_job")),
            writes_cell,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    machine = run["machine"]
    legend = (
        f"\n{machine['date']}; {machine['nproc']} CPUs ({machine['cpu']}), {machine['ram_gb']} GB RAM, "
        f"load before {machine['load_before']}; Python {machine['python']}, redis-server {machine['redis_server']}, "
        + ", ".join(f"{k} {v}" for k, v in machine["versions"].items())
        + f". Drain: {run['args']['jobs']:,} no-op jobs pre-queued, {run['args']['runs']} runs, from the first "
        "finished job to the last (start-up excluded). C = Celery prefork 2, D = raw Dramatiq with the same "
        "number of processes. Latency: enqueue call → the job's recorded start, same clock, from an enqueuing "
        "process that has sent one job before (its first send, which opens connections, is the column after)."
    )
    return "\n".join(lines) + legend
