"""The job ledger: one `Job` row per job, the single truth about where every job stands.

Status words are Django Tasks' (`READY`, `RUNNING`, `SUCCESSFUL`, `FAILED`) plus `CANCELLED`.
Every transition is a conditional UPDATE on the current status, so two processes racing on one row
cannot both win: a duplicate delivery of a running or finished job is refused, not run twice.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import datetime, timedelta
from typing import Any, ClassVar

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from workers.errors import IllegalTransition


class JobStatus(models.TextChoices):
    READY = "READY", "Ready"
    RUNNING = "RUNNING", "Running"
    SUCCESSFUL = "SUCCESSFUL", "Successful"
    FAILED = "FAILED", "Failed"
    CANCELLED = "CANCELLED", "Cancelled"


ACTIVE_STATUSES = (JobStatus.READY, JobStatus.RUNNING)
FINISHED_STATUSES = (JobStatus.SUCCESSFUL, JobStatus.FAILED, JobStatus.CANCELLED)


class Job(models.Model):
    """One job: what to run, where it stands, and how it ended."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)  # = Dramatiq message id
    task = models.CharField(max_length=100)
    queue = models.CharField(max_length=32)
    params = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.READY)
    progress_done = models.PositiveBigIntegerField(default=0)
    progress_total = models.PositiveBigIntegerField(null=True, blank=True)
    progress_message = models.CharField(max_length=500, blank=True, default="")
    result = models.JSONField(null=True, blank=True)
    error_class = models.CharField(max_length=255, blank=True, default="")
    error_message = models.TextField(blank=True, default="")
    error_traceback = models.TextField(blank=True, default="")
    attempts = models.PositiveIntegerField(default=0)
    # An urgent job's priority (lower = more urgent), below its latency class's: its message waits
    # ahead of the class's ordinary ones, also when the relay or a retry publishes it again.
    # NULL: an ordinary job of its class.
    priority = models.SmallIntegerField(null=True, blank=True)
    # Neither foreign key has an index of its own: most jobs have neither, and the partial indexes
    # below (job_owner_created, job_retry_of) hold only the rows that do.
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    unique_key = models.CharField(max_length=200, null=True, blank=True)
    retry_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    worker = models.CharField(max_length=100, blank=True, default="")  # host:pid of the last runner
    cancel_requested_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    enqueued_at = models.DateTimeField(null=True, blank=True)  # NULL: not yet published (outbox)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # A failure an operator dealt with (retried or discarded): it leaves the failures page.
    dismissed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering: ClassVar[list[str]] = ["-created_at"]
        # Every index entry is written again by each non-HOT UPDATE (the publish mark, the claim and
        # the finish all are), so an index that concerns few jobs holds only those: partial on the
        # column being set, which a query `column = value` still uses (docs/architecture.md).
        indexes: ClassVar[list[models.Index]] = [
            models.Index(fields=["-created_at"], name="job_created"),
            models.Index(
                fields=["requested_by", "-created_at"],
                name="job_owner_created",
                condition=Q(requested_by__isnull=False),
            ),
            # Jobs re-run from this one (and SET NULL when it is deleted).
            models.Index(fields=["retry_of"], name="job_retry_of", condition=Q(retry_of__isnull=False)),
            models.Index(fields=["task", "-created_at"], name="job_task_created"),
            # The dashboard's filters (keyset pages on created_at, pk within each).
            models.Index(fields=["status", "-created_at"], name="job_status_created"),
            models.Index(fields=["queue", "-created_at"], name="job_queue_created"),
            # The overview's last-hour throughput and failure rate.
            models.Index(fields=["finished_at"], name="job_finished", condition=Q(finished_at__isnull=False)),
            # The failures page: open failures grouped by task and error type, each group's newest.
            models.Index(
                fields=["task", "error_class", "-created_at"],
                name="job_open_failures",
                condition=Q(status="FAILED", dismissed_at__isnull=True),
            ),
            # The relay's scan: rows written but not yet published.
            models.Index(
                fields=["created_at"], name="job_unpublished", condition=Q(status="READY", enqueued_at__isnull=True)
            ),
            # The reconciler's scan: running rows by heartbeat.
            models.Index(fields=["heartbeat_at"], name="job_running_heartbeat", condition=Q(status="RUNNING")),
        ]
        constraints: ClassVar[list[models.BaseConstraint]] = [
            # At most one active job per unique key, enforced by the database itself.
            models.UniqueConstraint(
                fields=["unique_key"],
                condition=Q(status__in=["READY", "RUNNING"], unique_key__isnull=False),
                name="job_one_active_per_key",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.task} {self.id} [{self.status}]"

    # --- reading ----------------------------------------------------------------------------------
    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED_STATUSES

    @property
    def percent(self) -> float | None:
        if not self.progress_total:
            return None
        return round(min(100.0, 100.0 * self.progress_done / self.progress_total), 1)

    # --- transitions --------------------------------------------------------------------------------
    def _move(self, *, to: str, allowed_from: tuple[str, ...], extra: Q | None = None, **fields: Any) -> None:
        """Move to `to` if the row is (still) in one of `allowed_from`; refuse otherwise."""
        condition = Q(pk=self.pk, status__in=allowed_from) & (extra or Q())
        if not Job.objects.filter(condition).update(status=to, **fields):
            self.refresh_from_db()
            raise IllegalTransition(f"job {self.pk} is {self.status}; it cannot become {to}")
        self.status = to
        for name, value in fields.items():
            if not hasattr(value, "resolve_expression"):
                setattr(self, name, value)

    @staticmethod
    def claim(job_id: uuid.UUID | str, *, worker: str, stale_before: datetime) -> bool:
        """READY → RUNNING for one runner only (or take over a RUNNING row whose heartbeat is stale).

        Returns False when the job is running elsewhere, finished, cancelled or gone: the caller
        then drops the message instead of running the job a second time.
        """
        now = timezone.now()
        claimable = Q(status=JobStatus.READY, cancel_requested_at__isnull=True) | Q(
            status=JobStatus.RUNNING, heartbeat_at__lt=stale_before, cancel_requested_at__isnull=True
        )
        return bool(
            Job.objects.filter(Q(pk=job_id) & claimable).update(
                status=JobStatus.RUNNING,
                started_at=now,
                heartbeat_at=now,
                next_attempt_at=None,
                attempts=F("attempts") + 1,
                worker=worker,
            )
        )

    @staticmethod
    def claim_run(job_id: uuid.UUID | str, *, worker: str, stale_before: datetime) -> Job | None:
        """`claim` and read the claimed row in one statement (UPDATE … RETURNING); None if not claimed."""
        from workers import ledger_sql

        return ledger_sql.claim_run(job_id, worker=worker, stale_before=stale_before)

    @staticmethod
    def succeed_run(job_id: uuid.UUID | str, *, attempt: int, result: Any, progress: dict[str, Any]) -> bool:
        """RUNNING → SUCCESSFUL for run `attempt` only, with its result and progress; False if it moved on."""
        from workers import ledger_sql

        return ledger_sql.succeed_run(job_id, attempt=attempt, result=result, progress=progress)

    @staticmethod
    def mark_published(job_ids: list[str], *, at: datetime) -> set[str]:
        """Set `enqueued_at` on those still READY and unpublished; returns the ids it set."""
        from workers import ledger_sql

        return ledger_sql.mark_published(job_ids, at=at)

    @staticmethod
    def new_ready(*, task: str, queue: str, params: dict[str, Any], requested_by_id: int | None,
                  unique_key: str | None, priority: int | None = None) -> Job:
        """An unsaved READY row, built fast (bulk enqueue builds thousands)."""
        from workers import ledger_sql

        return ledger_sql.new_ready(task=task, queue=queue, params=params, requested_by_id=requested_by_id,
                                    unique_key=unique_key, priority=priority)

    @staticmethod
    def insert_one(job: Job) -> None:
        """INSERT one unsaved row (built by `new_ready`) in one prepared statement."""
        from workers import ledger_sql

        ledger_sql.insert_one(job)

    @staticmethod
    def insert_many(jobs: list[Job], *, ignore_conflicts: bool = False) -> None:
        """INSERT unsaved rows in one prepared statement (ON CONFLICT DO NOTHING when asked)."""
        from workers import ledger_sql

        ledger_sql.insert_many(jobs, ignore_conflicts=ignore_conflicts)

    def succeed(self, result: Any) -> None:
        self._move(
            to=JobStatus.SUCCESSFUL, allowed_from=(JobStatus.RUNNING,), result=result, finished_at=timezone.now()
        )

    def fail(self, *, error_class: str, error_message: str, error_traceback: str = "") -> None:
        self._move(
            to=JobStatus.FAILED,
            allowed_from=(JobStatus.RUNNING, JobStatus.READY),
            error_class=error_class,
            error_message=error_message,
            error_traceback=error_traceback,
            finished_at=timezone.now(),
            next_attempt_at=None,
        )

    def schedule_retry(self, *, error_class: str, error_message: str, error_traceback: str, delay_ms: int) -> None:
        """RUNNING → READY until the retry's delay has passed; the last error stays on the row."""
        self._move(
            to=JobStatus.READY,
            allowed_from=(JobStatus.RUNNING,),
            error_class=error_class,
            error_message=error_message,
            error_traceback=error_traceback,
            next_attempt_at=timezone.now() + timedelta(milliseconds=delay_ms),
        )

    def cancel(self) -> None:
        """Cancel now if READY; if RUNNING, ask the job to stop at its next progress check."""
        now = timezone.now()
        try:
            self._move(
                to=JobStatus.CANCELLED, allowed_from=(JobStatus.READY,), finished_at=now, cancel_requested_at=now
            )
        except IllegalTransition:
            if self.status != JobStatus.RUNNING:
                raise
            self._move(to=JobStatus.RUNNING, allowed_from=(JobStatus.RUNNING,), cancel_requested_at=now)

    def mark_cancelled(self) -> None:
        """RUNNING → CANCELLED, once the job has stopped after a cancel request."""
        self._move(to=JobStatus.CANCELLED, allowed_from=(JobStatus.RUNNING,), finished_at=timezone.now())


# The columns `Job.claim_run` reads back: what running a job, its log lines and its metrics need.
TOKEN_PREFIX_LENGTH = 8


def hash_token(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class ApiToken(models.Model):
    """An API key for `Authorization: Token <key>`; only its SHA-256 is stored."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="greenroom_tokens")
    name = models.CharField(max_length=100, blank=True, default="")
    prefix = models.CharField(max_length=TOKEN_PREFIX_LENGTH)  # shown in the admin to tell keys apart
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.user})"

    @classmethod
    def issue(cls, *, user: Any, name: str = "") -> tuple[ApiToken, str]:
        """Create a token; the clear key is returned once and never stored."""
        key = secrets.token_urlsafe(32)
        token = cls.objects.create(user=user, name=name, prefix=key[:TOKEN_PREFIX_LENGTH], key_hash=hash_token(key))
        return token, key


class ProcessKind(models.TextChoices):
    WORKER = "worker", "Worker"
    SCHEDULER = "scheduler", "Scheduler"


class FleetProcess(models.Model):
    """A worker or scheduler process as its last beat described it (the dashboard's Workers page).

    Each process upserts its own row every few seconds (`workers.registry.process_beat`); a row
    whose beat is older than a few intervals belongs to a process that is gone.
    """

    id = models.CharField(primary_key=True, max_length=150)  # "<host>:<pid>:<start time>"
    kind = models.CharField(max_length=10, choices=ProcessKind.choices)
    host = models.CharField(max_length=100)
    pid = models.PositiveIntegerField()
    queues = models.JSONField(default=list, blank=True)
    threads = models.PositiveIntegerField(default=0)
    running = models.JSONField(default=list, blank=True)  # [{"id": job id, "task": name}, ...]
    rss_bytes = models.PositiveBigIntegerField(default=0)
    active = models.BooleanField(default=False)  # a scheduler: holds the lease
    started_at = models.DateTimeField(default=timezone.now)
    heartbeat_at = models.DateTimeField(default=timezone.now)
    stopped_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering: ClassVar[list[str]] = ["kind", "host", "pid"]
        indexes: ClassVar[list[models.Index]] = [models.Index(fields=["heartbeat_at"], name="process_heartbeat")]

    def __str__(self) -> str:
        return f"{self.kind} {self.host}:{self.pid}"
