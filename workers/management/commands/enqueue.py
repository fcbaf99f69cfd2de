"""`manage.py enqueue <task> --params '{...}' [--wait]`: enqueue a job from the shell.

With --wait it draws a live progress bar until the job ends, prints the result or the error, and
exits non-zero unless the job succeeded (1 failed, 2 cancelled, 3 timed out waiting).
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from workers import services
from workers.errors import DuplicateJob, InvalidParams, UnknownTask
from workers.models import Job, JobStatus

POLL_INTERVAL = 0.25
EXIT_CODES = {JobStatus.SUCCESSFUL: 0, JobStatus.FAILED: 1, JobStatus.CANCELLED: 2}
EXIT_WAIT_TIMEOUT = 3


def progress_line(job: Job, width: int) -> str:
    """One terminal line: status, bar, percent, message."""
    bar_width = max(10, min(40, width - 50))
    if job.progress_total:
        filled = int(bar_width * min(job.progress_done, job.progress_total) / job.progress_total)
        bar = "█" * filled + "░" * (bar_width - filled)
        figures = f"{job.percent:5.1f}% {job.progress_done}/{job.progress_total}"
    else:
        bar, figures = "·" * bar_width, f"{job.progress_done}"
    line = f"{job.status:<10} {bar} {figures} {job.progress_message}"
    return line[: width - 1]


class Command(BaseCommand):
    help = "Enqueue a job by name; --wait shows its progress and exits non-zero if it fails."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("task", help="the job's name, e.g. diagnostics.sleep")
        parser.add_argument("--params", default="{}", help="the job's parameters as a JSON object")
        parser.add_argument("--unique-key", default=None, help="at most one active job per key")
        parser.add_argument("--wait", action="store_true", help="follow the job until it ends")
        parser.add_argument("--timeout", type=float, default=None, help="with --wait: give up after N seconds")

    def handle(self, *args: Any, task: str, params: str, unique_key: str | None, wait: bool,
               timeout: float | None, **options: Any) -> None:
        try:
            parsed = json.loads(params)
        except ValueError as exc:  # JSONDecodeError, or an integer over Python's 4300-digit limit
            raise CommandError(f"--params is not valid JSON: {exc}") from exc
        try:
            job = services.job_enqueue(task=task, params=parsed, unique_key=unique_key)
        except UnknownTask as exc:
            raise CommandError(str(exc)) from exc
        except InvalidParams as exc:
            details = "; ".join(f"{e['field']}: {e['message']}" for e in exc.errors)
            raise CommandError(f"{exc}: {details}" if details else str(exc)) from exc
        except DuplicateJob as exc:
            raise CommandError(f"{exc} (job {exc.existing_id})") from exc
        job.refresh_from_db()
        self.stdout.write(f"{job.pk} {job.task} → queue {job.queue}")
        if job.status == JobStatus.READY and job.enqueued_at is None:
            self.stderr.write(
                "warning: the broker is unreachable; the job is saved and will be published when it is back"
            )
        if not wait:
            return
        sys.exit(self._follow(job, timeout))

    def _follow(self, job: Job, timeout: float | None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        interactive = self.stdout.isatty()
        last = ""
        while True:
            job.refresh_from_db()
            width = shutil.get_terminal_size((100, 20)).columns
            line = progress_line(job, width)
            if interactive:
                self.stdout.write("\r\x1b[2K" + line, ending="")
                self.stdout.flush()
            elif line != last:
                self.stdout.write(line)
            last = line
            if job.is_finished:
                break
            if deadline is not None and time.monotonic() > deadline:
                self.stdout.write("")
                self.stderr.write(f"gave up waiting after {timeout} s; the job goes on")
                return EXIT_WAIT_TIMEOUT
            time.sleep(POLL_INTERVAL)
        if interactive:
            self.stdout.write("")
        if job.status == JobStatus.SUCCESSFUL:
            self.stdout.write(json.dumps(job.result))
        elif job.error_class:
            self.stderr.write(f"{job.error_class}: {job.error_message}")
        return EXIT_CODES[JobStatus(job.status)]
