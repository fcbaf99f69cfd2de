#!/usr/bin/env python
"""Benchmark: the dashboard's read queries and pages on 1,000,000 job rows on PostgreSQL.

    .venv/bin/python bench/dashboard_pages.py [--rows 1000000] [--runs 20] [--warmup 3] [--explain]
                                              [--database-url URL] [--db-name greenroom_bench] [--rebuild]

It works in a database of its own (`--db-name`, created on the server of `--database-url`, default
$DATABASE_URL or postgres://postgres@127.0.0.1:5432/test; the database named in that URL is only
used to run CREATE DATABASE, its tables are never touched), migrates it and fills `workers_job` with
`--rows` rows server-side (one INSERT ... SELECT FROM generate_series, secondary indexes dropped
during the load and rebuilt after it, FK triggers off for the session). The data stays for the next
run: then only the last hour is rewritten, so that the overview has a live hour to show. `--rebuild`
starts over. The mix: 14 days of jobs, 13 tasks on 3 queues, 50 users (30 % of jobs by nobody:
schedules), ~5 % FAILED (85 % of those older than a day dismissed), ~1.5 % CANCELLED, READY rows in
the last 90 s and ~30 % RUNNING in the last 5 minutes; 8 fleet processes, 5 DB schedules and 14 days
of fires.

Then it times each `workers.dashboard.queries` function and each dashboard page (Django's test
Client, a staff user logged in with force_login): `--warmup` calls, then `--runs` timed calls; it
prints the median and the p95 of each, and "pass"/"FAIL" against 100 ms (a page that answers 404 is
"missing"). `--explain` adds EXPLAIN (ANALYZE, BUFFERS) summaries of the heaviest queries. Prints
figures only: nothing here asserts on timing. A private redis-server on a free port serves the pages
that read the broker (never the machine's own Redis); it is removed at the end.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

BASE_DIR = Path(__file__).resolve().parent.parent
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/test"
BUDGET_MS = 100.0
HISTORY_DAYS = 14
USERS = 50

# (task, queue, weight): the share of each job in the ledger.
TASKS = [
    ("pdf.build_report", "interactive", 4),
    ("llm.validate_api", "interactive", 2),
    ("diagnostics.noop", "interactive", 1),
    ("documents.embed_document", "default", 6),
    ("sources.sync_source", "default", 4),
    ("diagnostics.sleep", "default", 1),
    ("diagnostics.fail", "default", 1),
    ("documents.embed_batch", "batch", 1),
    ("sources.sync_all", "batch", 1),
    ("llm.validate_all", "batch", 1),
    ("maintenance.prune_jobs", "batch", 1),
    ("maintenance.cleanup_files", "batch", 1),
    ("maintenance.reconcile", "batch", 1),
]
ERRORS = ["builtins.OSError", "builtins.TimeoutError", "workers.errors.PermanentError", "workers.errors.WorkerLost"]
TRACEBACK = 'Traceback (most recent call last):\n  File "/app/workers/execution.py", line 120, in run_job\n' * 6


# --- set-up -------------------------------------------------------------------------------------
def with_db_name(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def ensure_database(url: str, name: str) -> None:
    """CREATE DATABASE `name` on the server of `url` unless it exists."""
    import psycopg

    parts = urlsplit(url)
    with psycopg.connect(
        host=parts.hostname, port=parts.port or 5432, user=parts.username, password=parts.password,
        dbname=parts.path.lstrip("/") or "postgres", autocommit=True,
    ) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def configure(tmp: Path, database_url: str, redis_url: str) -> None:
    """Environment for a private run; must happen before django.setup()."""
    os.environ["DJANGO_SETTINGS_MODULE"] = "project.settings"
    os.environ["DATABASE_URL"] = database_url
    os.environ["GREENROOM_VAR_DIR"] = str(tmp / "var")
    os.environ["GREENROOM_BROKER_URL"] = redis_url
    os.environ.setdefault("GREENROOM_LOG_LEVEL", "WARNING")
    os.environ["CONN_MAX_AGE"] = "600"
    sys.path.insert(0, str(BASE_DIR))


# --- data ---------------------------------------------------------------------------------------
# One INSERT ... SELECT: `n` jobs created evenly between %(start)s and %(end)s (ascending, as a real
# ledger is written), with their fate decided by their age at %(now)s. Parameters: n, start, end, now,
# tasks, queues (parallel arrays, weighted by repetition), errors, users (ids).
INSERT_JOBS = """
INSERT INTO workers_job (
    id, task, queue, params, status, progress_done, progress_total, progress_message, result,
    error_class, error_message, error_traceback, attempts, requested_by_id, unique_key, retry_of_id, worker,
    cancel_requested_at, created_at, enqueued_at, started_at, heartbeat_at, finished_at, next_attempt_at,
    dismissed_at)
SELECT gen_random_uuid(), f.task, f.queue, jsonb_build_object('n', mod(f.g, 1000)), f.status,
       CASE f.status WHEN 'SUCCESSFUL' THEN 10 WHEN 'RUNNING' THEN floor(f.r_dur * 10)::int ELSE 0 END,
       CASE WHEN f.status IN ('SUCCESSFUL', 'RUNNING') THEN 10 END,
       CASE f.status WHEN 'RUNNING' THEN 'step ' || floor(f.r_dur * 10)::int ELSE '' END,
       CASE f.status WHEN 'SUCCESSFUL' THEN '{"ok": true}'::jsonb END,
       CASE f.status WHEN 'FAILED' THEN f.error ELSE '' END,
       CASE f.status WHEN 'FAILED' THEN 'could not finish item ' || mod(f.g, 97) ELSE '' END,
       CASE f.status WHEN 'FAILED' THEN %(traceback)s ELSE '' END,
       CASE WHEN f.status = 'READY' THEN 0 WHEN f.status = 'FAILED' THEN 1 + floor(f.r_err * 3)::int ELSE 1 END,
       CASE WHEN f.r_user < 0.3 THEN NULL
            ELSE (%(users)s::bigint[])[1 + floor((f.r_user - 0.3) / 0.7 * cardinality(%(users)s::bigint[]))::int] END,
       NULL, NULL,
       CASE WHEN f.status = 'READY' THEN '' ELSE 'worker-' || mod(f.g, 4) || ':' || (1000 + mod(f.g, 8)) END,
       NULL, f.created_at, f.created_at + interval '5 ms',
       CASE WHEN f.status = 'READY' THEN NULL ELSE f.created_at + interval '20 ms' END,
       CASE WHEN f.status = 'RUNNING' THEN %(now)s - f.r_dur * interval '3 s'
            WHEN f.status = 'READY' THEN NULL ELSE f.finished_at END,
       CASE WHEN f.status IN ('SUCCESSFUL', 'FAILED', 'CANCELLED') THEN f.finished_at END,
       NULL,
       CASE WHEN f.status = 'FAILED' AND f.age > interval '1 day' AND f.r_dismiss < 0.85
            THEN f.finished_at + interval '1 hour' END
FROM (
    SELECT b.*,
           least(b.created_at + interval '20 ms' + (0.05 + b.r_dur ^ 3 * 300) * interval '1 s', %(now)s) AS finished_at,
           %(now)s - b.created_at AS age,
           CASE WHEN %(now)s - b.created_at < interval '90 s' THEN 'READY'
                WHEN %(now)s - b.created_at < interval '5 min' AND b.r_status < 0.3 THEN 'RUNNING'
                WHEN b.r_status < 0.05 THEN 'FAILED'
                WHEN b.r_status < 0.065 THEN 'CANCELLED'
                ELSE 'SUCCESSFUL' END AS status,
           (%(tasks)s::text[])[b.pick] AS task, (%(queues)s::text[])[b.pick] AS queue,
           (%(errors)s::text[])[1 + floor(b.r_err * cardinality(%(errors)s::text[]))::int] AS error
    FROM (
        SELECT g, %(start)s + (%(end)s - %(start)s) * (g::float8 / %(n)s) AS created_at,
               1 + floor(random() * cardinality(%(tasks)s::text[]))::int AS pick,
               random() AS r_status, random() AS r_user, random() AS r_dur, random() AS r_err,
               random() AS r_dismiss
        FROM generate_series(1, %(n)s) AS g
    ) AS b
) AS f
"""


def insert_jobs(cursor: Any, *, n: int, start: datetime, end: datetime, now: datetime, users: list[int]) -> None:
    tasks = [task for task, _, weight in TASKS for _ in range(weight)]
    queues = [queue for _, queue, weight in TASKS for _ in range(weight)]
    cursor.execute(INSERT_JOBS, {"n": n, "start": start, "end": end, "now": now, "tasks": tasks,
                                 "queues": queues, "errors": ERRORS, "users": users, "traceback": TRACEBACK})


def seed(rows: int, *, rebuild: bool) -> None:
    """Fill the ledger with `rows` jobs (or refresh the last hour of an earlier fill); print the times."""
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction
    from django.utils import timezone

    from workers.models import Job

    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS bench_meta (rows bigint NOT NULL, recent_from timestamptz NOT NULL)")
        cursor.execute("SELECT rows, recent_from FROM bench_meta")
        meta = cursor.fetchone()
    if rebuild or meta is None or meta[0] != rows:
        meta = None
    User = get_user_model()
    for i in range(USERS):
        User.objects.get_or_create(username=f"user{i:02d}")
    users = list(User.objects.filter(username__startswith="user").order_by("pk").values_list("pk", flat=True))
    now = timezone.now()
    recent_from = now - timedelta(hours=1)
    # The last hour holds its share of the rows (~3,000 of 1,000,000 over 14 days).
    recent = max(1, round(rows / (HISTORY_DAYS * 24)))
    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL synchronous_commit = off")
        cursor.execute("SET LOCAL session_replication_role = replica")  # no FK triggers during the load
        if meta is None:
            cursor.execute("TRUNCATE workers_job, schedules_fire, bench_meta")
            # Secondary indexes are rebuilt once after the load: much faster than row by row.
            cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'workers_job' "
                           "AND indexname NOT IN (SELECT conname FROM pg_constraint)")
            indexes = cursor.fetchall()
            for name, _ in indexes:
                cursor.execute(f'DROP INDEX "{name}"')
            insert_jobs(cursor, n=rows - recent, start=now - timedelta(days=HISTORY_DAYS), end=recent_from,
                        now=recent_from, users=users)
            loaded = time.perf_counter()
            print(f"  inserted {rows - recent:,} history rows in {loaded - started:.1f} s")
            for _, definition in indexes:
                cursor.execute(definition)
            print(f"  rebuilt {len(indexes)} secondary indexes in {time.perf_counter() - loaded:.1f} s")
        else:
            cursor.execute("DELETE FROM workers_job WHERE created_at > %s", [meta[1]])
            print(f"  reusing {rows:,} rows; rewriting the last hour ({cursor.rowcount:,} rows removed)")
        mark = time.perf_counter()
        insert_jobs(cursor, n=recent, start=recent_from, end=now, now=now, users=users)
        cursor.execute("DELETE FROM bench_meta")
        cursor.execute("INSERT INTO bench_meta VALUES (%s, %s)", [rows, recent_from])
        print(f"  inserted {recent:,} last-hour rows in {time.perf_counter() - mark:.2f} s")
    mark = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE workers_job")
    print(f"  VACUUM ANALYZE in {time.perf_counter() - mark:.1f} s; total {time.perf_counter() - started:.1f} s; "
          f"table now {Job.objects.count():,} rows")
    seed_fleet_and_schedules(now)


def seed_fleet_and_schedules(now: datetime) -> None:
    """8 live fleet processes, 5 DB schedules and 14 days of fires every 10 minutes for each schedule."""
    from django.db import connection

    from schedules.models import Fire, Schedule
    from schedules.periodic import periodic_jobs
    from workers.models import FleetProcess, Job, JobStatus

    running = list(Job.objects.filter(status=JobStatus.RUNNING).values_list("pk", "task")[:16])
    for i in range(8):
        kind = "scheduler" if i >= 6 else "worker"
        FleetProcess.objects.update_or_create(
            id=f"bench-host-{i % 3}:{2000 + i}:0",
            defaults={
                "kind": kind, "host": f"bench-host-{i % 3}", "pid": 2000 + i,
                "threads": 0 if kind == "scheduler" else 4,
                "queues": [] if kind == "scheduler" else ["interactive", "default", "batch"],
                "running": [] if kind == "scheduler" else [{"id": str(pk), "task": task} for pk, task in running[i::6]],
                "rss_bytes": 150_000_000 + i * 1_000_000, "active": i == 6, "heartbeat_at": now,
                "started_at": now - timedelta(hours=5), "stopped_at": None,
            },
        )
    for i in range(5):
        Schedule.objects.get_or_create(name=f"bench schedule {i}",
                                       defaults={"task": "diagnostics.noop", "cron": "*/10 * * * *"})
    keys = [f"code:{entry.name}" for entry in periodic_jobs()]
    mine = Schedule.objects.filter(name__startswith="bench schedule")
    keys += [f"db:{pk}" for pk in mine.values_list("pk", flat=True)]
    if Fire.objects.exists():
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO schedules_fire (schedule_key, slot, schedule_id, job_id, note, created_at) "
            "SELECT k, s, NULL, NULL, '', s FROM unnest(%s::text[]) AS k, "
            "generate_series(%s::timestamptz, %s::timestamptz, interval '10 min') AS s",
            [keys, now - timedelta(days=HISTORY_DAYS), now],
        )
        cursor.execute("ANALYZE schedules_fire")


# --- timing -------------------------------------------------------------------------------------
def time_it(call: Callable[[], Any], *, runs: int, warmup: int) -> tuple[float, float, Any]:
    """(median ms, p95 ms, last result) of `runs` calls after `warmup` untimed ones."""
    result = None
    for _ in range(warmup):
        result = call()
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        result = call()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    p95 = samples[min(len(samples) - 1, max(0, round(0.95 * len(samples)) - 1))]
    return statistics.median(samples), p95, result


class QueryCounter:
    """A connection execute wrapper that counts statements (a page's request resets connection.queries)."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
        self.count += 1
        return execute(sql, params, many, context)


def count_queries(call: Callable[[], Any]) -> tuple[int, Any]:
    """(statements sent, result) of one call."""
    from django.db import connection

    counter = QueryCounter()
    with connection.execute_wrapper(counter):
        result = call()
    return counter.count, result


def verdict(median: float, p95: float) -> str:
    return "pass" if p95 < BUDGET_MS else ("FAIL (p95)" if median < BUDGET_MS else "FAIL")


def query_cases() -> list[tuple[str, Callable[[], Any]]]:
    from workers.dashboard import queries
    from workers.dashboard.queries import JobFilters
    from workers.models import Job

    deep = Job.objects.order_by("-created_at", "-pk")[500_000 : 500_001].first() or Job.objects.earliest("created_at")
    deep_cursor = queries.encode_cursor(deep)
    first = queries.job_page(JobFilters())
    biggest = (queries.failure_groups(limit=1) or [None])[0]
    some_job = first.jobs[0]
    failed = Job.objects.filter(status="FAILED").order_by("-created_at").first()
    since = some_job.created_at - timedelta(days=3)
    cases: list[tuple[str, Callable[[], Any]]] = [
        ("job_page()", lambda: queries.job_page(JobFilters())),
        ("job_page(cursor=500,000th row)", lambda: queries.job_page(JobFilters(), cursor=deep_cursor)),
        ("job_page(before=500,000th row)", lambda: queries.job_page(JobFilters(), before=deep_cursor)),
        ("job_page(status=FAILED)", lambda: queries.job_page(JobFilters(status="FAILED"))),
        ("job_page(status=RUNNING)", lambda: queries.job_page(JobFilters(status="RUNNING"))),
        ("job_page(task=maintenance.reconcile)", lambda: queries.job_page(JobFilters(task="maintenance.reconcile"))),
        ("job_page(queue=batch, cursor=deep)", lambda: queries.job_page(JobFilters(queue="batch"), cursor=deep_cursor)),
        ("job_page(user=user07)", lambda: queries.job_page(JobFilters(user="user07"))),
        ("job_page(status=FAILED, task=, user=)", lambda: queries.job_page(
            JobFilters(status="FAILED", task="pdf.build_report", user="user07"))),
        ("job_page(since=-3 days, until=-2 days)", lambda: queries.job_page(
            JobFilters(since=since, until=since + timedelta(days=1)))),
        ("class_stats()", queries.class_stats),
        ("failure_groups()", queries.failure_groups),
    ]
    if biggest is not None:
        cases.append(("failure_jobs(biggest group)", lambda: queries.failure_jobs(
            task=biggest.task, error_class=biggest.error_class)))
    cases += [
        ("job_by_id()", lambda: queries.job_by_id(some_job.pk)),
        ("job_timeline(failed job)", lambda: queries.job_timeline(failed or some_job)),
    ]
    return cases


def page_cases() -> list[tuple[str, str]]:
    from urllib.parse import urlencode

    from workers.dashboard import queries
    from workers.dashboard.queries import JobFilters
    from workers.models import Job

    deep = Job.objects.order_by("-created_at", "-pk")[500_000 : 500_001].first() or Job.objects.earliest("created_at")
    failed = Job.objects.filter(status="FAILED").order_by("-created_at").first() or deep
    biggest = (queries.failure_groups(limit=1) or [None])[0]
    first = queries.job_page(JobFilters(), size=1).jobs[0]
    cases = [
        ("/dashboard/", "/dashboard/"),
        ("/dashboard/jobs/", "/dashboard/jobs/"),
        ("/dashboard/jobs/?status=FAILED", "/dashboard/jobs/?status=FAILED"),
        ("/dashboard/jobs/?task=&queue=&user=", "/dashboard/jobs/?" + urlencode(
            {"task": "documents.embed_document", "queue": "default", "user": "user07"})),
        ("/dashboard/jobs/?cursor=<500,000th>", f"/dashboard/jobs/?cursor={queries.encode_cursor(deep)}"),
        ("/dashboard/jobs/?before=<500,000th>", f"/dashboard/jobs/?before={queries.encode_cursor(deep)}"),
        ("/dashboard/jobs/<id>/ (failed)", f"/dashboard/jobs/{failed.pk}/"),
        ("/dashboard/jobs/<id>/ (newest)", f"/dashboard/jobs/{first.pk}/"),
        ("/dashboard/failures/", "/dashboard/failures/"),
    ]
    if biggest is not None:
        cases.append(("/dashboard/failures/?task=&error_class=", "/dashboard/failures/?" + urlencode(
            {"task": biggest.task, "error_class": biggest.error_class})))
    cases += [
        ("/dashboard/workers/", "/dashboard/workers/"),
        ("/dashboard/schedules/", "/dashboard/schedules/"),
        ("/api/jobs/?status=FAILED", "/api/jobs/?status=FAILED"),
    ]
    return cases


def print_table(title: str, rows: list[tuple[str, str, str, str, str]]) -> None:
    print(f"\n{title}\n")
    print("| what | median ms | p95 ms | queries | < 100 ms |")
    print("|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


def run_queries(*, runs: int, warmup: int) -> None:
    rows = []
    for name, call in query_cases():
        sent, _ = count_queries(call)
        median, p95, _ = time_it(call, runs=runs, warmup=warmup)
        rows.append((f"`{name}`", f"{median:.1f}", f"{p95:.1f}", str(sent), verdict(median, p95)))
    print_table("Query functions (workers.dashboard.queries)", rows)


def run_pages(*, runs: int, warmup: int) -> None:
    from django.contrib.auth import get_user_model
    from django.test import Client

    staff, _ = get_user_model().objects.get_or_create(username="bench-staff", defaults={"is_staff": True})
    client = Client()
    client.force_login(staff)
    rows = []
    for name, url in page_cases():
        try:
            sent, response = count_queries(lambda url=url: client.get(url))
        except Exception as exc:  # a page under construction may crash: report it, time the others
            rows.append((f"`{name}`", "-", "-", "-", f"error: {type(exc).__name__}: {str(exc)[:60]}"))
            continue
        if response.status_code == 404:
            rows.append((f"`{name}`", "-", "-", "-", "missing"))
            continue
        if response.status_code != 200:
            rows.append((f"`{name}`", "-", "-", "-", f"HTTP {response.status_code}"))
            continue
        median, p95, _ = time_it(lambda url=url: client.get(url), runs=runs, warmup=warmup)
        rows.append((f"`{name}`", f"{median:.1f}", f"{p95:.1f}", str(sent), verdict(median, p95)))
    print_table("Pages (Django test Client, staff user; includes template rendering)", rows)


def explain_heaviest(*, top: int = 3) -> None:
    """EXPLAIN (ANALYZE, BUFFERS) of the slowest statements each query function sends."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    print("\nEXPLAIN (ANALYZE, BUFFERS) of the heaviest statements\n")
    timed: list[tuple[float, str, str]] = []
    for name, call in query_cases():
        with CaptureQueriesContext(connection) as captured:
            call()
        for query in captured.captured_queries:
            timed.append((float(query["time"]), name, query["sql"]))
    timed.sort(reverse=True)
    seen: set[str] = set()
    for _, name, sql in timed:
        if name in seen:
            continue
        seen.add(name)
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}")
            plan = [line for (line,) in cursor.fetchall()]
        print(f"-- {name}\n{sql[:300]}{' ...' if len(sql) > 300 else ''}")
        for line in plan[:14] + ([" ..."] if len(plan) > 16 else []) + plan[-2:]:
            print(f"   {line}")
        print()
        if len(seen) >= top:
            break


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--explain", action="store_true", help="print EXPLAIN ANALYZE of the heaviest queries")
    parser.add_argument("--explain-top", type=int, default=6, help="how many query functions --explain covers")
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL") or DEFAULT_URL)
    parser.add_argument("--db-name", default="greenroom_bench", help="the benchmark's own database (created)")
    parser.add_argument("--rebuild", action="store_true", help="drop the rows of an earlier run and load anew")
    args = parser.parse_args()
    if not args.database_url.startswith(("postgres://", "postgresql://")):
        parser.error("--database-url must be a PostgreSQL URL")

    ensure_database(args.database_url, args.db_name)
    tmp = Path(tempfile.mkdtemp(prefix="greenroom-bench-dashboard-"))
    sys.path.insert(0, str(BASE_DIR))
    from tests.support.redis_server import RedisServer

    redis_server = RedisServer()
    try:
        redis_server.start()
        configure(tmp, with_db_name(args.database_url, args.db_name), redis_server.url)
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connection

        call_command("migrate", verbosity=0)
        with connection.cursor() as cursor:
            cursor.execute("SHOW server_version")
            (version,) = cursor.fetchone()
        print(f"{platform.node()}: {os.cpu_count()} CPUs, Python {platform.python_version()}, PostgreSQL {version}, "
              f"database {args.db_name}")
        print(f"Seeding {args.rows:,} job rows")
        seed(args.rows, rebuild=args.rebuild)
        run_queries(runs=args.runs, warmup=args.warmup)
        run_pages(runs=args.runs, warmup=args.warmup)
        if args.explain:
            explain_heaviest(top=args.explain_top)
    finally:
        redis_server.remove()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
