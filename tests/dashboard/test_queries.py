"""The dashboard's read queries: keyset pages, filters, the overview's buckets, failure groups, timelines."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.utils import timezone

from workers.dashboard.queries import (
    SERIES_MINUTES,
    JobFilters,
    JobPage,
    class_stats,
    decode_cursor,
    encode_cursor,
    failure_groups,
    failure_jobs,
    job_by_id,
    job_page,
    job_timeline,
    series_start,
)
from workers.models import Job, JobStatus

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@pytest.fixture
def make_job() -> Callable[..., Job]:
    """`make_job(**fields)`: a Job row written as is (no enqueue, no broker)."""

    def make(**fields: Any) -> Job:
        fields.setdefault("task", "diagnostics.noop")
        fields.setdefault("queue", "default")
        fields.setdefault("created_at", T0)
        return Job.objects.create(**fields)

    return make


def newest_first(jobs: list[Job]) -> list[uuid.UUID]:
    return [job.pk for job in sorted(jobs, key=lambda job: (job.created_at, job.pk), reverse=True)]


def walk_older(filters: JobFilters, *, size: int) -> list[JobPage]:
    pages = [job_page(filters, size=size)]
    while pages[-1].next_cursor:
        pages.append(job_page(filters, cursor=pages[-1].next_cursor, size=size))
        assert len(pages) < 100, "paging does not end"
    return pages


def b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


# --- keyset pages ---------------------------------------------------------------------------------


def test_paging_visits_every_row_once_in_order_even_with_equal_created_at(make_job):
    # Given 23 jobs on only 3 distinct created_at values (7 + 8 + 8 ties)
    jobs = [make_job(created_at=T0 + timedelta(seconds=i % 3)) for i in range(23)]

    # When the list is walked to its end, 5 rows a page
    pages = walk_older(JobFilters(), size=5)

    # Then every row comes exactly once, newest first with the id as tie-break
    assert [len(page.jobs) for page in pages] == [5, 5, 5, 5, 3]
    assert [job.pk for page in pages for job in page.jobs] == newest_first(jobs)
    assert pages[0].prev_cursor is None
    assert all(page.prev_cursor for page in pages[1:])
    assert pages[-1].next_cursor is None


def test_a_page_that_ends_exactly_at_the_last_row_has_no_next_cursor(make_job):
    for i in range(10):
        make_job(created_at=T0 + timedelta(seconds=i))

    pages = walk_older(JobFilters(), size=5)

    assert [len(page.jobs) for page in pages] == [5, 5]
    assert pages[-1].next_cursor is None


def test_paging_back_with_before_returns_the_same_pages(make_job):
    jobs = [make_job(created_at=T0 + timedelta(seconds=i // 4)) for i in range(20)]
    forward = walk_older(JobFilters(), size=4)
    assert [job.pk for page in forward for job in page.jobs] == newest_first(jobs)

    # Walking back from the last page with `before` gives the forward pages in reverse order.
    back = [forward[-1]]
    while back[-1].prev_cursor:
        back.append(job_page(JobFilters(), before=back[-1].prev_cursor, size=4))
        assert len(back) < 100, "paging back does not end"
    assert [[job.pk for job in page.jobs] for page in reversed(back)] == [
        [job.pk for job in page.jobs] for page in forward
    ]
    assert back[-1].prev_cursor is None


def test_before_near_the_top_gives_the_full_first_page(make_job):
    for i in range(12):
        make_job(created_at=T0 + timedelta(seconds=i))
    first = job_page(JobFilters(), size=5)
    # An anchor only two rows below the newest row.
    anchor = encode_cursor(first.jobs[2])

    page = job_page(JobFilters(), before=anchor, size=5)

    assert [job.pk for job in page.jobs] == [job.pk for job in first.jobs]
    assert page.prev_cursor is None
    assert page.next_cursor == first.next_cursor


def test_rows_created_while_paging_do_not_shift_the_older_pages(make_job):
    jobs = [make_job(created_at=T0 + timedelta(seconds=i)) for i in range(8)]
    first = job_page(JobFilters(), size=4)

    make_job(created_at=T0 + timedelta(hours=1))  # a new job arrives
    second = job_page(JobFilters(), cursor=first.next_cursor, size=4)

    assert [job.pk for job in second.jobs] == newest_first(jobs)[4:]


def test_requested_by_comes_with_the_page_in_one_query(make_job, django_user_model, django_assert_num_queries):
    alice = django_user_model.objects.create_user(username="alice")
    for i in range(3):
        make_job(created_at=T0 + timedelta(seconds=i), requested_by=alice)

    with django_assert_num_queries(1):
        page = job_page(JobFilters(), size=10)
        names = [job.requested_by.username for job in page.jobs]

    assert names == ["alice"] * 3


def test_page_size_is_capped():
    Job.objects.bulk_create(
        [Job(task="diagnostics.noop", queue="default", created_at=T0 + timedelta(seconds=i)) for i in range(505)]
    )

    page = job_page(JobFilters(), size=10_000)

    assert len(page.jobs) == 500
    assert page.next_cursor is not None


# --- filters --------------------------------------------------------------------------------------


def test_filters_combine_and_each_one_narrows_the_list(make_job, django_user_model):
    alice = django_user_model.objects.create_user(username="alice")
    bob = django_user_model.objects.create_user(username="bob")
    a = make_job(task="pdf.build", queue="batch", status=JobStatus.FAILED, requested_by=alice)
    b = make_job(task="pdf.build", queue="batch", status=JobStatus.SUCCESSFUL, requested_by=bob,
                 created_at=T0 + timedelta(hours=1))
    c = make_job(task="diagnostics.noop", queue="interactive", status=JobStatus.FAILED, requested_by=alice,
                 created_at=T0 + timedelta(hours=2))
    d = make_job(task="diagnostics.noop", queue="default", status=JobStatus.READY, created_at=T0 - timedelta(days=1))

    def ids(**filters: Any) -> set[uuid.UUID]:
        return {job.pk for job in job_page(JobFilters(**filters)).jobs}

    assert ids() == {a.pk, b.pk, c.pk, d.pk}
    assert ids(status="FAILED") == {a.pk, c.pk}
    assert ids(task="pdf.build") == {a.pk, b.pk}
    assert ids(queue="interactive") == {c.pk}
    assert ids(user="alice") == {a.pk, c.pk}
    assert ids(user="alice", status="FAILED", task="pdf.build") == {a.pk}
    assert ids(since=T0) == {a.pk, b.pk, c.pk}
    assert ids(until=T0 + timedelta(hours=1)) == {a.pk, d.pk}  # until is exclusive
    assert ids(since=T0, until=T0 + timedelta(hours=2)) == {a.pk, b.pk}


def test_filters_that_match_nothing_give_an_empty_page(make_job):
    make_job(task="pdf.build")

    for filters in (
        JobFilters(user="nobody"),
        JobFilters(status="NOSUCH"),
        JobFilters(task="pdf.build\x00"),
        JobFilters(queue="\x00"),
        JobFilters(user="al\x00ice"),
    ):
        page = job_page(filters)
        assert page == JobPage(jobs=[], next_cursor=None, prev_cursor=None), filters


def test_naive_since_is_read_in_the_current_time_zone(make_job):
    job = make_job(created_at=T0)

    assert [row.pk for row in job_page(JobFilters(since=datetime(2026, 11, 20, 11, 59))).jobs] == [job.pk]
    assert job_page(JobFilters(since=datetime(2026, 11, 20, 12, 1))).jobs == []


def test_paging_with_a_filter_stays_inside_the_filter(make_job):
    failed = [make_job(status=JobStatus.FAILED, created_at=T0 + timedelta(seconds=i % 2)) for i in range(7)]
    for i in range(7):
        make_job(status=JobStatus.SUCCESSFUL, created_at=T0 + timedelta(seconds=i % 2))

    pages = walk_older(JobFilters(status="FAILED"), size=3)

    assert [job.pk for page in pages for job in page.jobs] == newest_first(failed)


# --- cursors --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "not base64 at all!",
        "é",
        b64("no separator"),
        b64("2026-11-20T12:00:00+00:00|not-a-uuid"),
        b64(f"yesterday|{uuid.uuid4()}"),
        b64(f"2026-11-20T12:00:00|{uuid.uuid4()}"),  # naive: never written by us
        b64(f"99999-01-01T00:00:00+00:00|{uuid.uuid4()}"),
        base64.urlsafe_b64encode(b"\xff\xfe|\x00").decode(),
    ],
)
def test_a_bad_cursor_means_the_first_page(make_job, cursor):
    jobs = [make_job(created_at=T0 + timedelta(seconds=i)) for i in range(4)]

    older = job_page(JobFilters(), cursor=cursor, size=3)
    newer = job_page(JobFilters(), before=cursor, size=3)

    assert decode_cursor(cursor) is None
    for page in (older, newer):
        assert [job.pk for job in page.jobs] == newest_first(jobs)[:3]
        assert page.prev_cursor is None


def test_a_cursor_round_trips_to_the_rows_key(make_job):
    job = make_job(created_at=datetime(2026, 11, 20, 13, 0, 0, 123456, tzinfo=UTC))

    assert decode_cursor(encode_cursor(job)) == (job.created_at, job.pk)


# --- the overview ---------------------------------------------------------------------------------


def test_class_stats_buckets_the_last_hour_per_minute_and_counts_active_rows(make_job):
    now = datetime(2026, 11, 20, 12, 30, 40, tzinfo=UTC)
    start = series_start(now)
    assert start == datetime(2026, 11, 20, 11, 31, tzinfo=UTC)
    # Given jobs finished in the first, a middle and the current minute of the window
    make_job(queue="default", status=JobStatus.SUCCESSFUL, finished_at=start + timedelta(seconds=5))
    make_job(queue="default", status=JobStatus.FAILED, finished_at=start + timedelta(seconds=59))
    make_job(queue="default", status=JobStatus.SUCCESSFUL, finished_at=start + timedelta(minutes=10, seconds=30))
    make_job(queue="default", status=JobStatus.CANCELLED, finished_at=now - timedelta(seconds=10))
    make_job(queue="batch", status=JobStatus.FAILED, finished_at=now)
    # ... and jobs outside it (before the window, in the future, in a queue outside the catalogue)
    make_job(queue="default", status=JobStatus.SUCCESSFUL, finished_at=start - timedelta(seconds=1))
    make_job(queue="default", status=JobStatus.SUCCESSFUL, finished_at=now + timedelta(seconds=1))
    make_job(queue="elsewhere", status=JobStatus.SUCCESSFUL, finished_at=now)
    # ... and active rows
    for _ in range(3):
        make_job(queue="interactive", status=JobStatus.READY)
    make_job(queue="interactive", status=JobStatus.RUNNING)
    make_job(queue="batch", status=JobStatus.RUNNING)

    stats = {row.queue: row for row in class_stats(now=now)}

    assert list(stats) == ["interactive", "default", "batch"]
    default = stats["default"]
    assert len(default.per_minute) == len(default.failed_per_minute) == SERIES_MINUTES
    assert default.per_minute[0] == 2 and default.failed_per_minute[0] == 1
    assert default.per_minute[10] == 1
    assert default.per_minute[-1] == 1 and default.failed_per_minute[-1] == 0
    assert sum(default.per_minute) == default.finished_last_hour == 4
    assert default.failed_last_hour == 1
    assert default.failure_rate == 0.25
    assert (default.ready, default.running) == (0, 0)
    assert (stats["interactive"].ready, stats["interactive"].running) == (3, 1)
    assert stats["interactive"].finished_last_hour == 0 and stats["interactive"].failure_rate is None
    assert stats["batch"].failed_per_minute[-1] == 1 and stats["batch"].running == 1


def test_class_stats_defaults_to_now(make_job):
    make_job(queue="default", status=JobStatus.SUCCESSFUL, finished_at=timezone.now() - timedelta(seconds=1))

    default = next(row for row in class_stats() if row.queue == "default")

    assert default.finished_last_hour == 1


# --- failures -------------------------------------------------------------------------------------


def test_failure_groups_are_open_failures_biggest_first_with_the_newest_jobs(make_job):
    def fail(task: str, error: str, minute: int, **fields: Any) -> Job:
        at = T0 + timedelta(minutes=minute)
        return make_job(task=task, status=JobStatus.FAILED, error_class=error, error_message=f"{error} at {minute}",
                        created_at=at, finished_at=at + timedelta(seconds=30), **fields)

    big = [fail("pdf.build", "OSError", minute) for minute in range(7)]
    small = [fail("pdf.build", "ValueError", minute) for minute in (3, 9)]
    fail("pdf.build", "ValueError", 20, dismissed_at=T0)  # dealt with: not listed, not counted
    fail("sources.sync", "KeyError", 1, dismissed_at=T0)  # a group with only dismissed failures
    make_job(task="pdf.build", status=JobStatus.READY, error_class="OSError")  # waiting for a retry

    groups = failure_groups(per_group=3)

    assert [(g.task, g.error_class, g.count) for g in groups] == [("pdf.build", "OSError", 7),
                                                                  ("pdf.build", "ValueError", 2)]
    first, second = groups
    assert [job.pk for job in first.jobs] == newest_first(big)[:3]
    assert first.latest_at == big[-1].finished_at
    assert first.sample_message == "OSError at 6"
    assert [job.pk for job in second.jobs] == newest_first(small)
    assert second.sample_message == "ValueError at 9"


def test_failure_groups_limit_and_per_group_zero(make_job):
    for i, error in enumerate(["A", "A", "A", "B", "B", "C"]):
        make_job(status=JobStatus.FAILED, error_class=error, error_message=error,
                 created_at=T0 + timedelta(seconds=i), finished_at=T0 + timedelta(seconds=i))

    groups = failure_groups(per_group=0, limit=2)

    assert [(g.error_class, g.count, len(g.jobs), g.sample_message) for g in groups] == [("A", 3, 0, "A"),
                                                                                      ("B", 2, 0, "B")]
    assert failure_groups(limit=0) == []


def test_failure_jobs_pages_through_one_open_group(make_job):
    group = [make_job(task="pdf.build", status=JobStatus.FAILED, error_class="OSError",
                      created_at=T0 + timedelta(seconds=i % 3)) for i in range(8)]
    make_job(task="pdf.build", status=JobStatus.FAILED, error_class="OSError", dismissed_at=T0)
    make_job(task="pdf.build", status=JobStatus.FAILED, error_class="ValueError")
    make_job(task="sources.sync", status=JobStatus.FAILED, error_class="OSError")

    pages = [failure_jobs(task="pdf.build", error_class="OSError", size=3)]
    while pages[-1].next_cursor:
        pages.append(failure_jobs(task="pdf.build", error_class="OSError", cursor=pages[-1].next_cursor, size=3))

    assert [job.pk for page in pages for job in page.jobs] == newest_first(group)
    assert failure_jobs(task="pdf.build", error_class="OSError", cursor="garbage", size=3).jobs == pages[0].jobs
    assert failure_jobs(task="pdf.build\x00", error_class="OSError").jobs == []


# --- one job --------------------------------------------------------------------------------------


def test_timeline_tells_the_life_of_a_retried_failure_oldest_first(make_job, django_user_model):
    alice = django_user_model.objects.create_user(username="alice")
    original = make_job(task="pdf.build", status=JobStatus.FAILED, error_class="OSError", error_message="disk full",
                        created_at=T0 - timedelta(minutes=5), finished_at=T0 - timedelta(minutes=4))
    job = make_job(task="pdf.build", status=JobStatus.FAILED, requested_by=alice, retry_of=original,
                   created_at=T0, enqueued_at=T0 + timedelta(seconds=1), started_at=T0 + timedelta(seconds=2),
                   attempts=2, worker="host:42", error_class="OSError", error_message="disk still full",
                   finished_at=T0 + timedelta(seconds=9), dismissed_at=T0 + timedelta(minutes=1))
    retry = make_job(task="pdf.build", retry_of=job, created_at=T0 + timedelta(minutes=1))

    events = job_timeline(job)

    assert [event["event"] for event in events] == [
        "retry_of_ended", "created", "enqueued", "started", "failed", "dismissed", "retried",
    ]
    assert [event["at"] for event in events] == sorted(event["at"] for event in events)
    by_name = {event["event"]: event for event in events}
    assert str(original.pk) in by_name["retry_of_ended"]["detail"]
    assert "disk full" in by_name["retry_of_ended"]["detail"]
    assert "alice" in by_name["created"]["detail"]
    assert by_name["started"]["detail"] == "attempt 2 on host:42"
    assert by_name["failed"]["detail"] == "OSError: disk still full"
    assert str(retry.pk) in by_name["retried"]["detail"]


def test_timeline_of_a_running_job_and_of_a_waiting_retry(make_job):
    running = make_job(status=JobStatus.RUNNING, started_at=T0, heartbeat_at=T0 + timedelta(seconds=3),
                       progress_done=2, progress_total=5, progress_message="pages", attempts=1,
                       cancel_requested_at=T0 + timedelta(seconds=4))
    waiting = make_job(status=JobStatus.READY, enqueued_at=T0, error_class="OSError", error_message="later",
                       next_attempt_at=T0 + timedelta(seconds=30))

    assert [event["event"] for event in job_timeline(running)] == [
        "created", "started", "heartbeat", "cancel_requested",
    ]
    assert job_timeline(running)[2]["detail"] == "2/5 pages"
    assert [event["event"] for event in job_timeline(waiting)] == ["created", "enqueued", "retry_due"]


def test_job_by_id_takes_uuids_and_strings_and_refuses_nonsense(make_job, django_user_model,
                                                                 django_assert_num_queries):
    alice = django_user_model.objects.create_user(username="alice")
    job = make_job(requested_by=alice)

    with django_assert_num_queries(1):
        found = job_by_id(str(job.pk))
        assert found is not None and found.requested_by.username == "alice"
    assert job_by_id(job.pk) == job
    assert job_by_id(uuid.uuid4()) is None
    for nonsense in ("", "42", "../etc", "\x00", str(job.pk) + "0"):
        assert job_by_id(nonsense) is None


@pytest.mark.parametrize(("chunk", "chunks"), [(1000, 3), (2, 1), (3, 2), (1, 100)])
def test_failure_groups_find_the_same_newest_jobs_however_far_the_walk_goes(make_job, monkeypatch, chunk, chunks):
    # Given a busy recent group and a group whose failures are all old (behind many newer ones)
    busy = [make_job(task="pdf.build", status=JobStatus.FAILED, error_class="OSError",
                     created_at=T0 + timedelta(minutes=10, seconds=i), finished_at=T0 + timedelta(hours=1))
            for i in range(6)]
    old = [make_job(task="sources.sync", status=JobStatus.FAILED, error_class="KeyError",
                    created_at=T0 + timedelta(seconds=i % 2), finished_at=T0 + timedelta(seconds=5 + i))
           for i in range(4)]
    # When the newest-first walk stops after `chunks` chunks of `chunk` rows (the rest by per-group queries)
    monkeypatch.setattr("workers.dashboard.queries.FAILURE_SCAN_CHUNK", chunk)
    monkeypatch.setattr("workers.dashboard.queries.FAILURE_SCAN_CHUNKS", chunks)

    groups = {(g.task, g.error_class): g for g in failure_groups(per_group=3)}

    # Then each group still has its own newest jobs, and latest_at is the newest finish among them
    assert [job.pk for job in groups[("pdf.build", "OSError")].jobs] == newest_first(busy)[:3]
    assert [job.pk for job in groups[("sources.sync", "KeyError")].jobs] == newest_first(old)[:3]
    assert groups[("sources.sync", "KeyError")].latest_at == max(
        job.finished_at for job in old if job.pk in set(newest_first(old)[:3])
    )
    assert groups[("sources.sync", "KeyError")].count == 4
