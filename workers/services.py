"""Writes on jobs: enqueue, cancel, retry. Views, the admin, commands and schedules call these."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import pydantic
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from workers import catalogue, conf, metrics, publishing
from workers.errors import DuplicateJob, IllegalTransition, InvalidParams, UnknownTask
from workers.execution import run_eager
from workers.models import ACTIVE_STATUSES, Job, JobStatus

logger = logging.getLogger(__name__)


def job_validate_params(*, task: str, params: dict[str, Any] | None) -> tuple[catalogue.JobSpec, dict[str, Any]]:
    """Look the task up and validate its params; raise UnknownTask or InvalidParams."""
    spec = catalogue.get(task)
    if spec is None:
        raise UnknownTask(f"unknown task {task!r}")
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise InvalidParams("params must be a JSON object")
    try:
        clean = spec.params.model_validate(params).model_dump(mode="json")
    except pydantic.ValidationError as exc:
        errors: list[dict[str, object]] = [
            {"field": ".".join(str(p) for p in err["loc"]) or "params", "message": err["msg"]}
            for err in exc.errors(include_url=False, include_context=False, include_input=False)
        ]
        raise InvalidParams("invalid params", errors=errors) from None
    return spec, clean


def job_enqueue(
    *,
    task: str,
    params: dict[str, Any] | None = None,
    requested_by: Any = None,
    unique_key: str | None = None,
    retry_of: Job | None = None,
    priority: int | None = None,
) -> Job:
    """Write a READY job and publish it once the surrounding transaction commits.

    `priority` (default: the job's catalogue priority; lower = more urgent) below its latency
    class's priority puts the job ahead of the class's waiting jobs (docs/architecture.md).

    Raises UnknownTask, InvalidParams, or DuplicateJob when a job with the same unique key is
    already READY or RUNNING (the database decides, so two racing requests yield one job).
    """
    spec, clean = job_validate_params(task=task, params=params)
    if unique_key is None and spec.unique_key is not None:
        unique_key = spec.unique_key(clean)
    user = requested_by if getattr(requested_by, "is_authenticated", False) else None
    urgent = _urgent_priority(spec, priority)
    # A savepoint only where a unique-key conflict is to be caught inside a caller's transaction
    # (any other error breaks that transaction anyway). Outside one, the INSERT commits by itself:
    # no BEGIN and COMMIT round trips around it.
    guard = transaction.atomic() if unique_key is not None and connection.in_atomic_block else nullcontext()
    eager = conf.get().eager
    # Outside a transaction the row commits by itself and is sent right after: it is written already
    # marked published (the outbox's mark, `enqueued_at`), one commit instead of an INSERT and an
    # UPDATE. A crash before the send leaves it as one after the mark would: republish_lost finds it.
    send_at_once = not eager and not _in_transaction()
    try:
        with guard:
            job = Job.new_ready(task=spec.name, queue=spec.queue, params=clean, requested_by_id=None,
                                unique_key=unique_key, priority=urgent)
            job.requested_by = user
            job.retry_of = retry_of
            if send_at_once:
                job.enqueued_at = timezone.now()
            Job.insert_one(job)
    except IntegrityError:
        if unique_key is None:
            raise  # not the one-active-job-per-key constraint: a real error
        existing = Job.objects.filter(unique_key=unique_key, status__in=ACTIVE_STATUSES).values_list("pk", flat=True)
        raise DuplicateJob(existing.first()) from None
    metrics.job_enqueued(job)
    if send_at_once:
        publishing.send_marked(job)
    elif eager:

        def run_now() -> None:
            run_eager(spec, str(job.pk))
            job.refresh_from_db()  # the caller sees how it ended

        _after_commit(run_now)
    else:
        _after_commit(lambda: publishing.publish(job))
    return job


def _urgent_priority(spec: catalogue.JobSpec, priority: int | None) -> int | None:
    """The priority a job's row and message carry: `priority` (default: the task's catalogue
    priority) when it is more urgent than the job's latency class, else None (an ordinary job)."""
    priority = spec.priority if priority is None else priority
    return priority if priority < catalogue.QUEUE_DEFAULTS[spec.queue].priority else None


# Rows per INSERT (one executemany) and per duplicate look-up of job_enqueue_many; its publish batches
# are publishing.PUBLISH_BATCH.
ENQUEUE_BATCH = 1000
# Invalid items described in one InvalidParams from job_enqueue_many (the first ones).
MAX_REPORTED_INVALID = 20


@dataclass(frozen=True)
class SkippedDuplicate:
    """An item job_enqueue_many left out: its unique key belongs to an active job."""

    index: int  # its position in `params_list`
    unique_key: str
    existing_id: uuid.UUID | None  # the job holding the key (None: it ended before we could look)


@dataclass(frozen=True)
class EnqueuedMany:
    """What job_enqueue_many did: the jobs it wrote, in input order, and the items it skipped."""

    jobs: list[Job]
    duplicates: list[SkippedDuplicate] = field(default_factory=list)


def job_enqueue_many(
    *,
    task: str,
    params_list: Sequence[dict[str, Any] | None],
    requested_by: Any = None,
    unique_keys: Sequence[str | None] | None = None,
    priority: int | None = None,
) -> EnqueuedMany:
    """Write many READY jobs of one task in bulk; publish them in pipelined batches after commit.

    All or nothing: every params is validated first (UnknownTask, or one InvalidParams naming the
    bad items by index), and the rows are written in one transaction. A unique key (from
    `unique_keys`, one per item, or the job's declaration) held by an active job — or by an earlier
    item of the same call — does not fail the call: that item is skipped and reported in
    `duplicates`, as `job_enqueue` would have raised DuplicateJob for it alone. `priority` is
    `job_enqueue`'s, for every job.
    """
    spec = catalogue.get(task)
    if spec is None:
        raise UnknownTask(f"unknown task {task!r}")
    if unique_keys is not None and len(unique_keys) != len(params_list):
        raise ValueError(f"unique_keys has {len(unique_keys)} items for {len(params_list)} params")
    cleaned: list[dict[str, Any]] = []
    invalid: list[dict[str, object]] = []
    for index, params in enumerate(params_list):
        try:
            cleaned.append(job_validate_params(task=task, params=params)[1])
        except InvalidParams as exc:
            invalid += [{**error, "field": f"[{index}].{error['field']}"} for error in exc.errors] or [
                {"field": f"[{index}]", "message": str(exc)}]
            if len(invalid) >= MAX_REPORTED_INVALID:
                break
    if invalid:
        raise InvalidParams("invalid params; nothing was enqueued", errors=invalid[:MAX_REPORTED_INVALID])
    user_id = requested_by.pk if getattr(requested_by, "is_authenticated", False) else None
    urgent = _urgent_priority(spec, priority)
    keyed: dict[str, Job] = {}
    duplicates: list[SkippedDuplicate] = []
    rows: list[tuple[int, Job]] = []
    for index, clean in enumerate(cleaned):
        key = unique_keys[index] if unique_keys is not None else None
        if key is None and spec.unique_key is not None:
            key = spec.unique_key(clean)
        if key is not None and key in keyed:  # an earlier item of this call holds it
            duplicates.append(SkippedDuplicate(index, key, keyed[key].pk))
            continue
        job = Job.new_ready(task=spec.name, queue=spec.queue, params=clean, requested_by_id=user_id, unique_key=key,
                            priority=urgent)
        if key is not None:
            keyed[key] = job
        rows.append((index, job))
    # As in job_enqueue: outside a transaction the rows are written already marked published and
    # sent right after the commit (no mark UPDATE per batch). A crash before every batch is sent
    # leaves the unsent rows to republish_lost, not to the relay (docs/architecture.md, "Statements").
    marked_at = timezone.now() if not conf.get().eager and not _in_transaction() else None
    if marked_at is not None:
        for _, job in rows:
            job.enqueued_at = marked_at
    with transaction.atomic():
        jobs: list[Job] = []
        for first in range(0, len(rows), ENQUEUE_BATCH):
            written, skipped = _insert_batch(rows[first : first + ENQUEUE_BATCH])
            jobs += written
            duplicates += skipped
        if jobs:
            metrics.jobs_enqueued(spec.name, spec.queue, len(jobs))
    duplicates.sort(key=lambda duplicate: duplicate.index)
    if conf.get().eager:

        def run_now() -> None:
            for job in jobs:
                run_eager(spec, str(job.pk))
                job.refresh_from_db()

        _after_commit(run_now)
    elif jobs:
        _after_commit(lambda: publishing.publish_many(jobs, marked_at=marked_at))
    return EnqueuedMany(jobs=jobs, duplicates=duplicates)


def _insert_batch(rows: list[tuple[int, Job]]) -> tuple[list[Job], list[SkippedDuplicate]]:
    """INSERT one batch; rows whose unique key an active job holds are left out and reported."""
    keys = {job.unique_key: (index, job) for index, job in rows if job.unique_key is not None}
    if not keys:
        Job.insert_many([job for _, job in rows])
        return [job for _, job in rows], []
    active = dict(
        Job.objects.filter(unique_key__in=list(keys), status__in=ACTIVE_STATUSES).values_list("unique_key", "pk")
    )
    fresh = [(index, job) for index, job in rows if job.unique_key not in active]
    # A job with the same key may still be written between that look-up and this INSERT (another
    # request racing us): the database skips such a row (ON CONFLICT DO NOTHING / INSERT OR IGNORE).
    Job.insert_many([job for _, job in fresh], ignore_conflicts=True)
    fresh_keyed = [job.pk for _, job in fresh if job.unique_key is not None]
    landed = set(Job.objects.filter(pk__in=fresh_keyed).values_list("pk", flat=True))
    lost = {job.unique_key for _, job in fresh if job.unique_key is not None and job.pk not in landed}
    if lost:
        active.update(
            Job.objects.filter(unique_key__in=list(lost), status__in=ACTIVE_STATUSES).values_list("unique_key", "pk")
        )
    written = [job for _, job in fresh if job.unique_key is None or job.pk in landed]
    skipped = [SkippedDuplicate(index, key, active.get(key)) for key, (index, job) in keys.items()
               if job.pk not in landed]
    return written, skipped


def _after_commit(fn: Any) -> None:
    """Run `fn` now outside a transaction; inside one, after the outermost commit.

    The transactions that Django's TestCase (pytest-django's `db`) wraps each test in do not count:
    in them, eager jobs run at once, as they would in the application.
    """
    if _in_transaction():
        transaction.on_commit(fn)
    else:
        fn()


def _in_transaction() -> bool:
    """Inside a transaction of the caller's (not one of Django's TestCase, see `_after_commit`)."""
    return any(not getattr(block, "_from_testcase", False) for block in connection.atomic_blocks)


def job_cancel(*, job: Job) -> Job:
    """Cancel a READY job now, or ask a RUNNING one to stop at its next progress check."""
    job.cancel()
    return job


def job_retry(*, job: Job, requested_by: Any = None) -> Job:
    """Enqueue a new job with the same task and params as a FAILED or CANCELLED one.

    The new job keeps the original's owner, so the owner sees the rerun of their job even when an
    operator asked for it; `requested_by` owns it only if the original had no owner (e.g. the CLI).
    """
    if job.status not in (JobStatus.FAILED, JobStatus.CANCELLED):
        raise IllegalTransition(f"only failed or cancelled jobs can be retried; this one is {job.status}")
    # retry_of is written with the row: in eager mode the new job has run by the time we return.
    retry = job_enqueue(
        task=job.task,
        params=job.params,
        requested_by=job.requested_by or requested_by,
        unique_key=job.unique_key,
        retry_of=job,
        priority=job.priority,  # an urgent job's rerun is urgent too; None: the task's own
    )
    _dismiss([job])  # after the enqueue: should this fail, the failure stays listed, not lost
    return retry


def job_discard(*, job: Job) -> Job:
    """Take a FAILED job off the failures page (and its message out of the dead-letter queue)."""
    if job.status != JobStatus.FAILED:
        raise IllegalTransition(f"only failed jobs can be discarded; this one is {job.status}")
    _dismiss([job])
    job.refresh_from_db()
    return job


def _dismiss(jobs: list[Job]) -> None:
    """Mark failures as dealt with and drop their dead letters once that commits."""
    from workers import broker_ops

    now = timezone.now()
    Job.objects.filter(pk__in=[job.pk for job in jobs], dismissed_at__isnull=True).update(dismissed_at=now)
    by_queue: dict[str, set[str]] = {}
    for job in jobs:
        job.dismissed_at = job.dismissed_at or now
        by_queue.setdefault(job.queue, set()).add(str(job.pk))

    def drop_dead_letters() -> None:
        for queue, ids in by_queue.items():
            try:
                broker_ops.remove_dead_letters_of_jobs(queue, ids)
            except broker_ops.BrokerNotInspectable:
                return
            except Exception:  # the broker is away: the dead letter expires on its own (7 days)
                logger.warning("could not remove the dead letters of %d job(s) in %s", len(ids), queue,
                               exc_info=True)

    _after_commit(drop_dead_letters)
