"""Prometheus metrics at `GET /metrics`: job counters recorded where jobs change, gauges read when scraped.

- Counters and histograms (`job_enqueued`, `job_started`, ... below) are recorded by the process
  the event happens in: the web process enqueues, worker processes run jobs. With
  `GREENROOM_METRICS_DIR` set, prometheus-client's multiprocess mode keeps them in files in that
  directory (one per process id), and the view sums every process's files. `project/settings.py`
  exports `PROMETHEUS_MULTIPROC_DIR` before anything imports prometheus_client; this module refuses
  to load if that went wrong. There are no file-backed gauges, so dead processes' files need no
  `mark_process_dead`: their counts stay in the totals until `runstack` wipes the directory.
- Gauges (queue depths, ledger counts, live workers, the scheduler's beat) are read by
  `GreenroomCollector` in the web process at each scrape, from the broker, the ledger and the fleet
  registry; nothing is pushed.

See docs/metrics.md for every metric and for the access rules (`GREENROOM_METRICS_TOKEN`,
`GREENROOM_METRICS_ALLOW`).
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.http import require_GET
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, values
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.multiprocess import MultiProcessCollector

from workers import catalogue

if TYPE_CHECKING:
    from workers.models import Job

logger = logging.getLogger(__name__)

# Networks allowed to scrape when GREENROOM_METRICS_ALLOW is not set: this host only.
DEFAULT_ALLOW = ("127.0.0.1/32", "::1/128")
# Run times, from a no-op to an hour-long batch job (seconds).
DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, float("inf"))
# Waits in the queue, from an idle worker picking a job up at once to a backlog of an hour (seconds).
WAIT_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, float("inf"))

if getattr(settings, "GREENROOM_METRICS_DIR", "") and values.ValueClass is values.MutexValue:
    raise ImproperlyConfigured(
        "GREENROOM_METRICS_DIR is set but prometheus_client was imported before project.settings exported "
        "PROMETHEUS_MULTIPROC_DIR: this process's metrics would never reach the directory"
    )

_BY_TASK = ["task", "queue"]
ENQUEUED = Counter("greenroom_jobs_enqueued", "Jobs written READY by job_enqueue.", _BY_TASK)
STARTED = Counter("greenroom_jobs_started", "Runs started: a worker claimed the job.", _BY_TASK)
SUCCEEDED = Counter("greenroom_jobs_succeeded", "Runs that ended SUCCESSFUL.", _BY_TASK)
FAILED = Counter("greenroom_jobs_failed", "Jobs that ended FAILED (no retry left, permanent error, worker lost).",
                 _BY_TASK)
RETRIED = Counter("greenroom_jobs_retried", "Runs that failed and were scheduled for a retry.", _BY_TASK)
CANCELLED = Counter("greenroom_jobs_cancelled", "Runs that ended CANCELLED after a cancel request.", _BY_TASK)
DURATION = Histogram("greenroom_job_duration_seconds", "Run time of each run, claim to end, whatever the outcome.",
                     ["queue"], buckets=DURATION_BUCKETS)
QUEUE_WAIT = Histogram("greenroom_job_queue_wait_seconds",
                       "Time from publish (or a retry's due time) to the claim, per run.", ["queue"],
                       buckets=WAIT_BUCKETS)


# --- recording (one call where each event happens) --------------------------------------------------
def _never_raises(fn: Callable[..., None]) -> Callable[..., None]:
    """A metric that cannot be written (a full disk in multiprocess mode) must not fail the job."""

    def wrapper(*args: Any, **kwargs: Any) -> None:
        try:
            fn(*args, **kwargs)
        except Exception:
            logger.warning("could not record metric %s", fn.__name__, exc_info=True)

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper


def _ran_for(job: Job) -> float | None:
    started = getattr(job, "started_at", None)
    return None if started is None else max(0.0, (timezone.now() - started).total_seconds())


def _observe_run(job: Job) -> None:
    seconds = _ran_for(job)
    if seconds is not None:
        DURATION.labels(queue=job.queue).observe(seconds)


def job_enqueued(job: Job) -> None:
    """A READY row was written (services.job_enqueue): counted once the caller's transaction commits."""
    jobs_enqueued(job.task, job.queue, 1)


@_never_raises
def jobs_enqueued(task: str, queue: str, count: int) -> None:
    """`count` READY rows of one task written (services.job_enqueue_many: in bulk), counted on commit."""
    counter = ENQUEUED.labels(task=task, queue=queue)
    transaction.on_commit(lambda: counter.inc(count), robust=True)


@_never_raises
def job_started(job: Job, message: Any = None) -> None:
    """A run was claimed; its wait counts from the publish or, for a delayed message, its due time."""
    STARTED.labels(task=job.task, queue=job.queue).inc()
    since = job.enqueued_at or job.created_at
    eta = getattr(message, "options", {}).get("eta") if message is not None else None
    if isinstance(eta, int | float):
        since = max(since, datetime.fromtimestamp(eta / 1000, UTC))
    if job.started_at is not None and since is not None:
        QUEUE_WAIT.labels(queue=job.queue).observe(max(0.0, (job.started_at - since).total_seconds()))


@_never_raises
def job_succeeded(job: Job) -> None:
    SUCCEEDED.labels(task=job.task, queue=job.queue).inc()
    _observe_run(job)


@_never_raises
def job_failed(job: Job, *, ran: bool = True) -> None:
    """The job ended FAILED; `ran=False` when it was failed without running (WorkerLost)."""
    FAILED.labels(task=job.task, queue=job.queue).inc()
    if ran:
        _observe_run(job)


@_never_raises
def job_retried(job: Job) -> None:
    RETRIED.labels(task=job.task, queue=job.queue).inc()
    _observe_run(job)


@_never_raises
def job_cancelled(job: Job) -> None:
    CANCELLED.labels(task=job.task, queue=job.queue).inc()
    _observe_run(job)


# --- read at scrape time -------------------------------------------------------------------------------
class GreenroomCollector:
    """Gauges read when scraped: the broker's queues, the ledger's active jobs, the fleet registry."""

    def collect(self) -> Iterator[Metric]:
        yield from broker_metrics()
        yield from ledger_metrics()


def _gauge(name: str, documentation: str, labels: Iterable[str] = ()) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, labels=list(labels))


def broker_metrics() -> list[Metric]:
    """Per-queue gauges from Redis; only `greenroom_broker_up 0` when the broker does not answer."""
    from workers import broker_ops

    up = _gauge("greenroom_broker_up", "1 if the broker answered this scrape; 0 and no queue gauges if not.")
    try:
        stats = broker_ops.queue_stats()
    except broker_ops.BrokerNotInspectable:
        return []  # the stub broker of unit tests: nothing to read
    except Exception:
        logger.warning("metrics: the broker did not answer", exc_info=True)
        up.add_metric([], 0)
        return [up]
    up.add_metric([], 1)
    depth = _gauge("greenroom_queue_depth", "Messages waiting in the queue, not yet taken by a worker.", ["queue"])
    in_flight = _gauge("greenroom_queue_in_flight", "Messages taken by a worker (prefetched or running), not acked.",
                       ["queue"])
    delayed = _gauge("greenroom_queue_delayed", "Messages waiting for their time (retries with backoff).", ["queue"])
    dead = _gauge("greenroom_queue_dead_letters", "Messages in the queue's dead-letter queue.", ["queue"])
    age = _gauge("greenroom_queue_oldest_message_age_seconds",
                 "Age of the message at the head of the queue; 0 when the queue is empty.", ["queue"])
    for queue in stats:
        depth.add_metric([queue.queue], queue.waiting)
        in_flight.add_metric([queue.queue], queue.in_flight)
        delayed.add_metric([queue.queue], queue.delayed)
        dead.add_metric([queue.queue], queue.dead)
        age.add_metric([queue.queue], queue.oldest_age or 0.0)
    return [up, depth, in_flight, delayed, dead, age]


def ledger_metrics() -> list[Metric]:
    """Active jobs per queue and status, live workers per queue, the scheduler's last beat."""
    from django.db.models import Count

    from workers import registry
    from workers.models import ACTIVE_STATUSES, FleetProcess, Job, ProcessKind

    up = _gauge("greenroom_database_up", "1 if the ledger answered this scrape; 0 and no ledger gauges if not.")
    try:
        counts = {(row["queue"], row["status"]): row["n"] for row in Job.objects.filter(status__in=ACTIVE_STATUSES)
                  .values("queue", "status").annotate(n=Count("pk")).order_by()}
        worker_queues = list(registry.alive(ProcessKind.WORKER).values_list("queues", flat=True))
        scheduler = (registry.alive(ProcessKind.SCHEDULER).filter(active=True).order_by("-heartbeat_at").first()
                     or FleetProcess.objects.filter(kind=ProcessKind.SCHEDULER).order_by("-heartbeat_at").first())
        scheduler_active = registry.alive(ProcessKind.SCHEDULER).filter(active=True).exists()
    except Exception:
        logger.warning("metrics: the database did not answer", exc_info=True)
        up.add_metric([], 0)
        return [up]
    up.add_metric([], 1)
    queues = list(dict.fromkeys([*catalogue.QUEUES, *(queue for queue, _ in counts)]))
    jobs = _gauge("greenroom_jobs", "Jobs READY or RUNNING in the ledger.", ["queue", "status"])
    for queue in queues:
        for status in ACTIVE_STATUSES:
            jobs.add_metric([queue, str(status)], counts.get((queue, status), 0))
    serving: dict[str, int] = dict.fromkeys(catalogue.QUEUES, 0)
    for served in worker_queues:
        for queue in served or ():
            serving[queue] = serving.get(queue, 0) + 1
    workers_alive = _gauge("greenroom_workers_alive", "Live worker processes that consume the queue.", ["queue"])
    for queue, count in serving.items():
        workers_alive.add_metric([queue], count)
    processes = _gauge("greenroom_worker_processes_alive", "Live worker processes (any queue).")
    processes.add_metric([], len(worker_queues))
    active = _gauge("greenroom_scheduler_active", "1 if a live scheduler holds the lease.")
    active.add_metric([], int(scheduler_active))
    found: list[Metric] = [up, jobs, workers_alive, processes, active]
    if scheduler is not None:
        beat = _gauge("greenroom_scheduler_last_beat_timestamp_seconds",
                      "Unix time of the last beat of the active scheduler (else of the last scheduler seen).")
        beat.add_metric([], scheduler.heartbeat_at.timestamp())
        found.append(beat)
    return found


# --- the view ----------------------------------------------------------------------------------------
@lru_cache(maxsize=8)
def _networks(allow: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(cidr.strip(), strict=False) for cidr in allow if cidr.strip())


def access_refusal(*, remote_addr: str, authorization: str, token: str, allow: Iterable[str]) -> str | None:
    """Why a scrape is refused, or None. With a token set, the bearer must match it; the client's
    address must be in `allow`, unless `allow` is empty and a token is set (then any network will do).
    """
    networks = _networks(tuple(allow))
    if not token and not networks:
        return "metrics are closed: set GREENROOM_METRICS_TOKEN or GREENROOM_METRICS_ALLOW"
    if networks:
        try:
            address = ipaddress.ip_address(remote_addr)
        except ValueError:
            return "client address unknown"
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if not any(address in network for network in networks):
            return f"client address {address} is not in GREENROOM_METRICS_ALLOW"
    if token:
        scheme, _, given = authorization.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
            return "missing or wrong bearer token (Authorization: Bearer <GREENROOM_METRICS_TOKEN>)"
    return None


def scrape_registry() -> CollectorRegistry:
    """What one scrape reads: every process's files (multiprocess mode) or this process, plus the gauges."""
    registry = CollectorRegistry()
    directory = getattr(settings, "GREENROOM_METRICS_DIR", "")
    if directory:
        MultiProcessCollector(registry, path=directory)
    else:
        registry.register(REGISTRY)
    registry.register(GreenroomCollector())
    return registry


@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    """GET /metrics: the Prometheus exposition, for allowed networks and/or the bearer token."""
    refusal = access_refusal(
        remote_addr=request.META.get("REMOTE_ADDR", ""),
        authorization=request.headers.get("Authorization", ""),
        token=getattr(settings, "GREENROOM_METRICS_TOKEN", ""),
        allow=getattr(settings, "GREENROOM_METRICS_ALLOW", DEFAULT_ALLOW),
    )
    if refusal is not None:
        logger.warning("metrics scrape from %s refused: %s", request.META.get("REMOTE_ADDR", "?"), refusal)
        return HttpResponse(f"403 Forbidden: {refusal}\n", status=403, content_type="text/plain; charset=utf-8")
    encode, content_type = choose_encoder(request.headers.get("Accept", ""))
    return HttpResponse(encode(scrape_registry()), content_type=content_type)


def multiprocess_env(directory: Path) -> dict[str, str]:
    """Empty `directory` of metric files and return the env that points child processes at it.

    For a fresh stack (`runstack`): files of processes that are gone would otherwise be summed for ever.
    """
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):
        stale.unlink(missing_ok=True)
    return {"GREENROOM_METRICS_DIR": str(directory), "PROMETHEUS_MULTIPROC_DIR": str(directory)}
