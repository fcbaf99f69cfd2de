"""Running one job: claim its ledger row, call the job function, record how it ended.

The actor that Dramatiq calls for every catalogue job is a thin shell around `run_job`. Exceptions
leave `run_job` on purpose: `workers.middleware.LedgerRetries` decides retry or failure and records
it, for workers and for eager mode alike (`run_eager`).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
import traceback
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import dramatiq
from django.db import connection
from django.utils import timezone
from dramatiq.common import compute_backoff
from dramatiq.middleware import CurrentMessage

from project import held_acks
from workers import conf, context, ledger_writer, metrics
from workers.errors import IllegalTransition, JobCancelled, PermanentError, WorkerLost
from workers.models import Job, JobStatus

if TYPE_CHECKING:
    from workers.catalogue import JobSpec

logger = logging.getLogger(__name__)

# Runs beyond `max_retries + 1` tolerated for a job whose worker died under it (SIGKILL, OOM).
WORKER_LOSS_LIMIT = 3
# Message option in which a worker notes which attempt (the row's `attempts`) a delivery ran, so that
# LedgerRetries records a failure against that run only. Never sent: LedgerRetries removes it.
ATTEMPT_OPTION = "greenroom_attempt"


_worker_id: tuple[int, str] = (0, "")


def worker_id() -> str:
    """host:pid of this process (computed again in a forked child)."""
    global _worker_id
    pid = os.getpid()
    if _worker_id[0] != pid:
        _worker_id = (pid, f"{socket.gethostname()}:{pid}")
    return _worker_id[1]


def run_job(spec: JobSpec, job_id: str) -> Any:
    """Run job `job_id` once, if it is ours to run. Returns its result (None when skipped)."""
    settings = conf.get()
    message = CurrentMessage.get_current_message()
    # With GREENROOM_LEDGER_GROUP_COMMIT a worker thread hands its claim and its finish write to its
    # process's ledger writer, which writes many jobs' claims (and finishes) together, and waits for
    # its own row's outcome. Not inside a transaction (eager mode under atomic): the writer's own
    # connection would wait for that transaction's locks.
    grouped = settings.ledger_group_commit and message is not None and not connection.in_atomic_block
    # Claim and read the row in one statement (the claimed columns only; no separate SELECT).
    if grouped:
        job = ledger_writer.writer().claim(job_id)
    else:
        stale_before = timezone.now() - timedelta(seconds=settings.stale_after)
        job = Job.claim_run(job_id, worker=worker_id(), stale_before=stale_before)
    if job is None:
        logger.info("job %s (%s) not claimed: running elsewhere, finished, cancelled or gone", job_id, spec.name)
        return None
    if message is not None:
        message.options[ATTEMPT_OPTION] = job.attempts
    if job.attempts > spec.max_retries + 1 + WORKER_LOSS_LIMIT:
        # Started more often than retries allow: its workers keep dying under it (a crash, an
        # OOM kill). Stop the loop instead of taking down every worker in turn.
        job.fail(**describe(WorkerLost(f"started {job.attempts} times; its worker died each time")))
        metrics.job_failed(job, ran=False)
        return None
    ctx = context.JobContext(
        job_id=job.pk,
        task=spec.name,
        attempt=job.attempts,
        progress_interval=settings.progress_interval,
        hard_deadline=time.monotonic() + spec.hard_time_limit,
        message=message,
    )
    metrics.job_started(job, message)
    token = context.enter(ctx)
    try:
        result = spec.fn(**job.params)
    except JobCancelled:
        _end_cancelled(job, attempt=ctx.attempt)
        return None
    finally:
        context.leave(ctx, token)
    try:
        json.dumps(result)
    except (TypeError, ValueError) as exc:
        raise PermanentError(f"job {spec.name} returned a value that is not JSON: {exc}") from None
    if ctx.total is not None and ctx.done < ctx.total:
        ctx.done = ctx.total
    # RUNNING → SUCCESSFUL for this run only, progress included, in one UPDATE: a run that was
    # presumed dead and taken over (its process froze past GREENROOM_STALE_AFTER) must not end the
    # run that replaced it.
    if grouped and message is not None and held_acks.holds_acks(dramatiq.get_broker()):
        # The thread goes on to its next message; the message's ack waits for the durable write.
        _succeed_with_held_ack(job, spec, message, attempt=ctx.attempt, result=result,
                               progress=ctx.progress_fields())
        return result
    if grouped:
        succeeded = ledger_writer.writer().succeed(job.pk, attempt=ctx.attempt, result=result,
                                                   progress=ctx.progress_fields())
    else:
        succeeded = Job.succeed_run(job.pk, attempt=ctx.attempt, result=result, progress=ctx.progress_fields())
    _succeeded(job, spec, attempt=ctx.attempt, succeeded=succeeded)
    return result if succeeded else None


def _succeed_with_held_ack(job: Job, spec: JobSpec, message: Any, *, attempt: int, result: Any,
                           progress: dict[str, Any]) -> None:
    """Hand the finish write to the ledger writer and hold the message's ack until it is durable."""
    pending = held_acks.Pending()

    def written(succeeded: bool | None, error: BaseException | None) -> None:
        if error is not None:
            # The row stays RUNNING; once its heartbeat is stale the reconciler runs the job again.
            logger.error("job %s (%s): its finish write failed (%s: %s); the reconciler will run it again",
                         job.pk, spec.name, type(error).__name__, error)
        else:
            _succeeded(job, spec, attempt=attempt, succeeded=bool(succeeded))
        pending.settle()

    held_acks.hold(message, pending)
    ledger_writer.writer().succeed_later(job.pk, attempt=attempt, result=result, progress=progress, then=written)


def _succeeded(job: Job, spec: JobSpec, *, attempt: int, succeeded: bool) -> None:
    if succeeded:
        metrics.job_succeeded(job)
    else:
        logger.warning("job %s (%s): attempt %d finished after the job had moved on without it; result dropped",
                       job.pk, spec.name, attempt)


def _end_cancelled(job: Job, *, attempt: int) -> None:
    job.refresh_from_db(fields=["status", "cancel_requested_at", "attempts"])
    if job.status == JobStatus.RUNNING and job.attempts == attempt and job.cancel_requested_at is not None:
        job.mark_cancelled()
        metrics.job_cancelled(job)
        logger.info("job %s cancelled while running", job.pk)
    else:
        logger.warning("job %s stopped: it is no longer this worker's to run (%s)", job.pk, job.status)


def describe(exc: BaseException) -> dict[str, str]:
    """An exception as the ledger stores it: class path, message, traceback text."""
    cls = type(exc)
    return {
        "error_class": f"{cls.__module__}.{cls.__qualname__}",
        "error_message": str(exc)[:10_000],
        "error_traceback": "".join(traceback.format_exception(exc))[-20_000:],
    }


def backoff_ms(spec: JobSpec, retries: int) -> int:
    """Exponential backoff with jitter for the retry after `retries` earlier retries."""
    _, delay = compute_backoff(
        retries, factor=max(1, int(spec.min_backoff * 1000)), max_backoff=int(spec.max_backoff * 1000)
    )
    return int(delay)


def retry_delay_ms(spec: JobSpec, retries: int, exc: BaseException) -> int:
    """The backoff, or longer if the error carries `retry_after_ms` (capped at max_backoff)."""
    delay = backoff_ms(spec, retries)
    asked = getattr(exc, "retry_after_ms", None)
    if isinstance(asked, int) and asked > delay:
        delay = min(asked, int(spec.max_backoff * 1000))
    return delay


def record_failure(
    spec: JobSpec, job_id: str, exc: BaseException, *, retries: int, attempt: int | None = None
) -> int | None:
    """Record a failed attempt. Returns the retry delay in ms, or None if the job has failed.

    A transient error with retries left puts the row back to READY until its next attempt; anything
    else fails it. A job whose cancel was requested is cancelled instead of retried.

    `attempt` is the run that failed (0: the delivery failed before it could claim the row; None:
    whichever run the row shows, as in eager mode). A run that is no longer the row's — taken over
    after being presumed dead, or never started — leaves the row alone; a delivery that failed
    before its claim (the database was away) is retried like the job would be.
    """
    job = Job.objects.filter(pk=job_id).first()
    if job is None:
        logger.warning("job %s failed but its row is gone; nothing to record", job_id)
        return None
    error = describe(exc)
    if attempt is not None and not (job.status == JobStatus.RUNNING and job.attempts == attempt):
        if attempt == 0 and job.status == JobStatus.READY and spec.is_transient(exc) and retries < spec.max_retries:
            return retry_delay_ms(spec, retries, exc)
        logger.warning("job %s (%s): attempt %s failed with %s, but the job has moved on (%s, attempt %d); "
                       "not recorded", job_id, spec.name, attempt or "-", error["error_class"], job.status,
                       job.attempts)
        return None
    try:
        if job.cancel_requested_at is not None and job.status == JobStatus.RUNNING:
            job.mark_cancelled()
            metrics.job_cancelled(job)
            return None
        if spec.is_transient(exc) and retries < spec.max_retries:
            delay = retry_delay_ms(spec, retries, exc)
            job.schedule_retry(**error, delay_ms=delay)
            metrics.job_retried(job)
            logger.info("job %s (%s) failed with %s; retry %d in %d ms", job_id, spec.name,
                        error["error_class"], retries + 1, delay)
            return delay
        job.fail(**error)
        metrics.job_failed(job)
        logger.warning("job %s (%s) failed: %s: %s", job_id, spec.name, error["error_class"], error["error_message"])
    except IllegalTransition as refused:
        logger.warning("job %s: failure not recorded: %s", job_id, refused)
    return None


def run_eager(spec: JobSpec, job_id: str) -> None:
    """Eager mode: run the job inline through the ledger, retrying transient errors at once."""
    retries = 0
    while True:
        try:
            run_job(spec, job_id)
            return
        except BaseException as exc:  # recorded in the ledger like a worker would
            if isinstance(exc, KeyboardInterrupt | SystemExit):
                raise
            if record_failure(spec, job_id, exc, retries=retries) is None:
                return
            retries += 1
