"""The outbox: publishing ledger rows to the broker, the relay that catches up, the reconciler.

A job's row is written in the caller's transaction and published after commit. If the broker is
unreachable the row simply stays READY with no `enqueued_at`, and the relay (run by every worker
process) publishes it later. Publishing first marks the row, so two publishers never both send it;
should a message still be sent twice, the ledger's conditional claim runs the job once.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

import dramatiq
from django.db.models import Q
from django.utils import timezone

from workers.models import Job, JobStatus

logger = logging.getLogger(__name__)

# Rows published per relay pass: bounds one pass's time after a long broker outage.
RELAY_BATCH = 500
# Rows marked (one UPDATE) and messages sent (one Redis pipeline) per batch of `publish_many`.
PUBLISH_BATCH = 1000


def message_for(job: Job) -> dramatiq.Message[None]:
    """The Dramatiq message of a job: its id is the job's id, its only argument the id too.

    An urgent job's `priority` (lower = more urgent) goes with it: Redis places it ahead of its
    queue's ordinary messages (docs/architecture.md, "Wake-up and priorities"), however often the
    job is published (enqueue, relay, reconciler)."""
    return dramatiq.Message(
        queue_name=job.queue,
        actor_name=job.task,
        args=(),
        kwargs={"job_id": str(job.pk)},
        options={} if job.priority is None else {"priority": job.priority},
        message_id=str(job.pk),
    )


def publish(job_or_id: Job | uuid.UUID | str) -> bool:
    """Send a READY, unpublished job to the broker. False if not ours to send or the broker failed.

    Given the Job itself (as job_enqueue does), its task, queue and priority are not read back from the
    database.
    """
    job_id = job_or_id.pk if isinstance(job_or_id, Job) else job_or_id
    now = timezone.now()
    if not Job.mark_published([str(job_id)], at=now):  # raw and prepared: every enqueue runs it
        return False
    if isinstance(job_or_id, Job):
        job = job_or_id
    else:
        job = Job.objects.only("id", "task", "queue", "priority").get(pk=job_id)
    job.enqueued_at = now
    return send_marked(job)


def send_marked(job: Job) -> bool:
    """Send a job whose row the caller has marked published (`enqueued_at` committed, as `publish`
    does, or written with the row by job_enqueue). Should the broker fail, the mark is undone and
    the row left to the relay: False."""
    try:
        dramatiq.get_broker().enqueue(message_for(job))
    except Exception as exc:  # noqa: BLE001 - any broker failure leaves the row to the relay
        Job.objects.filter(pk=job.pk, enqueued_at=job.enqueued_at).update(enqueued_at=None)
        logger.warning("job %s not published (%s: %s); the relay will retry", job.pk, type(exc).__name__, exc)
        job.enqueued_at = None
        return False
    return True


def publish_many(jobs: Sequence[Job], *, batch: int = PUBLISH_BATCH, marked_at: datetime | None = None) -> int:
    """Publish many READY, unpublished jobs in batches; returns how many were sent.

    Per batch: one UPDATE marks the rows published and returns the ids it marked (a row already
    published by the relay, or cancelled meanwhile, is not returned and not sent), then one
    pipelined `broker.enqueue_many` sends their messages (a plain `enqueue` loop on a broker
    without it). Should a batch fail, its marks are undone and this call stops: that batch and the
    rest stay unpublished for the relay. `jobs` need `pk`, `task`, `queue` and `priority` loaded.

    `marked_at`: the rows were written already marked, `enqueued_at` = `marked_at` (job_enqueue_many
    outside a transaction): no UPDATE per batch; should a batch fail, the marks of that batch and of
    every later one are undone.
    """
    broker = dramatiq.get_broker()
    send_many = getattr(broker, "enqueue_many", None)
    sent = 0
    for first in range(0, len(jobs), batch):
        chunk = {str(job.pk): job for job in jobs[first : first + batch]}
        now = marked_at or timezone.now()
        marked = set(chunk) if marked_at is not None else Job.mark_published(list(chunk), at=now)
        messages = [message_for(chunk[job_id]) for job_id in chunk if job_id in marked]
        if not messages:
            continue
        try:
            if send_many is not None:
                send_many(messages)
            else:
                for message in messages:
                    broker.enqueue(message)
        except Exception as exc:  # noqa: BLE001 - any broker failure leaves the rows to the relay
            unsent = list(marked) if marked_at is None else [str(job.pk) for job in jobs[first:]]
            for ids in range(0, len(unsent), batch):
                Job.objects.filter(pk__in=unsent[ids : ids + batch], enqueued_at=now).update(enqueued_at=None)
            logger.warning("%d job(s) not published (%s: %s); the relay will retry", len(jobs) - sent,
                           type(exc).__name__, exc)
            break
        sent += len(messages)
    return sent


def relay_unpublished(*, grace: float) -> int:
    """Publish READY rows left unpublished for more than `grace` seconds. Returns how many."""
    cutoff = timezone.now() - timedelta(seconds=grace)
    ids = list(
        Job.objects.filter(status=JobStatus.READY, enqueued_at__isnull=True, created_at__lt=cutoff)
        .order_by("created_at")
        .values_list("pk", flat=True)[:RELAY_BATCH]
    )
    sent = 0
    for job_id in ids:
        if publish(job_id):
            sent += 1
        elif Job.objects.filter(pk=job_id, status=JobStatus.READY, enqueued_at__isnull=True).exists():
            break  # the broker is still away: try again next pass
    if sent:
        logger.info("relay published %d job(s)", sent)
    return sent


def republish_lost(*, older_than: float) -> int:
    """Unpublish READY rows whose message must have been lost, for the relay to send again.

    A row qualifies when it was published more than `older_than` seconds ago, has no retry pending,
    and its queue (and delay queue) in the broker is empty — so its message is not waiting anywhere
    (on RabbitMQ: no message ready in either, by passive declare). It may still sit in a busy
    worker's prefetch: then the old copy and the new one race, and the ledger's claim runs the job
    once. Returns how many rows were unpublished.
    """
    broker = dramatiq.get_broker()
    client = getattr(broker, "client", None)
    ready_counts = getattr(broker, "ready_counts", None)  # GreenroomRabbitmqBroker's
    if client is None and ready_counts is None:
        return 0  # the stub broker: nothing to look into
    cutoff = timezone.now() - timedelta(seconds=older_than)
    due = Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lt=cutoff)
    candidates = list(
        Job.objects.filter(due, status=JobStatus.READY, enqueued_at__lt=cutoff).values_list("pk", "queue")[:RELAY_BATCH]
    )
    if not candidates:
        return 0
    queues = {queue for _, queue in candidates}
    if client is None:
        assert ready_counts is not None
        ready = ready_counts([name for queue in queues for name in (queue, f"{queue}.DQ")])
        empty = {queue: ready[queue] == 0 and ready[f"{queue}.DQ"] == 0 for queue in queues}
    else:
        namespace = getattr(broker, "namespace", "dramatiq")
        empty = {
            queue: client.llen(f"{namespace}:{queue}") == 0 and client.llen(f"{namespace}:{queue}.DQ") == 0
            for queue in queues
        }
    lost = [pk for pk, queue in candidates if empty[queue]]
    if not lost:
        return 0
    count = Job.objects.filter(pk__in=lost, status=JobStatus.READY, enqueued_at__lt=cutoff).update(enqueued_at=None)
    if count:
        logger.warning("%d READY job(s) lost their message (their queue is empty); publishing them again", count)
    return count


def requeue_stale(*, stale_after: float) -> int:
    """Put RUNNING rows whose heartbeat stopped back to READY and unpublished. Returns how many."""
    now = timezone.now()
    cutoff = now - timedelta(seconds=stale_after)
    stale = Job.objects.filter(status=JobStatus.RUNNING, heartbeat_at__lt=cutoff)
    # A dead job that was asked to stop has stopped.
    stale.filter(cancel_requested_at__isnull=False).update(status=JobStatus.CANCELLED, finished_at=now)
    count = stale.update(
        status=JobStatus.READY, enqueued_at=None, worker=""
    )
    if count:
        logger.warning("reconciler: %d job(s) had a stale heartbeat and were requeued", count)
    return count
