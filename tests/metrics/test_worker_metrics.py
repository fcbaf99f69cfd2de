"""A real worker process records its counters in the metrics directory; /metrics in this process sums them."""

from __future__ import annotations

import os

import pytest

from tests.metrics.conftest import Scrape
from tests.support.runtime import wait_status
from tests.support.workers import wait_for, worker_program
from workers import services

DEADLINE = 60.0


@pytest.fixture
def metrics_dir(tmp_path, settings):
    """A fresh multiprocess directory that this process's /metrics reads."""
    directory = tmp_path / "metrics"
    directory.mkdir()
    settings.GREENROOM_METRICS_DIR = str(directory)
    return directory


def test_worker_counters_and_histograms_reach_the_web_process(start_workers, broker, metrics_dir, scrape):
    # Given a worker process told only GREENROOM_METRICS_DIR (its settings must export
    # PROMETHEUS_MULTIPROC_DIR before prometheus_client is imported, or nothing reaches the directory)
    start_workers(worker_program("worker", queues=["interactive", "default"], GREENROOM_METRICS_DIR=metrics_dir))
    before = scrape()
    assert before.count("greenroom_jobs_succeeded_total", task="diagnostics.noop", queue="interactive") == 0
    assert before.count("greenroom_job_duration_seconds_count", queue="interactive") == 0

    # When it runs two successes, one permanent failure and one transient failure that uses its 3 retries
    noops = [services.job_enqueue(task="diagnostics.noop") for _ in range(2)]
    permanent = services.job_enqueue(task="diagnostics.fail", params={"kind": "permanent"})
    transient = services.job_enqueue(task="diagnostics.fail", params={"kind": "transient"})
    for job in [*noops, permanent, transient]:
        wait_status(job, timeout=DEADLINE)

    # Then /metrics shows the worker's counts (the row moves just before the counter: poll)
    def settled() -> Scrape | None:
        after = scrape()
        done = after.count("greenroom_jobs_failed_total", task="diagnostics.fail", queue="default") == 2
        return after if done and after.count("greenroom_job_duration_seconds_count", queue="default") == 5 else None

    after = wait_for(settled, timeout=DEADLINE, what="the worker's failure counts in /metrics")
    assert after.count("greenroom_jobs_started_total", task="diagnostics.noop", queue="interactive") == 2
    assert after.count("greenroom_jobs_succeeded_total", task="diagnostics.noop", queue="interactive") == 2
    assert after.count("greenroom_jobs_started_total", task="diagnostics.fail", queue="default") == 5
    assert after.count("greenroom_jobs_retried_total", task="diagnostics.fail", queue="default") == 3
    assert after.count("greenroom_jobs_succeeded_total", task="diagnostics.fail", queue="default") == 0
    assert after.count("greenroom_job_duration_seconds_count", queue="interactive") == 2
    assert after.count("greenroom_job_queue_wait_seconds_count", queue="interactive") == 2
    assert after.count("greenroom_job_queue_wait_seconds_count", queue="default") == 5
    assert after.count("greenroom_job_duration_seconds_bucket", queue="interactive", le="+Inf") == 2
    # ...written by the worker process into the shared directory, one file per process
    assert any(name.startswith("counter_") for name in os.listdir(metrics_dir))

    # And the dead-letter gauge is what Redis holds: the two failed jobs' messages
    assert broker.client.zcard("dramatiq:default.XQ") == 2
    assert after.value("greenroom_queue_dead_letters", queue="default") == 2
    assert after.value("greenroom_broker_up") == 1


def test_live_worker_counts_for_the_queues_it_consumes(start_workers, metrics_dir, scrape):
    # Given a worker process on the interactive queue only
    start_workers(worker_program("worker", queues=["interactive"], GREENROOM_METRICS_DIR=metrics_dir))
    # Then, once it has beaten, it counts for interactive and not for batch
    seen = wait_for(lambda: (s := scrape()).value("greenroom_workers_alive", queue="interactive") == 1 and s,
                    timeout=DEADLINE, what="the worker in greenroom_workers_alive")
    assert seen.value("greenroom_workers_alive", queue="batch") == 0
    assert seen.value("greenroom_worker_processes_alive") == 1
