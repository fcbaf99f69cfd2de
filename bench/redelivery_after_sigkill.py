#!/usr/bin/env python
"""Benchmark: how long a job whose worker was SIGKILLed waits before it runs again.

    .venv/bin/python bench/redelivery_after_sigkill.py [--runs 3] [--modes greenroom,stock] [--cap 150]

Self-contained: a temporary SQLite database and var/ directory, and a private redis-server on a free
port (never the machine's own Redis), all removed afterwards.

One run: a worker (`python -m dramatiq --processes 1 --threads 2 django_dramatiq.setup workers.jobs
--queues default`, kept alive by `workers.supervisor.Supervisor`, as `runstack` keeps its workers)
starts `diagnostics.sleep {"seconds": 8}`; once the job is RUNNING the worker's whole process group
gets SIGKILL; the supervisor restarts it; the benchmark polls the ledger row until it is RUNNING
again with `attempts == 2` and prints the time from the kill to the second start (the row's
`started_at`, written by the claim). The job is then cancelled and the next run starts.

Two things bring such a job back, and each run says which one did:
- the broker: Dramatiq's Redis maintenance moves a dead worker's unacked messages back to the queue
  once its heartbeat is older than `heartbeat_timeout`, on a random `maintenance_chance` in 1e6 of
  the commands it receives (GREENROOM_REDIS_HEARTBEAT_TIMEOUT_MS / _MAINTENANCE_CHANCE);
- the ledger: every worker process's reconciler puts a RUNNING row whose heartbeat is older than
  GREENROOM_STALE_AFTER back to READY, and the outbox relay publishes it again ("reconciler").

Modes (--modes, comma-separated; `all` for every one):
- greenroom:        Greenroom's defaults (heartbeat timeout 15 s, maintenance 10 %, reconciler on);
- stock:            Dramatiq's stock broker settings (60 s, 0.1 %), reconciler on;
- greenroom-broker: Greenroom's broker settings with the reconciler off (the broker path alone);
- stock-broker:     stock broker settings with the reconciler off: can take minutes, so a run
                    that exceeds --cap seconds is reported as "> cap".
The reconciler is turned off with GREENROOM_RELAY_INTERVAL=86400 (it then runs once, at boot).

Prints figures only: no assertion on timing. Worker logs go to a file in the temporary directory
(--keep shows where and keeps it).
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent
JOB_SECONDS = 8
STOCK = {"GREENROOM_REDIS_HEARTBEAT_TIMEOUT_MS": "60000", "GREENROOM_REDIS_MAINTENANCE_CHANCE": "1000"}
NO_RECONCILER = {"GREENROOM_RELAY_INTERVAL": "86400"}
MODES: dict[str, dict[str, str]] = {
    "greenroom": {},
    "stock": dict(STOCK),
    "greenroom-broker": dict(NO_RECONCILER),
    "stock-broker": {**STOCK, **NO_RECONCILER},
}
POLL = 0.05  # seconds between two looks at the row


def configure(tmp: Path, redis_url: str) -> None:
    """Environment of this process and (inherited through the supervisor) of the workers."""
    os.environ["DJANGO_SETTINGS_MODULE"] = "project.settings"
    os.environ["DATABASE_URL"] = f"sqlite:///{tmp / 'bench.sqlite3'}"
    os.environ["GREENROOM_VAR_DIR"] = str(tmp / "var")
    os.environ["GREENROOM_BROKER_URL"] = redis_url
    os.environ["PYTHONPATH"] = str(BASE_DIR)
    for name in (*STOCK, *NO_RECONCILER, "dramatiq_worker_timeout"):
        os.environ.pop(name, None)  # each mode sets its own; the rest are Greenroom's defaults
    sys.path.insert(0, str(BASE_DIR))


def worker_program(log: Path, env: dict[str, str]) -> Any:
    from workers.supervisor import Program

    argv = [sys.executable, "-m", "dramatiq", "--path", str(BASE_DIR), "--processes", "1", "--threads", "2",
            "django_dramatiq.setup", "workers.jobs", "--queues", "default"]
    # `exec` keeps the Dramatiq main process as the supervised pid (and group leader); the shell
    # only sends the worker's log to a file instead of this benchmark's output.
    shell = f"exec {shlex.join(argv)} >>{shlex.quote(str(log))} 2>&1"
    return Program(name="worker", argv=["/bin/sh", "-c", shell], env=env)


def wait_for(predicate: Any, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(POLL)
    return None


def one_run(program: Any, *, cap: float) -> dict[str, Any]:
    """Enqueue, kill the worker under the running job, measure until the job runs again."""
    from django.utils import timezone

    from workers import services
    from workers.models import Job, JobStatus

    job = services.job_enqueue(task="diagnostics.sleep", params={"seconds": JOB_SECONDS})
    first = wait_for(lambda: Job.objects.filter(pk=job.pk, status=JobStatus.RUNNING, attempts=1).first(), 60)
    if first is None:
        raise RuntimeError("the job did not start within 60 s; see the worker log (--keep)")
    time.sleep(1.0)  # let it run a little (progress written, heartbeat fresh)

    process = program.process
    killed_at = timezone.now()
    killed_mono = time.monotonic()
    os.killpg(process.pid, signal.SIGKILL)

    def running_again() -> Job | None:
        return Job.objects.filter(pk=job.pk, status=JobStatus.RUNNING, attempts__gte=2).first()

    again = wait_for(running_again, cap)
    seen = time.monotonic() - killed_mono
    result: dict[str, Any] = {"job": job.pk, "timed_out": again is None}
    if again is None:
        result.update(seconds=None, seen=seen, path="-")
    else:
        assert again.started_at is not None and again.enqueued_at is not None
        result.update(
            seconds=(again.started_at - killed_at).total_seconds(),
            seen=seen,
            # The relay republishes with a fresh enqueued_at; a broker redelivery keeps the old one.
            path="reconciler" if again.enqueued_at > killed_at else "broker",
            attempts=again.attempts,
        )
    # Clean up: stop the job (at its next progress check) or, if it never came back, cancel it.
    row = Job.objects.get(pk=job.pk)
    if not row.is_finished:
        services.job_cancel(job=row)
    wait_for(lambda: Job.objects.get(pk=job.pk).is_finished, 20)
    return result


def run_mode(
    name: str, overrides: dict[str, str], *, runs: int, cap: float, tmp: Path, keep: bool
) -> list[dict[str, Any]]:
    import dramatiq

    from workers.models import Job
    from workers.supervisor import Supervisor

    dramatiq.get_broker().client.flushdb()
    Job.objects.all().delete()
    log = tmp / f"worker-{name}.log"
    program = worker_program(log, overrides)

    def say(line: str) -> None:
        with log.open("a") as fh:
            fh.write(f"[supervisor] {line}\n")

    supervisor = Supervisor([program], stop_timeout=20, say=say)
    supervisor.start()
    thread = threading.Thread(target=supervisor.run, daemon=True)
    thread.start()
    results = []
    try:
        settings_text = ", ".join(f"{k}={v}" for k, v in overrides.items()) or "Greenroom defaults"
        print(f"\n== {name}: {settings_text}")
        for i in range(1, runs + 1):
            r = one_run(program, cap=cap)
            results.append(r)
            if r["timed_out"]:
                print(f"  run {i}: > {cap:.0f} s (not running again within the cap)")
            else:
                print(f"  run {i}: {r['seconds']:6.1f} s  (seen by polling after {r['seen']:.1f} s; "
                      f"brought back by: {r['path']}; attempts {r['attempts']})")
        times = [r["seconds"] for r in results if not r["timed_out"]]
        capped = sum(r["timed_out"] for r in results)
        if capped * 2 >= len(results):
            print(f"  median: > {cap:.0f} s ({capped} of {len(results)} runs over the cap)")
        elif capped:
            median = statistics.median(times + [float("inf")] * capped)
            print(f"  median: {median:.1f} s ({capped} run(s) over the cap)")
        else:
            print(f"  median: {statistics.median(times):.1f} s  (min {min(times):.1f}, max {max(times):.1f})")
    finally:
        supervisor.stop()
        thread.join(60)
        if keep:
            print(f"  worker log: {log}")
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="kills per mode (default 3)")
    parser.add_argument("--modes", default="greenroom,stock", help=f"comma-separated: {', '.join(MODES)} or all")
    parser.add_argument("--cap", type=float, default=150.0, help="give up on one run after this many seconds")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (worker logs)")
    args = parser.parse_args()
    modes = list(MODES) if args.modes == "all" else [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        parser.error(f"unknown mode(s): {', '.join(unknown)}")

    tmp = Path(tempfile.mkdtemp(prefix="greenroom-bench-redelivery-"))
    sys.path.insert(0, str(BASE_DIR))
    from tests.support.redis_server import RedisServer

    redis_server = RedisServer()
    try:
        redis_server.start()
        configure(tmp, redis_server.url)
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connection

        call_command("migrate", interactive=False, verbosity=0)
        print(f"SIGKILL redelivery benchmark — {datetime.now():%Y-%m-%d %H:%M}, Python {platform.python_version()}, "
              f"{os.cpu_count()} CPUs, SQLite, private redis-server on port {redis_server.port}")
        print(f"job: diagnostics.sleep {{\"seconds\": {JOB_SECONDS}}}; worker: 1 process x 2 threads, queue default; "
              "time = kill -> second claim (row's started_at)")
        for name in modes:
            run_mode(name, MODES[name], runs=args.runs, cap=args.cap, tmp=tmp, keep=args.keep)
        connection.close()
    finally:
        redis_server.remove()
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
