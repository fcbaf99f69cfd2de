"""The dashboard's reads, each one bounded query (or a few) that stays fast on millions of job rows.

CONTRACT (views in workers/dashboard/views.py call exactly these; bench/dashboard_pages.py times them
on 1,000,000 rows on PostgreSQL). Implementation owner: the dashboard-queries work item.

How each read stays bounded (the indexes are in workers/models.py):
- job lists are keyset pages on (created_at, id), newest first: a row comparison
  `(created_at, id) < (%s, %s)` that PostgreSQL turns into an index range on `created_at` (alone or
  behind the filter's column: status, task, queue or requested_by), with LIMIT size + 1 and no COUNT;
- READY/RUNNING counts read only those two statuses through the (status, created_at) index;
- the last hour's per-minute series is one GROUP BY on the truncated finished_at over the partial
  `job_finished` index;
- failure groups are one GROUP BY over the partial `job_open_failures` index (index-only), then the
  newest few of each group from a newest-first walk of the open failures that stops as soon as
  every group has its share, and one fetch by primary key.
Everything is plain ORM (Trunc, Window, a tuple lookup), so it runs on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Count, F, Q, QuerySet
from django.db.models.fields.tuple_lookups import Tuple, TupleGreaterThan, TupleLessThan
from django.db.models.functions import TruncMinute
from django.utils import timezone

from workers import catalogue
from workers.models import Job, JobStatus

# A page never holds more rows than this, whatever `size` a caller asks for.
MAX_PAGE_SIZE = 500
# The overview's series: this many one-minute buckets, the last one being the current minute.
SERIES_MINUTES = 60
# The failures page walks open failures newest first this many rows at a time, for at most this many
# chunks, to find each group's newest jobs; groups still short then get a query each.
FAILURE_SCAN_CHUNK = 1000
FAILURE_SCAN_CHUNKS = 3
# Separates the time from the id inside a decoded cursor.
_CURSOR_SEPARATOR = "|"


@dataclass(frozen=True)
class JobFilters:
    """The job list's filters; every field optional."""

    status: str | None = None
    task: str | None = None
    queue: str | None = None
    user: str | None = None  # username
    since: datetime | None = None  # created_at >= since
    until: datetime | None = None  # created_at < until


@dataclass(frozen=True)
class JobPage:
    """One keyset page, newest first. `next_cursor`/`prev_cursor` are opaque strings or None."""

    jobs: list[Job]
    next_cursor: str | None
    prev_cursor: str | None


# --- cursors --------------------------------------------------------------------------------------
def encode_cursor(job: Job) -> str:
    """The opaque cursor of `job`'s place in the newest-first order: base64 of "<iso time>|<uuid>"."""
    text = f"{job.created_at.astimezone(UTC).isoformat()}{_CURSOR_SEPARATOR}{job.pk}"
    return base64.urlsafe_b64encode(text.encode()).decode()


def decode_cursor(cursor: str | None) -> tuple[datetime, uuid.UUID] | None:
    """(created_at, id) from a cursor, or None for a missing, malformed or tampered one."""
    if not cursor or not isinstance(cursor, str):
        return None
    try:
        text = base64.urlsafe_b64decode(cursor.encode("ascii")).decode()
        created, separator, pk = text.partition(_CURSOR_SEPARATOR)
        created_at, job_id = datetime.fromisoformat(created), uuid.UUID(pk)
    except (ValueError, OverflowError, binascii.Error, UnicodeError):
        return None
    if not separator or created_at.tzinfo is None:
        return None  # we only ever write aware times
    return created_at.astimezone(UTC), job_id


def _keyset_page(rows: QuerySet[Job], *, cursor: str | None, before: str | None, size: int) -> JobPage:
    """One page of `rows` (already filtered) on the (created_at, id) keyset; newest first."""
    size = max(1, min(int(size), MAX_PAGE_SIZE))
    rows = rows.select_related("requested_by")
    key = Tuple(F("created_at"), F("pk"))
    older, newer = decode_cursor(cursor), decode_cursor(before)
    if older is None and newer is not None:
        # Newer rows: walk up in ascending order from the anchor, then show them newest first.
        page = list(rows.filter(TupleGreaterThan(key, newer)).order_by("created_at", "pk")[: size + 1])
        if len(page) <= size:
            # The anchor is within one page of the newest row: show the (full) first page instead.
            return _keyset_page(rows, cursor=None, before=None, size=size)
        page = page[:size][::-1]
        return JobPage(jobs=page, next_cursor=encode_cursor(page[-1]), prev_cursor=encode_cursor(page[0]))
    if older is not None:
        rows = rows.filter(TupleLessThan(key, older))
    page = list(rows.order_by("-created_at", "-pk")[: size + 1])
    has_older = len(page) > size
    page = page[:size]
    return JobPage(
        jobs=page,
        next_cursor=encode_cursor(page[-1]) if has_older else None,
        # Coming from a cursor means newer rows exist (at least the one the cursor names).
        prev_cursor=encode_cursor(page[0]) if older is not None and page else None,
    )


# --- the job list ---------------------------------------------------------------------------------
def _aware(moment: datetime) -> datetime:
    return timezone.make_aware(moment) if timezone.is_naive(moment) else moment


def _filtered(filters: JobFilters) -> QuerySet[Job]:
    rows = Job.objects.all()
    texts = (filters.status, filters.task, filters.queue, filters.user)
    if any(text and "\x00" in text for text in texts):
        return rows.none()  # PostgreSQL refuses NUL in text; no row can match it anyway
    if filters.status:
        rows = rows.filter(status=filters.status)
    if filters.task:
        rows = rows.filter(task=filters.task)
    if filters.queue:
        rows = rows.filter(queue=filters.queue)
    if filters.user:
        # Resolve the name first, so that the list runs on the (requested_by, created_at) index.
        user_id = get_user_model().objects.filter(username=filters.user).values_list("pk", flat=True).first()
        if user_id is None:
            return rows.none()
        rows = rows.filter(requested_by_id=user_id)
    if filters.since:
        rows = rows.filter(created_at__gte=_aware(filters.since))
    if filters.until:
        rows = rows.filter(created_at__lt=_aware(filters.until))
    return rows


def job_page(filters: JobFilters, *, cursor: str | None = None, before: str | None = None, size: int = 50) -> JobPage:
    """Jobs matching `filters`, newest first, keyset-paginated on (created_at, id): `cursor` pages
    to older rows, `before` to newer rows. No COUNT(*). Loads `requested_by` in the same query.

    A missing or malformed cursor means the first page; `cursor` wins when both are given. A `before`
    page that would come out short (it reached the newest row) is the first page instead."""
    return _keyset_page(_filtered(filters), cursor=cursor, before=before, size=size)


# --- the overview ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class ClassStats:
    """Per latency class (queue), from the ledger: the last hour and the current state."""

    queue: str
    ready: int  # READY rows (waiting or delayed)
    running: int
    finished_last_hour: int
    failed_last_hour: int
    per_minute: list[int] = field(default_factory=list)  # 60 buckets, oldest first: jobs finished per minute
    failed_per_minute: list[int] = field(default_factory=list)  # 60 buckets, oldest first

    @property
    def failure_rate(self) -> float | None:
        return None if not self.finished_last_hour else self.failed_last_hour / self.finished_last_hour


def series_start(now: datetime) -> datetime:
    """The first minute of the overview's series: `SERIES_MINUTES` whole minutes ending with now's."""
    minute = now.astimezone(UTC).replace(second=0, microsecond=0)
    return minute - timedelta(minutes=SERIES_MINUTES - 1)


def class_stats(*, now: datetime | None = None) -> list[ClassStats]:
    """One ClassStats per catalogue latency class, in catalogue.QUEUES order.

    "The last hour" is the series' window: the current minute and the 59 before it, so that
    `finished_last_hour == sum(per_minute)`. Finished means SUCCESSFUL, FAILED or CANCELLED."""
    now = now or timezone.now()
    start = series_start(now)
    active: dict[tuple[str, str], int] = {
        (row["queue"], row["status"]): row["n"]
        for row in Job.objects.filter(status__in=[JobStatus.READY, JobStatus.RUNNING])
        .values("queue", "status")
        .annotate(n=Count("pk"))
        .order_by()
    }
    finished = {queue: [0] * SERIES_MINUTES for queue in catalogue.QUEUES}
    failed = {queue: [0] * SERIES_MINUTES for queue in catalogue.QUEUES}
    buckets = (
        Job.objects.filter(finished_at__gte=start, finished_at__lte=now)
        .annotate(minute=TruncMinute("finished_at", tzinfo=UTC))
        .values("queue", "minute")
        .annotate(n=Count("pk"), n_failed=Count("pk", filter=Q(status=JobStatus.FAILED)))
        .order_by()
    )
    for row in buckets:
        index = int((row["minute"] - start).total_seconds() // 60)
        if row["queue"] in finished and 0 <= index < SERIES_MINUTES:
            finished[row["queue"]][index] += row["n"]
            failed[row["queue"]][index] += row["n_failed"]
    return [
        ClassStats(
            queue=queue,
            ready=active.get((queue, JobStatus.READY), 0),
            running=active.get((queue, JobStatus.RUNNING), 0),
            finished_last_hour=sum(finished[queue]),
            failed_last_hour=sum(failed[queue]),
            per_minute=finished[queue],
            failed_per_minute=failed[queue],
        )
        for queue in catalogue.QUEUES
    ]


# --- failures -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FailureGroup:
    """Open failures (FAILED, not dismissed) of one task with one error type."""

    task: str
    error_class: str
    count: int
    latest_at: datetime | None
    sample_message: str
    jobs: list[Job]  # the newest few (up to `per_group`) of the group


def open_failures() -> QuerySet[Job]:
    """FAILED jobs no operator has retried or discarded (the rows of the partial failures index)."""
    return Job.objects.filter(status=JobStatus.FAILED, dismissed_at__isnull=True)


def failure_groups(*, per_group: int = 5, limit: int = 100) -> list[FailureGroup]:
    """Open failures grouped by (task, error_class), biggest group first.

    `jobs` are the group's newest (by created_at, as `failure_jobs` lists them); `latest_at` is the
    newest finished_at among those and `sample_message` the newest job's error message."""
    # Counts only: an index-only scan of the partial job_open_failures index, no row is read.
    groups = list(
        open_failures()
        .values_list("task", "error_class")
        .annotate(count=Count("*"))  # COUNT(id) would read every row for its id
        .order_by("-count", "task", "error_class")[: max(0, limit)]
    )
    if not groups:
        return []
    wanted = {(task, error): min(count, max(1, per_group)) for task, error, count in groups}
    newest = _newest_failures(wanted)
    result = []
    for task, error_class, count in groups:
        jobs = newest.get((task, error_class), [])
        finished = [job.finished_at for job in jobs if job.finished_at is not None]
        result.append(
            FailureGroup(
                task=task,
                error_class=error_class,
                count=count,
                latest_at=max(finished, default=None),
                sample_message=jobs[0].error_message if jobs else "",
                jobs=jobs[:per_group] if per_group > 0 else [],
            )
        )
    return result


def _newest_failures(wanted: dict[tuple[str, str], int]) -> dict[tuple[str, str], list[Job]]:
    """The newest `wanted[group]` open failures of each group, newest first.

    Walks the open failures newest first in chunks (the (status, created_at) index) until every
    group has its share, usually within the first chunk: busy groups fill at once. After
    FAILURE_SCAN_CHUNKS chunks, a group still short (all of its failures are old) gets a query of its
    own, whose cost is the size of that group (the partial job_open_failures index, then a sort).
    """
    found: dict[tuple[str, str], list[uuid.UUID]] = {group: [] for group in wanted}
    short = {group for group, n in wanted.items() if n > 0}
    rows = open_failures().order_by("-created_at", "-pk").values_list("pk", "task", "error_class", "created_at")
    after: tuple[datetime, uuid.UUID] | None = None
    for _ in range(FAILURE_SCAN_CHUNKS):
        chunk_rows = rows.filter(TupleLessThan(Tuple(F("created_at"), F("pk")), after)) if after else rows
        chunk = list(chunk_rows[:FAILURE_SCAN_CHUNK])
        for pk, task, error_class, _created in chunk:
            group = (task, error_class)
            if group in short:
                found[group].append(pk)
                if len(found[group]) >= wanted[group]:
                    short.discard(group)
        if len(chunk) < FAILURE_SCAN_CHUNK:
            short.clear()  # every open failure seen: no group can get more
        if not short:
            break
        after = (chunk[-1][3], chunk[-1][0])
    for task, error_class in short:
        found[(task, error_class)] = list(
            open_failures()
            .filter(task=task, error_class=error_class)
            .order_by("-created_at", "-pk")
            .values_list("pk", flat=True)[: wanted[(task, error_class)]]
        )
    ids = [pk for pks in found.values() for pk in pks]
    newest: dict[tuple[str, str], list[Job]] = {}
    for job in Job.objects.filter(pk__in=ids).select_related("requested_by").order_by("-created_at", "-pk"):
        newest.setdefault((job.task, job.error_class), []).append(job)
    return newest


def failure_jobs(*, task: str, error_class: str, cursor: str | None = None, size: int = 50) -> JobPage:
    """The open failures of one group, newest first, keyset-paginated."""
    if "\x00" in task or "\x00" in error_class:
        return JobPage(jobs=[], next_cursor=None, prev_cursor=None)
    rows = open_failures().filter(task=task, error_class=error_class)
    return _keyset_page(rows, cursor=cursor, before=None, size=size)


# --- one job --------------------------------------------------------------------------------------
def _event(at: datetime | None, event: str, detail: str = "") -> dict[str, Any] | None:
    return None if at is None else {"at": at, "event": event, "detail": detail}


def _error_text(job: Job) -> str:
    return f"{job.error_class}: {job.error_message}" if job.error_class else job.error_message


def job_timeline(job: Job) -> list[dict[str, Any]]:
    """The job's life as events, oldest first: [{"at": datetime, "event": str, "detail": str}], from its
    own timestamps plus its retry chain (retry_of, and later jobs with retry_of = this one).

    Events: retry_of_ended (the job this one retries ended), created, enqueued, started, heartbeat
    (while RUNNING), retry_due (a retry waits), cancel_requested, succeeded/failed/cancelled, dismissed,
    retried (a later job retries this one). Only the last start is on the row: `started` names the
    attempt count."""
    events: list[dict[str, Any] | None] = []
    original = Job.objects.filter(pk=job.retry_of_id).first() if job.retry_of_id else None
    if original is not None:
        how = f"job {original.pk} ended {original.status}"
        how += f": {_error_text(original)}" if original.error_class else ""
        events.append(_event(original.finished_at or original.created_at, "retry_of_ended", how))
    owner = f" by {job.requested_by}" if job.requested_by_id else ""
    retry_note = f", retrying job {job.retry_of_id}" if job.retry_of_id else ""
    events.append(_event(job.created_at, "created", f"{job.task} on {job.queue}{owner}{retry_note}"))
    events.append(_event(job.enqueued_at, "enqueued", f"published to the {job.queue} queue"))
    where = f" on {job.worker}" if job.worker else ""
    events.append(_event(job.started_at, "started", f"attempt {job.attempts}{where}"))
    if job.status == JobStatus.RUNNING:
        progress = f"{job.progress_done}/{job.progress_total or '?'} {job.progress_message}".strip()
        events.append(_event(job.heartbeat_at, "heartbeat", progress))
    if job.status == JobStatus.READY and job.next_attempt_at:
        events.append(_event(job.next_attempt_at, "retry_due", f"after {_error_text(job)}"))
    events.append(_event(job.cancel_requested_at, "cancel_requested"))
    ending = {
        JobStatus.SUCCESSFUL: ("succeeded", ""),
        JobStatus.FAILED: ("failed", _error_text(job)),
        JobStatus.CANCELLED: ("cancelled", ""),
    }.get(JobStatus(job.status))
    if ending:
        events.append(_event(job.finished_at, *ending))
    events.append(_event(job.dismissed_at, "dismissed", "retried or discarded by an operator"))
    for retry in Job.objects.filter(retry_of=job).order_by("created_at", "pk"):
        events.append(_event(retry.created_at, "retried", f"as job {retry.pk} ({retry.status})"))
    # Stable sort: events at the same instant keep their life order (created before enqueued...).
    return sorted((event for event in events if event is not None), key=lambda event: event["at"])


def job_by_id(job_id: uuid.UUID | str) -> Job | None:
    """The job (with requested_by), or None for an unknown or malformed id."""
    if not isinstance(job_id, uuid.UUID):
        try:
            job_id = uuid.UUID(str(job_id))
        except ValueError:
            return None
    return Job.objects.select_related("requested_by").filter(pk=job_id).first()
