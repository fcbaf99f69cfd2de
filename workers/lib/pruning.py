"""Deleting old finished jobs in small batches, so that the ledger never gets locked for long."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from workers.models import FINISHED_STATUSES, Job

# Rows deleted per statement (and per transaction): short locks, bounded undo/WAL per step.
PRUNE_BATCH = 1000


def prune_finished_jobs(
    *, before: datetime, on_progress: Callable[[int, int], None] | None = None, batch: int = PRUNE_BATCH
) -> dict[str, int]:
    """Delete finished jobs that finished before `before`, `batch` rows at a time."""
    old = Job.objects.filter(status__in=FINISHED_STATUSES, finished_at__lt=before)
    total = old.count()
    deleted = batches = 0
    while True:
        ids = list(old.order_by("finished_at").values_list("pk", flat=True)[:batch])
        if not ids:
            break
        # Autocommit: each batch is its own short transaction.
        count, _ = Job.objects.filter(pk__in=ids, status__in=FINISHED_STATUSES).delete()
        deleted += count
        batches += 1
        if on_progress is not None:
            on_progress(deleted, max(total, deleted))
    return {"deleted": deleted, "batches": batches}
