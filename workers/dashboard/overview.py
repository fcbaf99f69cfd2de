"""The overview's numbers, one snapshot for the page and for every event of its stream.

Per latency class: the broker's view (waiting, in flight, delayed, dead, the head's age), the
ledger's last hour (jobs per minute, failure rate, the chart's series) and the live worker processes
that serve it. An unreachable broker leaves its numbers out (`broker.ok` false) and never fails the
page.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import redis
from django.utils import timezone

from workers import broker_ops, registry
from workers.dashboard import chart, formatting, queries

logger = logging.getLogger(__name__)

# The broker's numbers per queue, in the order of the overview's columns.
BROKER_FIELDS = ("waiting", "in_flight", "delayed", "dead", "oldest_age")
UNREACHABLE = "broker unreachable"


def _broker_stats(queues: list[str]) -> tuple[dict[str, broker_ops.QueueStats], str]:
    """The broker's stats by queue, and "" or the reason they are missing."""
    try:
        return {stats.queue: stats for stats in broker_ops.queue_stats(queues)}, ""
    except broker_ops.BrokerNotInspectable as exc:
        return {}, f"broker not inspectable ({exc})"
    except (redis.exceptions.RedisError, OSError):
        logger.warning("the overview could not read the broker's queues", exc_info=True)
        return {}, UNREACHABLE


def snapshot(*, now: datetime | None = None) -> dict[str, Any]:
    """Everything the overview shows, as JSON-ready data; `cells` hold each number as displayed."""
    now = now or timezone.now()
    classes = queries.class_stats(now=now)
    names = [stats.queue for stats in classes]
    broker, broker_error = _broker_stats(names)
    workers = list(registry.alive("worker").values_list("queues", flat=True))
    minutes = len(classes[0].per_minute) if classes else 60
    rows = []
    for stats in classes:
        queue = broker.get(stats.queue)
        serving = sum(1 for queues in workers if stats.queue in queues)
        row: dict[str, Any] = {
            "queue": stats.queue,
            "ready": stats.ready,
            "running": stats.running,
            "finished_last_hour": stats.finished_last_hour,
            "failed_last_hour": stats.failed_last_hour,
            "per_minute": round(stats.finished_last_hour / max(1, minutes), 2),
            "failure_rate": stats.failure_rate,
            "workers": serving,
            "series": stats.per_minute,
            "failed_series": stats.failed_per_minute,
        }
        row.update({name: getattr(queue, name) if queue else None for name in BROKER_FIELDS})
        cells = {
            "per_minute": formatting.per_minute(stats.finished_last_hour, minutes),
            "failure_rate": formatting.rate(stats.failure_rate),
            "workers": str(serving),
        }
        if queue is None:
            cells.update(dict.fromkeys(BROKER_FIELDS, broker_error or UNREACHABLE))
        else:
            cells.update({name: str(getattr(queue, name)) for name in BROKER_FIELDS if name != "oldest_age"})
            cells["oldest_age"] = formatting.duration(queue.oldest_age)
        row["cells"] = cells
        rows.append(row)
    failures = [sum(values) for values in zip(*(stats.failed_per_minute for stats in classes), strict=True)]
    return {
        "generated_at": now.isoformat(),
        "generated_at_text": timezone.localtime(now).strftime("%H:%M:%S"),
        "broker": {"ok": not broker_error, "error": broker_error},
        "queues": rows,
        "workers_alive": len(workers),
        "schedulers_alive": registry.alive("scheduler").count(),
        "chart": chart.chart({stats.queue: stats.per_minute for stats in classes}, failures),
    }
