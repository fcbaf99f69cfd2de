"""Greenroom's side of the comparison: enqueue through the services, with the ledger (run by run.py).

The environment names the database and broker (DATABASE_URL, GREENROOM_BROKER_URL). The job is
`diagnostics.noop` (interactive queue); its row's `started_at`, set by the worker's claim with
time.time()'s clock, is its start time. Commands in common.Driver, plus `ledger` (rows by status).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(BASE_DIR))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")

import django  # noqa: E402

django.setup()

from common import Driver, timed  # noqa: E402
from django.db.models import Count  # noqa: E402

from workers import services  # noqa: E402
from workers.models import Job, JobStatus  # noqa: E402

TASK = "diagnostics.noop"


class GreenroomDriver(Driver):
    def __init__(self) -> None:
        Job.objects.exists()  # connect before any clock starts

    def single(self, count: int) -> dict[str, Any]:
        elapsed = timed(lambda: [services.job_enqueue(task=TASK) for _ in range(count)])
        return {"rate": count / elapsed, "elapsed": elapsed, "call": "services.job_enqueue loop"}

    def bulk(self, count: int) -> dict[str, Any]:
        enqueue_many = getattr(services, "job_enqueue_many", None)
        if enqueue_many is None:
            return {"rate": None, "call": "n/a: no services.job_enqueue_many"}
        elapsed = timed(lambda: enqueue_many(task=TASK, params_list=[{}] * count))
        return {"rate": count / elapsed, "elapsed": elapsed, "call": "services.job_enqueue_many"}

    def cleanup(self) -> None:
        # The harness empties the queue next: rows left READY would be published again later.
        Job.objects.filter(status=JobStatus.READY).delete()

    def send(self) -> str:
        return str(services.job_enqueue(task=TASK).pk)

    def started(self, tokens: list[str]) -> dict[str, float]:
        rows = Job.objects.filter(pk__in=tokens, started_at__isnull=False).values_list("pk", "started_at")
        return {str(pk): when.timestamp() for pk, when in rows if when is not None}

    def extra(self, command: str) -> dict[str, Any]:
        if command != "ledger":
            return super().extra(command)
        rows = Job.objects.values_list("status").annotate(n=Count("pk")).values_list("status", "n")
        return {"by_status": dict(rows)}


if __name__ == "__main__":
    GreenroomDriver().main()
