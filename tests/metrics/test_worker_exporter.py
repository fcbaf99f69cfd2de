"""GREENROOM_WORKER_METRICS_PORT: a worker process serves its own counters (workers apart from the web)."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request

import pytest

from tests.support.runtime import wait_status
from tests.support.workers import wait_for, worker_program
from workers import services
from workers.models import JobStatus


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _scrape(port: int, token: str | None = None) -> str:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(f"http://127.0.0.1:{port}/metrics", headers=headers)
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.read().decode()


def _succeeded(text: str) -> float:
    for line in text.splitlines():
        if line.startswith('greenroom_jobs_succeeded_total{') and 'task="diagnostics.noop"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_a_worker_process_serves_its_own_job_counters_behind_the_metrics_token(start_workers):
    port = _free_port()
    start_workers(worker_program("worker", queues=["interactive"], GREENROOM_WORKER_METRICS_PORT=port,
                                 GREENROOM_METRICS_TOKEN="s3cret", GREENROOM_METRICS_DIR=""))
    before = wait_for(lambda: _scrape_or_none(port), timeout=30, what="the worker's exporter")
    assert _succeeded(before) == 0
    jobs = [services.job_enqueue(task="diagnostics.noop") for _ in range(3)]
    for job in jobs:
        wait_status(job, JobStatus.SUCCESSFUL, timeout=30)
    assert _succeeded(_scrape(port, "s3cret")) == 3
    with pytest.raises(urllib.error.HTTPError) as refused:
        _scrape(port, "wrong")
    assert refused.value.code == 403
    refused.value.close()


def _scrape_or_none(port: int) -> str | None:
    try:
        return _scrape(port, "s3cret")
    except OSError:
        return None
