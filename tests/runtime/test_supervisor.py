"""The supervisor: a graceful stop lets running jobs finish (alive in the ledger meanwhile); no orphans."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import psutil
import pytest

from tests.support.runtime import lines, row, wait_running, wait_status, worker_of, worker_pid
from tests.support.workers import wait_for, worker_program
from workers import services
from workers.models import JobStatus

# Both workers presume a RUNNING job dead after 2 s without a heartbeat; the stopping one beats
# every half second.
FAST_RECONCILER = {"GREENROOM_STALE_AFTER": 2, "GREENROOM_HEARTBEAT_INTERVAL": 0.5, "GREENROOM_RELAY_INTERVAL": 0.5}


def test_stopping_a_worker_lets_its_running_job_finish_without_a_second_run(start_workers):
    # Given a worker running a 5 s job that makes no progress calls (only heartbeats show it alive)
    leaving = start_workers(worker_program("leaving", queues=["default"], threads=1, **FAST_RECONCILER))
    job = services.job_enqueue(task="diagnostics.sleep", params={"seconds": 5, "blocking": True})
    pid = worker_of(wait_running(job, timeout=20))
    assert pid == worker_pid(leaving, "leaving")
    # And another worker whose reconciler would take the job over if its heartbeat stopped
    start_workers(worker_program("staying", queues=["default"], threads=1, **FAST_RECONCILER))

    # When the first worker's supervisor stops it (SIGTERM, as on Ctrl-C or a deploy)
    stopping = threading.Thread(target=leaving.stop)
    stopping.start()
    # Then the job finishes where it was, once: its heartbeat went on during the shutdown
    done = wait_status(job, timeout=30)
    assert done.status == JobStatus.SUCCESSFUL, (done.status, done.error_message)
    assert done.attempts == 1
    assert worker_of(done) == pid
    # And the worker then exits cleanly (once, not killed by a second SIGTERM)
    stopping.join(30)
    assert not stopping.is_alive()
    assert leaving.program("leaving").process.returncode == 0
    assert row(job).attempts == 1


@pytest.mark.chaos
def test_worker_orphaned_by_its_killed_main_process_finishes_its_job_and_stops(start_workers, tmp_path: Path):
    # Given a worker running a 3 s job
    pool = start_workers(worker_program("orphaned", queues=["default"], threads=1))
    record = tmp_path / "orphan.txt"
    job = services.job_enqueue(task="testing.record", params={"path": str(record), "seconds": 3})
    child = worker_of(wait_running(job, timeout=20))
    program = pool.program("orphaned")
    # When only its Dramatiq main process is SIGKILLed (its worker process is left without a parent)
    os.kill(program.process.pid, signal.SIGKILL)
    # Then the supervisor starts a fresh worker
    wait_for(lambda: program.restarts >= 1, timeout=15, what="the supervisor to restart the worker")
    assert worker_pid(pool, "orphaned") != child
    # And the orphan is asked to stop instead of consuming on unsupervised: it finishes its job and exits
    wait_for(lambda: not psutil.pid_exists(child), timeout=20, what="the orphaned worker process to exit")
    done = wait_status(job, timeout=10)
    assert done.status == JobStatus.SUCCESSFUL
    assert done.attempts == 1
    assert lines(record) == ["start 1", "done"]
