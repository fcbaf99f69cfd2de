"""Dramatiq middleware that ties the broker to the ledger.

- `LedgerRetries` replaces Dramatiq's Retries for catalogue jobs: transient errors retry with
  exponential backoff and jitter, anything else fails at once; the ledger row is updated *before*
  the retry is enqueued (so the retry finds it READY), and a failed message goes to the dead-letter
  queue as usual.
- `WorkerHousekeeping` runs one thread per worker process: heartbeats of running jobs, the hard
  time-limit watchdog, the outbox relay and the stale-job reconciler.
- `MemoryCap` replaces a worker process whose memory grew past the cap, after its current job.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
import traceback
from typing import Any

import dramatiq
import psutil
from django.conf import settings
from django.db import close_old_connections, connection
from django.db.models import Q
from django.utils import timezone
from dramatiq.middleware import Middleware, Retries

from workers import catalogue, conf
from workers.errors import HardTimeLimitExceeded

# django_dramatiq builds the broker, and so this middleware, while Django's app registry is still
# loading: modules that define or use models (workers.context, .execution, .publishing, .models)
# are imported inside the hooks, which only run once the registry is ready.

logger = logging.getLogger(__name__)

# Exit code of a worker process that the hard-limit watchdog replaced.
HARD_LIMIT_EXIT_CODE = 75
# Seconds the housekeeping thread sleeps between checks (bounds the hard-limit overshoot).
HOUSEKEEPING_TICK = 1.0


class LedgerRetries(Retries):
    """Retries for catalogue jobs, decided by their declaration and recorded in the ledger."""

    def after_process_message(
        self, broker: dramatiq.Broker, message: Any, *, result: Any = None, exception: BaseException | None = None
    ) -> None:
        spec = catalogue.get(message.actor_name)
        if spec is None:
            super().after_process_message(broker, message, result=result, exception=exception)
            return
        if exception is None:
            return
        from workers.execution import ATTEMPT_OPTION, record_failure, retry_delay_ms

        retries = message.options.get("retries", 0)
        # Which run failed (absent: the delivery failed before it claimed the row). Read while the
        # failure is recorded (log lines carry it), then dropped from the message.
        attempt = message.options.get(ATTEMPT_OPTION, 0)
        try:
            delay = record_failure(spec, message.message_id, exception, retries=retries, attempt=attempt)
        except Exception:  # the ledger is down: retry by the job's own rules, without recording
            logger.exception("job %s: could not record its failure in the ledger", message.message_id)
            retry = spec.is_transient(exception) and retries < spec.max_retries
            delay = retry_delay_ms(spec, retries, exception) if retry else None
        message.options.pop(ATTEMPT_OPTION, None)  # the retry's copy of the message must not carry it
        message.options["retries"] = retries + 1
        message.options["traceback"] = traceback.format_exc(limit=30)
        if delay is None:
            message.fail()  # → the dead-letter queue
            return
        message.options["requeue_timestamp"] = int(time.time() * 1000)
        broker.enqueue(message, delay=delay)


# Messages a Redis consumer may hold per worker thread while acks wait for the ledger writer, on
# workers not serving `batch` (Dramatiq's default is 2; WorkerHousekeeping.before_worker_boot).
HELD_ACKS_PREFETCH_PER_THREAD = 4


class WorkerHousekeeping(Middleware):
    """Starts, in each worker process, the thread that keeps the ledger honest."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._worker: Any = None
        self._exporter: Any = None

    def before_worker_boot(self, broker: dramatiq.Broker, worker: Any) -> None:
        # Where acks are held (project/held_acks.py), a message whose job is done stays unacked, and
        # counted against its consumer's prefetch, until the ledger writer has committed the finish:
        # with Dramatiq's default of 2 per thread the consumer stops fetching while threads are free.
        # Twice that drained 20-40 % faster (docs/performance.md). Not for a worker on the `batch`
        # queue (or on every queue): its long jobs would only hoard messages that an idle process
        # could run. Consumers are created after this hook; a set dramatiq_queue_prefetch is kept.
        queues = worker.consumer_whitelist
        if (getattr(broker, "greenroom_holds_acks", False) and conf.get().ledger_group_commit
                and queues and "batch" not in queues and not int(os.environ.get("dramatiq_queue_prefetch") or 0)):
            worker.queue_prefetch = min(worker.worker_threads * HELD_ACKS_PREFETCH_PER_THREAD, 65535)

    def after_worker_boot(self, broker: dramatiq.Broker, worker: Any) -> None:
        self._stop.clear()
        self._worker = worker
        port = getattr(settings, "GREENROOM_WORKER_METRICS_PORT", 0)
        if port:
            from workers import metrics_exporter

            try:
                self._exporter = metrics_exporter.start(port)
            except OSError:  # the port is taken (several processes on one host): the web's /metrics has it
                logger.exception("worker metrics: cannot listen on port %d", port)
        self._thread = threading.Thread(target=self._loop, args=(broker,), name="greenroom-housekeeping", daemon=True)
        self._thread.start()

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: Any) -> None:
        # Only once the worker has stopped: while it shuts down, its running jobs finish (for up to
        # --worker-shutdown-timeout) and still need their heartbeats — else another worker presumes
        # them dead and runs them a second time — and the hard-limit watchdog.
        self._stop.set()
        if self._exporter is not None:
            self._exporter.shutdown()
        from workers import ledger_writer

        ledger_writer.shutdown()  # the worker threads have stopped: nothing more to write
        try:
            from workers.registry import process_stopped

            process_stopped()
        except Exception:
            logger.debug("could not mark this worker process stopped", exc_info=True)
        finally:
            connection.close()

    def _beat_registry(self, running: list[Any]) -> None:
        """This process's row in the fleet registry (the dashboard's Workers page)."""
        from dramatiq.common import q_name

        from workers.models import ProcessKind
        from workers.registry import process_beat

        worker = self._worker
        queues = {q_name(name) for name in getattr(worker, "consumers", {})}
        process_beat(
            kind=ProcessKind.WORKER,
            queues=queues,
            threads=getattr(worker, "worker_threads", 0),
            running=[{"id": str(ctx.job_id), "task": ctx.task} for ctx in running],
        )

    def _loop(self, broker: dramatiq.Broker) -> None:
        from workers import context, publishing

        next_heartbeat = next_relay = 0.0
        while not self._stop.wait(HOUSEKEEPING_TICK):
            settings = conf.get()
            now = time.monotonic()
            try:
                close_old_connections()
                self._enforce_hard_limits(broker)
                if now >= next_heartbeat:
                    next_heartbeat = now + settings.heartbeat_interval
                    running = context.running()
                    beat(running)
                    self._beat_registry(running)
                if now >= next_relay:
                    next_relay = now + settings.relay_interval
                    publishing.requeue_stale(stale_after=settings.stale_after)
                    publishing.republish_lost(older_than=settings.republish_after)
                    publishing.relay_unpublished(grace=settings.relay_grace)
            except Exception:  # the thread must survive a database or broker blip
                logger.exception("housekeeping pass failed; retrying next tick")
                connection.close()
        connection.close()

    def _enforce_hard_limits(self, broker: dramatiq.Broker) -> None:
        from workers import context
        from workers.execution import describe
        from workers.models import Job, JobStatus

        now = time.monotonic()
        for ctx in context.running():
            if now < ctx.hard_deadline:
                continue
            spec = catalogue.get(ctx.task)
            limit = spec.hard_time_limit if spec else 0
            logger.critical("job %s (%s) passed its hard time limit of %ss: replacing this worker process",
                            ctx.job_id, ctx.task, limit)
            try:
                error = HardTimeLimitExceeded(
                    f"job ran past its hard time limit of {limit} s; its worker process was replaced"
                )
                job = Job.objects.filter(pk=ctx.job_id, status=JobStatus.RUNNING, attempts=ctx.attempt).first()
                if job is not None:
                    job.fail(**describe(error))
                    from workers import metrics

                    metrics.job_failed(job)
                if ctx.message is not None:
                    # Dead-letter it now instead of leaving it to a redelivery after this process dies.
                    dead_letter_now(broker, self._worker, ctx.message)
                self._hand_back_others(ctx)
            except Exception:  # the process must go all the same: the stuck thread holds a slot for ever
                logger.exception("job %s: could not record its hard time limit; replacing the process anyway",
                                 ctx.job_id)
            # The stuck thread cannot be stopped from Python: replace the whole process. The
            # supervisor restarts it.
            logging.shutdown()
            os._exit(HARD_LIMIT_EXIT_CODE)

    def _hand_back_others(self, stuck: Any) -> None:
        """Before the process goes, give its other work back: it is innocent and should not wait.

        Jobs running beside the stuck one are put back to READY and unpublished (the relay of any
        worker publishes them again; their old messages, when the broker redelivers them, find the
        job taken and are dropped). Messages prefetched but not started go back to their queue.
        """
        from dramatiq.common import iter_queue

        from workers import context
        from workers.models import Job, JobStatus

        worker = self._worker
        for thread in getattr(worker, "workers", ()):
            thread.pause()  # no new job starts in a process about to exit
        for ctx in context.running():
            if ctx.job_id != stuck.job_id:
                Job.objects.filter(pk=ctx.job_id, status=JobStatus.RUNNING, attempts=ctx.attempt).update(
                    status=JobStatus.READY, enqueued_at=None, worker=""
                )
        if worker is None:
            return
        prefetched: dict[str, list[Any]] = {}
        for item in iter_queue(worker.work_queue):
            prefetched.setdefault(item.message.queue_name, []).append(item.message)
        for queue_name, messages in prefetched.items():
            worker.consumers[queue_name].requeue_messages(messages)


# Seconds the watchdog waits for a RabbitMQ consumer thread to send its nack (its next turn comes
# within the worker's poll timeout, 1 s by default).
NACK_WAIT = 3.0


def dead_letter_now(broker: dramatiq.Broker, worker: Any, message: Any) -> None:
    """Move a message this process holds to its dead-letter queue at once (hard-limit watchdog).

    Redis: Dramatiq's nack of its Redis id. RabbitMQ: a nack on the consumer channel that delivered
    it, which only that consumer's thread can send; if it does not go out in time, RabbitMQ gives
    the message back when the process exits and the ledger (the job is FAILED) drops it.
    """
    if "redis_message_id" in message.options:
        broker.do_nack(message.queue_name, message.options["redis_message_id"])  # type: ignore[attr-defined]
        return
    thread = getattr(worker, "consumers", {}).get(message.queue_name)
    consumer = getattr(thread, "consumer", None)
    if consumer is not None and hasattr(message, "_tag"):  # a RabbitMQ delivery
        from project.rabbitmq import nack_now

        if not nack_now(consumer, message, timeout=NACK_WAIT):
            logger.warning("message of job %s not dead-lettered in time; the ledger drops its redelivery",
                           message.message_id)


def beat(running: list[Any]) -> int:
    """Refresh the heartbeat of the given running jobs (JobContexts) in one UPDATE.

    Only of the runs they are: a run taken over by another worker must not keep the new run's row
    looking alive (each run is one attempt).
    """
    from workers.models import Job, JobStatus

    if not running:
        return 0
    ours = Q()
    for ctx in running:
        ours |= Q(pk=ctx.job_id, attempts=ctx.attempt)
    return Job.objects.filter(ours, status=JobStatus.RUNNING).update(heartbeat_at=timezone.now())


class _RssReader:
    """This process's resident set size, read after every message: on Linux one `pread` of
    /proc/self/statm on a descriptor kept open (psutil opens, reads and closes a file each time,
    ~10x the cost); elsewhere psutil's. Reopened in a forked child.

    Worker threads read it at once: the first read of a process opens the descriptor under a lock,
    once. Without it two threads could both reopen, and one close the descriptor the other had just
    opened (a read failing with EBADF, or worse, the number reused meanwhile by a socket)."""

    def __init__(self) -> None:
        self._pid = 0
        self._fd: int | None = None
        self._process: psutil.Process | None = None
        self._page = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
        self._lock = threading.Lock()
        # A fork while another thread held the lock would leave it held forever in the child.
        os.register_at_fork(after_in_child=self._new_lock)

    def _new_lock(self) -> None:
        self._lock = threading.Lock()

    def read(self) -> int:
        if self._pid != os.getpid():  # first use, or a forked child: its inherited descriptor reads the parent
            self._open()
        if self._fd is not None:
            return int(os.pread(self._fd, 128, 0).split()[1]) * self._page
        assert self._process is not None
        return int(self._process.memory_info().rss)

    def _open(self) -> None:
        with self._lock:
            pid = os.getpid()
            if self._pid == pid:  # another thread was first
                return
            inherited = self._fd
            try:
                fd: int | None = os.open("/proc/self/statm", os.O_RDONLY)
            except OSError:
                fd = None
            self._fd, self._process = fd, psutil.Process()
            self._pid = pid  # last: other threads take the fast path only once `_fd` is set
            if inherited is not None:
                os.close(inherited)


class MemoryCap(Middleware):
    """After each message, a process over GREENROOM_WORKER_MEMORY_CAP_MB asks to be replaced.

    It stops taking new messages at once (its worker is paused: jobs already running finish, none
    starts) and sends SIGTERM to its Dramatiq parent: with one process per worker (as `runstack` and
    the deployment docs run it) that stops only this process, gracefully — in-flight jobs finish,
    prefetched messages go back to the queue — and the supervisor starts a fresh one.
    """

    def __init__(self) -> None:
        self._asked = False
        self._asked_lock = threading.Lock()
        self._worker: Any = None
        self._rss = _RssReader()

    def after_worker_boot(self, broker: dramatiq.Broker, worker: Any) -> None:
        self._worker = worker

    def after_process_message(
        self, broker: dramatiq.Broker, message: Any, *, result: Any = None, exception: BaseException | None = None
    ) -> None:
        cap_mb = conf.get().worker_memory_cap_mb
        if not cap_mb or self._asked:
            return
        rss_mb = self._rss.read() / (1024 * 1024)
        if rss_mb <= cap_mb:
            return
        with self._asked_lock:
            # Once only: two threads finishing together would send two SIGTERMs, and Dramatiq's
            # worker process takes a second SIGTERM as "exit now", abandoning its running jobs.
            if self._asked:
                return
            self._asked = True
        logger.warning("worker process %d uses %.0f MiB (cap %d MiB): recycling it", os.getpid(), rss_mb, cap_mb)
        # Without this the worker threads go on taking jobs (and memory) from the prefetched messages
        # until the SIGTERM has made its way round, a second or more. Only the worker threads pause
        # (each after its current job): the consumers keep acking, and the shutdown requeues the rest.
        for thread in getattr(self._worker, "workers", ()):
            thread.pause()
        os.kill(os.getppid(), signal.SIGTERM)

    def after_skip_message(self, broker: dramatiq.Broker, message: Any) -> None:
        self.after_process_message(broker, message)
