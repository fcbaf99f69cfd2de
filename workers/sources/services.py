"""Writes on sources. Views, the admin and jobs call these."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from workers.errors import DuplicateJob
from workers.models import Job
from workers.services import EnqueuedMany, job_enqueue, job_enqueue_many
from workers.sources.models import Source

SYNC_TASK = "sources.sync_source"
SYNC_ALL_TASK = "sources.sync_all"


def source_sync_request(*, source: Source, requested_by: Any = None) -> Job:
    """Enqueue a sync of the source; DuplicateJob(existing id) if one is queued or running."""
    return job_enqueue(task=SYNC_TASK, params={"source_id": source.pk}, requested_by=requested_by)


def source_sync_enqueue(*, source: Source, requested_by: Any = None) -> Job | None:
    """Like source_sync_request, but None instead of DuplicateJob (for sync_all and the admin)."""
    try:
        return source_sync_request(source=source, requested_by=requested_by)
    except DuplicateJob:
        return None


def source_sync_enqueue_many(*, sources: Iterable[Source], requested_by: Any = None) -> EnqueuedMany:
    """Enqueue a sync of every source in one bulk write; those already syncing are left out and
    reported in `duplicates` (one active sync per source)."""
    return job_enqueue_many(
        task=SYNC_TASK, params_list=[{"source_id": source.pk} for source in sources], requested_by=requested_by
    )


def source_sync_all_request(*, requested_by: Any = None) -> Job:
    """Enqueue sources.sync_all; DuplicateJob if one is queued or running."""
    return job_enqueue(task=SYNC_ALL_TASK, params={}, requested_by=requested_by)
