"""Firing one slot of one schedule: at most one Fire row, and so at most one job, per slot.

The Fire row and the job are written in one transaction; the job is published after it commits.
Two schedulers firing the same slot race on the Fire row's unique constraint: the loser writes
nothing. A job that declares its own unique key (the maintenance jobs do, so that two runs never
overlap) keeps it; any other job gets the key 'schedule:<schedule key>:<slot>'.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from django.db import IntegrityError, transaction

from schedules.models import Fire, Schedule
from workers import catalogue
from workers.errors import DuplicateJob
from workers.services import job_enqueue

logger = logging.getLogger(__name__)


def slot_unique_key(schedule_key: str, slot: datetime) -> str:
    return f"schedule:{schedule_key}:{slot.astimezone(UTC).isoformat()}"


def schedule_fire(
    *,
    schedule_key: str,
    slot: datetime,
    task: str,
    params: dict[str, Any] | None = None,
    schedule: Schedule | None = None,
    requested_by: Any = None,
) -> Fire | None:
    """Enqueue `task` for `slot` unless that slot was fired already (then return None).

    Raises UnknownTask or InvalidParams (nothing is written then). When the job's own unique key
    is taken by a job still active, the Fire is kept, without a job, and says so in its note.
    """
    slot = slot.astimezone(UTC)
    with transaction.atomic():
        try:
            with transaction.atomic():
                fire = Fire.objects.create(schedule_key=schedule_key, slot=slot, schedule=schedule)
        except IntegrityError:
            return None  # another scheduler (or an earlier tick) fired this slot
        spec = catalogue.get(task)
        own_key = spec is not None and spec.unique_key is not None
        try:
            job = job_enqueue(
                task=task,
                params=params,
                requested_by=requested_by,
                unique_key=None if own_key else slot_unique_key(schedule_key, slot),
            )
        except DuplicateJob as exc:
            fire.note = f"not enqueued: job {exc.existing_id} with the same unique key is still active"
            fire.save(update_fields=["note"])
            logger.warning("schedule %s slot %s: %s", schedule_key, slot.isoformat(), fire.note)
            return fire
        fire.job = job
        fire.save(update_fields=["job"])
    logger.info("schedule %s fired slot %s: %s job %s", schedule_key, slot.isoformat(), task, job.pk)
    return fire
