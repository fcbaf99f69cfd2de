"""Operator actions that take more than one service call: purge a queue, redrive the dead-letter
queue, retry failures in bulk, and the reads behind `manage.py jobs stats`.

Every action goes through the ledger first and the broker second, so that the ledger stays the truth:
a purged job is CANCELLED before its message is deleted (else the reconciler would publish it again),
and a redriven failure is a new job enqueued by `services.job_retry`, never a re-sent old message.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import dramatiq
from django.db.models import Count, Q, QuerySet
from django.utils import timezone
from dramatiq.common import current_millis, q_name

from workers import broker_ops, catalogue, services
from workers.errors import GreenroomError
from workers.execution import ATTEMPT_OPTION
from workers.models import FleetProcess, Job, JobStatus, ProcessKind

logger = logging.getLogger(__name__)

# The progress message of a job cancelled by a purge.
PURGED_MESSAGE = "purged by an operator"
# Dead letters read per queue by one redrive or bulk retry (the rest wait for the next run).
DEAD_LETTER_LIMIT = 100_000
# Options that describe a dead message's last run: dropped when a raw message is re-enqueued, so
# that it starts again with all its retries.
DEAD_RUN_OPTIONS = ("retries", "traceback", "redis_message_id", "eta", "dead_message_ttl", ATTEMPT_OPTION)


# --- retry -------------------------------------------------------------------------------------------


def open_failures(*, task: str | None = None, queue: str | None = None, since: datetime | None = None) -> QuerySet[Job]:
    """FAILED jobs no operator dealt with yet (not retried, not discarded), oldest failure first."""
    jobs = Job.objects.filter(status=JobStatus.FAILED, dismissed_at__isnull=True)
    if task:
        jobs = jobs.filter(task=task)
    if queue:
        jobs = jobs.filter(queue=queue)
    if since:
        jobs = jobs.filter(finished_at__gte=since)
    return jobs.order_by("finished_at", "pk")


@dataclass
class RetryOutcome:
    """What a bulk retry did: (original, new job) pairs, and the jobs it could not retry, with why."""

    retried: list[tuple[Job, Job]] = field(default_factory=list)
    errors: list[tuple[Job, str]] = field(default_factory=list)


def jobs_retry(*, jobs: Iterable[Job], requested_by: Any = None) -> RetryOutcome:
    """Retry each job through `services.job_retry`: a new job each, the original dismissed.

    Their dead letters are taken out first, in one pass per queue: `job_retry` drops a job's dead
    letter by scanning its dead-letter queue, which costs a scan per job on a long queue otherwise.
    A job that cannot be retried (its unique key is taken, its task left the catalogue) gets its
    dead letter back.
    """
    jobs = list(jobs)
    taken = _take_dead_letters_of(jobs)
    outcome = RetryOutcome()
    for job in jobs:
        try:
            new = services.job_retry(job=job, requested_by=requested_by)
        except GreenroomError as exc:
            outcome.errors.append((job, f"{type(exc).__name__}: {exc}"))
            _restore(taken.get(str(job.pk), []))
            continue
        outcome.retried.append((job, new))
    return outcome


def _take_dead_letters_of(jobs: list[Job]) -> dict[str, list[broker_ops.TakenDeadLetter]]:
    by_queue: dict[str, set[str]] = {}
    for job in jobs:
        by_queue.setdefault(job.queue, set()).add(str(job.pk))
    taken: dict[str, list[broker_ops.TakenDeadLetter]] = {}
    for queue, ids in by_queue.items():
        try:
            letters = broker_ops.dead_letters(queue, limit=DEAD_LETTER_LIMIT)
            ours = {letter.redis_id: letter.job_id for letter in letters if letter.job_id in ids}
            for letter in broker_ops.take_dead_letters(queue, list(ours)):
                taken.setdefault(ours[letter.redis_id], []).append(letter)
        except broker_ops.BrokerNotInspectable:
            return taken
        except Exception:  # the broker is away: job_retry still works, the dead letters expire on their own
            logger.warning("could not take the dead letters of %d job(s) in %s", len(ids), queue, exc_info=True)
    return taken


def _restore(letters: list[broker_ops.TakenDeadLetter]) -> None:
    try:
        broker_ops.restore_dead_letters(letters)
    except Exception:  # the ledger still lists the failure; only its copy is lost
        logger.warning("could not put %d dead letter(s) back", len(letters), exc_info=True)


# --- purge -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PurgeOutcome:
    cancelled: int  # READY jobs of the queue, now CANCELLED
    messages: broker_ops.PurgedMessages
    republish: int  # jobs that became READY during the purge: the relay publishes them again


def queue_purge(*, queue: str) -> PurgeOutcome:
    """Cancel the queue's READY jobs in the ledger, then delete its waiting and delayed messages.

    The ledger goes first: a READY row whose message is gone would be published again by the
    reconciler (`publishing.republish_lost`). Messages in flight stay; the worker holding one finds
    its job CANCELLED when it tries to claim it, and drops it. A job that became READY between the
    two steps (enqueued, or a retry scheduled meanwhile) may have lost its message: it is marked
    unpublished for the relay to send again (should its message have survived, the claim runs it once).
    """
    now = timezone.now()
    cancelled = Job.objects.filter(queue=queue, status=JobStatus.READY).update(
        status=JobStatus.CANCELLED, finished_at=now, cancel_requested_at=now, next_attempt_at=None,
        progress_message=PURGED_MESSAGE,
    )
    messages = broker_ops.purge_waiting(queue)
    republish = Job.objects.filter(queue=queue, status=JobStatus.READY, enqueued_at__isnull=False).update(
        enqueued_at=None
    )
    logger.warning("queue %s purged by an operator: %d job(s) cancelled, %d waiting and %d delayed message(s) "
                   "deleted", queue, cancelled, messages.waiting, messages.delayed)
    return PurgeOutcome(cancelled=cancelled, messages=messages, republish=republish)


def ready_count(*, queue: str) -> int:
    """READY jobs of `queue` (what a purge would cancel)."""
    return Job.objects.filter(queue=queue, status=JobStatus.READY).count()


# --- redrive -----------------------------------------------------------------------------------------


@dataclass
class RedriveOutcome:
    retried: list[tuple[Job, Job]] = field(default_factory=list)  # (failed job, its new job)
    stale: int = 0  # dead letters of jobs no longer FAILED (retried, discarded, unknown): removed
    raw: int = 0  # dead letters of actors outside the catalogue: re-enqueued as they were
    errors: list[str] = field(default_factory=list)


def dead_letters_redrive(*, queues: Iterable[str]) -> RedriveOutcome:
    """Send the dead-letter queues of `queues` back, through the ledger.

    - the dead letter of an open failure (FAILED, not dismissed) → `services.job_retry`;
    - the dead letter of a job that is no longer an open failure, or of an id the ledger does not
      know, → removed, counted as stale;
    - the dead letter of an actor outside the catalogue (no ledger row) → re-enqueued as it was,
      its retries reset, and removed.
    """
    outcome = RedriveOutcome()
    for queue in queues:
        letters = broker_ops.dead_letters(queue, limit=DEAD_LETTER_LIMIT)
        known = Job.objects.in_bulk([pk for pk in {_as_uuid(letter.job_id) for letter in letters} if pk])
        to_retry: dict[str, Job] = {}  # job id → job: a job's second dead letter is stale
        raw: list[str] = []
        stale: list[str] = []
        for letter in letters:
            job = known.get(_as_uuid(letter.job_id) or uuid.UUID(int=0))
            if job is None and catalogue.get(letter.actor) is None:
                raw.append(letter.redis_id)
            elif (job is not None and job.status == JobStatus.FAILED and job.dismissed_at is None
                  and str(job.pk) not in to_retry):
                to_retry[str(job.pk)] = job
            else:
                stale.append(letter.redis_id)
        outcome.stale += len(broker_ops.take_dead_letters(queue, stale))
        for taken in broker_ops.take_dead_letters(queue, raw):
            try:
                _enqueue_raw(taken)
            except Exception as exc:  # noqa: BLE001 - reported; the letter goes back
                outcome.errors.append(f"dead letter {taken.redis_id} of {queue}: {type(exc).__name__}: {exc}")
                _restore([taken])
                continue
            outcome.raw += 1
        retried = jobs_retry(jobs=to_retry.values())
        outcome.retried += retried.retried
        outcome.errors += [f"job {job.pk} ({job.task}): {error}" for job, error in retried.errors]
    return outcome


def _as_uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def _enqueue_raw(letter: broker_ops.TakenDeadLetter) -> None:
    data = letter.message()
    if data is None:
        raise ValueError("the message is not JSON")
    options = {key: value for key, value in (data.get("options") or {}).items() if key not in DEAD_RUN_OPTIONS}
    message: dramatiq.Message[Any] = dramatiq.Message(
        queue_name=q_name(str(data["queue_name"])),
        actor_name=str(data["actor_name"]),
        args=tuple(data.get("args") or ()),
        kwargs=dict(data.get("kwargs") or {}),
        options=options,
        message_id=str(data["message_id"]),
        message_timestamp=current_millis(),  # a fresh start for AgeLimit too
    )
    dramatiq.get_broker().enqueue(message)


# --- reads for `jobs stats` ----------------------------------------------------------------------------


def ledger_counts() -> dict[str, int]:
    """Jobs by status, every status present (0 when none)."""
    counts = dict(Job.objects.order_by().values_list("status").annotate(n=Count("pk")).values_list("status", "n"))
    return {status: counts.get(status, 0) for status in JobStatus.values}


def last_hour_by_queue(*, now: datetime | None = None) -> dict[str, dict[str, int]]:
    """Per queue: jobs that finished in the last hour, and how many of those failed."""
    since = (now or timezone.now()) - timedelta(hours=1)
    rows = (Job.objects.filter(finished_at__gte=since).order_by().values("queue")
            .annotate(finished=Count("pk"), failed=Count("pk", filter=Q(status=JobStatus.FAILED))))
    found = {row["queue"]: {"finished": row["finished"], "failed": row["failed"]} for row in rows}
    return {queue: found.get(queue, {"finished": 0, "failed": 0}) for queue in [*catalogue.QUEUES, *sorted(found)]}


def scheduler_last_beat() -> FleetProcess | None:
    """The scheduler process that beat last (alive or not), or None if none ever ran."""
    return FleetProcess.objects.filter(kind=ProcessKind.SCHEDULER).order_by("-heartbeat_at").first()
