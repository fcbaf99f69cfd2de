"""`manage.py jobs <list|show|retry|cancel|purge|redrive|stats>`: the operator's view of the job system.

Reads come from the ledger and the broker (`workers.broker_ops`); every change goes through
`workers.services` or `workers.operations`. Bulk and destructive actions ask for confirmation on
stdin unless `--yes` is given, and refuse when nobody can answer. See docs/cli.md.
"""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any, TextIO

import redis.exceptions
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from workers import broker_ops, operations, registry, services
from workers.errors import GreenroomError, IllegalTransition
from workers.models import Job, JobStatus, ProcessKind
from workers.serializers import iso, job_to_json


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise ValueError(value)
    return number


class Command(BaseCommand):
    help = "Inspect and operate the job system: list, show, retry, cancel, purge, redrive, stats."
    stealth_options = ("stdin",)

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")

        ls = sub.add_parser("list", help="jobs, newest first")
        ls.add_argument("--status", help="READY, RUNNING, SUCCESSFUL, FAILED or CANCELLED")
        ls.add_argument("--task", help="a catalogue name, e.g. diagnostics.sleep")
        ls.add_argument("--queue", help="a queue (latency class)")
        ls.add_argument("--user", help="the username that requested the jobs")
        ls.add_argument("--limit", type=_positive, default=20, help="at most N jobs (default 20)")
        ls.add_argument("--json", action="store_true", help="one JSON object per line")

        show = sub.add_parser("show", help="one job: every field, its error and its retry chain")
        show.add_argument("job_id", help="the job's id")
        show.add_argument("--json", action="store_true", help="as one JSON object")

        retry = sub.add_parser("retry", help="retry a failed or cancelled job, or all open failures")
        retry.add_argument("job_id", nargs="?", help="the job's id (or --failed)")
        retry.add_argument("--failed", action="store_true", help="every open failure (FAILED, not dismissed)")
        retry.add_argument("--task", help="with --failed: only this task")
        retry.add_argument("--queue", help="with --failed: only this queue")
        retry.add_argument("--since", help="with --failed: only failures since this ISO time")
        retry.add_argument("--yes", action="store_true", help="do not ask for confirmation")

        cancel = sub.add_parser("cancel", help="cancel a READY job, or ask a RUNNING one to stop")
        cancel.add_argument("job_id", help="the job's id")

        purge = sub.add_parser("purge", help="cancel a queue's READY jobs and delete its waiting messages")
        purge.add_argument("--queue", required=True, help="the queue to purge")
        purge.add_argument("--yes", action="store_true", help="do not ask for confirmation")

        redrive = sub.add_parser("redrive", help="send dead letters back (failed jobs are retried)")
        redrive.add_argument("--queue", help="only this queue's dead letters (default: every queue)")
        redrive.add_argument("--yes", action="store_true", help="do not ask for confirmation")

        stats = sub.add_parser("stats", help="queues, ledger counts, last hour, workers and the scheduler")
        stats.add_argument("--json", action="store_true", help="as one JSON object")

    def execute(self, *args: Any, **options: Any) -> Any:
        self.stdin: TextIO = options.get("stdin") or sys.stdin
        return super().execute(*args, **options)

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        handlers: dict[str, Callable[..., None]] = {
            "list": self.list_jobs, "show": self.show, "retry": self.retry, "cancel": self.cancel,
            "purge": self.purge, "redrive": self.redrive, "stats": self.stats,
        }
        handlers[action](**options)

    # --- helpers ---------------------------------------------------------------------------------------
    def _job(self, job_id: str) -> Job:
        try:
            pk = uuid.UUID(job_id)
        except ValueError:
            raise CommandError(f"{job_id!r} is not a job id (a UUID)") from None
        job = Job.objects.select_related("requested_by").filter(pk=pk).first()
        if job is None:
            raise CommandError(f"no job {pk}")
        return job

    def _queue(self, queue: str) -> str:
        known = broker_ops.queue_names()
        if queue not in known:
            raise CommandError(f"unknown queue {queue!r}; the queues are {', '.join(known)}")
        return queue

    def _confirm(self, question: str, *, yes: bool) -> None:
        """Ask `question` on stdin; raise CommandError unless answered yes."""
        if yes:
            return
        self.stdout.write(f"{question} [y/N] ", ending="")
        self.stdout.flush()
        answer = self.stdin.readline()
        if not answer:  # EOF: nobody can answer (cron, </dev/null)
            self.stdout.write("")
            raise CommandError("no answer on stdin (not interactive); pass --yes to go ahead without confirmation")
        if answer.strip().lower() not in ("y", "yes"):
            raise CommandError("aborted; nothing was changed")

    # --- list / show ------------------------------------------------------------------------------------
    def list_jobs(self, *, status: str | None, task: str | None, queue: str | None, user: str | None, limit: int,
                  json: bool, **_: Any) -> None:
        jobs = Job.objects.select_related("requested_by").order_by("-created_at", "-pk")
        if status:
            if status.upper() not in JobStatus.values:
                raise CommandError(f"unknown status {status!r}; one of {', '.join(JobStatus.values)}")
            jobs = jobs.filter(status=status.upper())
        if task:
            jobs = jobs.filter(task=task)
        if queue:
            jobs = jobs.filter(queue=queue)
        if user:
            if not get_user_model().objects.filter(username=user).exists():
                raise CommandError(f"no user {user!r}")
            jobs = jobs.filter(requested_by__username=user)
        rows = list(jobs[:limit])
        if json:
            for job in rows:
                self.stdout.write(_dumps(_job_json(job)))
            return
        table = [["ID", "TASK", "QUEUE", "STATUS", "PROGRESS", "ATTEMPTS", "CREATED", "USER"]]
        for job in rows:
            table.append([
                str(job.pk), job.task, job.queue, job.status, "-" if job.percent is None else f"{job.percent:.0f}%",
                str(job.attempts), _local(job.created_at), _username(job),
            ])
        self._table(table)
        if not rows:
            self.stdout.write("(no jobs)")

    def show(self, *, job_id: str, json: bool, **_: Any) -> None:
        job = self._job(job_id)
        ancestors, descendants = _retry_chain(job)
        if json:
            data = _job_json(job, full=True)
            data["retry_chain"] = {"retry_of": [_brief(j) for j in ancestors],
                                   "retried_by": [_brief(j) for j in descendants]}
            self.stdout.write(_dumps(data))
            return
        progress = f"{job.progress_done}/{job.progress_total or '-'}"
        if job.percent is not None:
            progress += f" ({job.percent}%)"
        if job.progress_message:
            progress += f" {job.progress_message}"
        fields = [
            ("id", str(job.pk)), ("task", job.task), ("queue", job.queue), ("status", job.status),
            ("progress", progress), ("attempts", str(job.attempts)), ("requested by", _username(job)),
            ("unique key", job.unique_key or "-"), ("worker", job.worker or "-"),
            ("params", _dumps(job.params)), ("result", _dumps(job.result) if job.result is not None else "-"),
            ("created", _local(job.created_at)), ("enqueued", _local(job.enqueued_at)),
            ("started", _local(job.started_at)), ("heartbeat", _local(job.heartbeat_at)),
            ("finished", _local(job.finished_at)), ("next attempt", _local(job.next_attempt_at)),
            ("cancel requested", _local(job.cancel_requested_at)), ("dismissed", _local(job.dismissed_at)),
            ("error", f"{job.error_class}: {job.error_message}" if job.error_class else "-"),
        ]
        width = max(len(name) for name, _ in fields)
        for name, value in fields:
            self.stdout.write(f"{name:<{width}}  {value}")
        for title, chain in (("retry of", ancestors), ("retried by", descendants)):
            for other in chain:
                self.stdout.write(f"{title:<{width}}  {other.pk} {other.status} {_local(other.created_at)}")
        if job.error_traceback:
            self.stdout.write("traceback:")
            self.stdout.write(job.error_traceback.rstrip())

    # --- retry / cancel ---------------------------------------------------------------------------------
    def retry(self, *, job_id: str | None, failed: bool, task: str | None, queue: str | None, since: str | None,
              yes: bool, **_: Any) -> None:
        if job_id and failed:
            raise CommandError("give a job id or --failed, not both")
        if job_id:
            if task or queue or since:
                raise CommandError("--task, --queue and --since go with --failed")
            job = self._job(job_id)
            try:
                new = services.job_retry(job=job)
            except GreenroomError as exc:
                raise CommandError(str(exc)) from exc
            self.stdout.write(f"retried {job.pk} ({job.task}) as {new.pk}")
            return
        if not failed:
            raise CommandError("give a job id, or --failed for every open failure")
        jobs = operations.open_failures(task=task, queue=self._queue(queue) if queue else None,
                                        since=_parse_time(since) if since else None)
        count = jobs.count()
        if not count:
            self.stdout.write("no open failures match; nothing to retry")
            return
        self._confirm(f"Retry {count} failed job{'s' if count != 1 else ''}?", yes=yes)
        outcome = operations.jobs_retry(jobs=jobs)
        for old, new in outcome.retried:
            self.stdout.write(f"retried {old.pk} ({old.task}) as {new.pk}")
        for old, error in outcome.errors:
            self.stderr.write(f"could not retry {old.pk} ({old.task}): {error}")
        self.stdout.write(f"{len(outcome.retried)} retried, {len(outcome.errors)} could not be retried")
        if outcome.errors:
            raise CommandError(f"{len(outcome.errors)} job(s) could not be retried")

    def cancel(self, *, job_id: str, **_: Any) -> None:
        job = self._job(job_id)
        try:
            services.job_cancel(job=job)
        except IllegalTransition as exc:
            raise CommandError(f"job {job.pk} is {job.status}; a finished job cannot be cancelled") from exc
        if job.status == JobStatus.RUNNING:
            self.stdout.write(f"cancel requested: {job.pk} ({job.task}) is running and was asked to stop; it stops "
                              "at its next progress check (a job that never checks runs to its end)")
        else:
            self.stdout.write(f"cancelled {job.pk} ({job.task})")

    # --- purge / redrive --------------------------------------------------------------------------------
    def purge(self, *, queue: str, yes: bool, **_: Any) -> None:
        queue = self._queue(queue)
        try:
            [before] = broker_ops.queue_stats([queue])
        except Exception as exc:  # checked before the ledger changes, so nothing is half-done
            raise CommandError(f"the broker is unreachable ({exc}); nothing was purged") from exc
        ready = operations.ready_count(queue=queue)
        self._confirm(f"Purge queue {queue}: cancel {ready} READY job(s) and delete {before.waiting} waiting and "
                      f"{before.delayed} delayed message(s)?", yes=yes)
        try:
            outcome = operations.queue_purge(queue=queue)
        except Exception as exc:  # the ledger part is done: say so
            raise CommandError(f"the READY jobs of {queue} were cancelled, but deleting its messages failed ({exc}); "
                               "workers drop those messages when they get them") from exc
        messages = outcome.messages
        self.stdout.write(f"purged {queue}: {outcome.cancelled} job(s) cancelled, {messages.waiting} waiting and "
                          f"{messages.delayed} delayed message(s) deleted")
        if messages.in_flight_left:
            self.stdout.write(f"{messages.in_flight_left} message(s) held by workers were left alone: a worker "
                              "drops the message of a cancelled job instead of running it")
        if outcome.republish:
            self.stdout.write(f"{outcome.republish} job(s) became READY during the purge and will be published "
                              "again by the relay")

    def redrive(self, *, queue: str | None, yes: bool, **_: Any) -> None:
        queues = [self._queue(queue)] if queue else None
        try:
            stats = broker_ops.queue_stats(queues)
        except Exception as exc:
            raise CommandError(f"the broker is unreachable ({exc})") from exc
        dead = {row.queue: row.dead for row in stats if row.dead}
        if not dead:
            self.stdout.write("the dead-letter queue is empty; nothing to redrive")
            return
        where = ", ".join(f"{count} in {name}" for name, count in dead.items())
        self._confirm(f"Redrive {sum(dead.values())} dead letter(s) ({where})?", yes=yes)
        outcome = operations.dead_letters_redrive(queues=list(dead))
        for old, new in outcome.retried:
            self.stdout.write(f"retried {old.pk} ({old.task}) as {new.pk}")
        for error in outcome.errors:
            self.stderr.write(f"not redriven: {error}")
        self.stdout.write(f"{len(outcome.retried)} retried, {outcome.raw} re-enqueued raw (not in the catalogue), "
                          f"{outcome.stale} stale removed (job no longer failed, or unknown), "
                          f"{len(outcome.errors)} left in the dead-letter queue")
        if outcome.errors:
            raise CommandError(f"{len(outcome.errors)} dead letter(s) could not be redriven")

    # --- stats ------------------------------------------------------------------------------------------
    def stats(self, *, json: bool, **_: Any) -> None:
        now = timezone.now()
        broker_error = None
        try:
            queues = [
                {"queue": q.queue, "waiting": q.waiting, "in_flight": q.in_flight, "delayed": q.delayed,
                 "dead": q.dead, "oldest_age": q.oldest_age}
                for q in broker_ops.queue_stats()
            ]
        # The broker away (Redis, or RabbitMQ's BrokerUnavailable, an OSError): the ledger's part still shows.
        except (redis.exceptions.RedisError, OSError, broker_ops.BrokerNotInspectable) as exc:
            queues, broker_error = [], f"{type(exc).__name__}: {exc}"
        workers = [
            {"host": p.host, "pid": p.pid, "queues": p.queues, "threads": p.threads, "running": p.running,
             "rss_bytes": p.rss_bytes, "heartbeat_at": iso(p.heartbeat_at)}
            for p in registry.alive(ProcessKind.WORKER).order_by("host", "pid")
        ]
        scheduler = operations.scheduler_last_beat()
        alive_ids = set(registry.alive(ProcessKind.SCHEDULER).values_list("pk", flat=True))
        data: dict[str, Any] = {
            "broker": {"reachable": broker_error is None, "error": broker_error},
            "queues": queues,
            "ledger": operations.ledger_counts(),
            "last_hour": operations.last_hour_by_queue(now=now),
            "workers": workers,
            "scheduler": None if scheduler is None else {
                "host": scheduler.host, "pid": scheduler.pid, "active": scheduler.active,
                "alive": scheduler.pk in alive_ids, "heartbeat_at": iso(scheduler.heartbeat_at),
                "age": round((now - scheduler.heartbeat_at).total_seconds(), 1)},
        }
        if json:
            self.stdout.write(_dumps(data))
            return
        self._stats_text(data)

    def _stats_text(self, data: dict[str, Any]) -> None:
        self.stdout.write("Queues (broker)")
        if data["broker"]["reachable"]:
            table = [["QUEUE", "WAITING", "IN FLIGHT", "DELAYED", "DEAD", "OLDEST"]]
            for q in data["queues"]:
                age = "-" if q["oldest_age"] is None else f"{q['oldest_age']:.0f}s"
                table.append([q["queue"], str(q["waiting"]), str(q["in_flight"]), str(q["delayed"]), str(q["dead"]),
                              age])
            self._table(table)
        else:
            self.stdout.write(f"  the broker is unreachable: {data['broker']['error']}")
        self.stdout.write("\nLedger")
        self.stdout.write("  " + "  ".join(f"{status} {count}" for status, count in data["ledger"].items()))
        self.stdout.write("\nLast hour")
        table = [["QUEUE", "FINISHED", "FAILED"]]
        table += [[name, str(row["finished"]), str(row["failed"])] for name, row in data["last_hour"].items()]
        self._table(table)
        self.stdout.write(f"\nWorkers alive: {len(data['workers'])}")
        if data["workers"]:
            table = [["HOST", "PID", "QUEUES", "THREADS", "RUNNING", "RSS"]]
            for w in data["workers"]:
                running = ", ".join(f"{r.get('task')} {r.get('id')}" for r in w["running"]) or "-"
                table.append([w["host"], str(w["pid"]), ",".join(w["queues"]), str(w["threads"]), running,
                              f"{w['rss_bytes'] / 1048576:.0f} MiB"])
            self._table(table)
        scheduler = data["scheduler"]
        if scheduler is None:
            self.stdout.write("\nScheduler: never seen")
        else:
            state = ("alive" if scheduler["alive"] else "gone") + (", holds the lease" if scheduler["active"] else "")
            self.stdout.write(f"\nScheduler: last beat {scheduler['age']:.0f}s ago ({scheduler['host']}:"
                              f"{scheduler['pid']}, {state})")

    def _table(self, rows: list[list[str]]) -> None:
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        for row in rows:
            self.stdout.write("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def _local(value: datetime | None) -> str:
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M:%S") if value else "-"


def _username(job: Job) -> str:
    return job.requested_by.get_username() if job.requested_by else "-"


def _job_json(job: Job, *, full: bool = False) -> dict[str, Any]:
    data = job_to_json(job, show_traceback=full)
    data.pop("url", None)
    data["requested_by"] = job.requested_by.get_username() if job.requested_by else None
    if full:
        data.update({"worker": job.worker, "heartbeat_at": iso(job.heartbeat_at),
                     "cancel_requested_at": iso(job.cancel_requested_at), "dismissed_at": iso(job.dismissed_at)})
    return data


def _brief(job: Job) -> dict[str, Any]:
    return {"id": str(job.pk), "status": job.status, "created_at": iso(job.created_at)}


def _retry_chain(job: Job, *, limit: int = 100) -> tuple[list[Job], list[Job]]:
    """The jobs this one retries (nearest first), and the retries that followed it (in order)."""
    ancestors: list[Job] = []
    current = job
    while current.retry_of_id and len(ancestors) < limit:
        parent = Job.objects.filter(pk=current.retry_of_id).first()
        if parent is None:
            break
        ancestors.append(parent)
        current = parent
    descendants: list[Job] = []
    current = job
    while len(descendants) < limit:
        child = Job.objects.filter(retry_of=current).order_by("created_at").first()
        if child is None:
            break
        descendants.append(child)
        current = child
    return ancestors, descendants


def _parse_time(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise CommandError(f"--since {value!r} is not an ISO date or time (e.g. 2026-11-23T08:00)") from None
    return timezone.make_aware(parsed) if timezone.is_naive(parsed) else parsed
