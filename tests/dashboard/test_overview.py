"""The overview: queue numbers from the broker, the last hour from the ledger, live workers, the chart."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import dramatiq
import pytest
from django.utils import timezone

from project.broker import GreenroomRedisBroker
from tests.dashboard.conftest import EventReader, page
from tests.support.redis_server import free_port
from workers import services
from workers.models import FleetProcess, JobStatus

FIELDS = ["waiting", "in_flight", "delayed", "dead", "oldest_age", "per_minute", "failure_rate", "workers"]


def cells(doc, queue: str) -> dict[str, str]:
    row = doc.find("tr", data_queue=queue)
    return {name: row.find(data_field=name).text.strip() for name in FIELDS}


def beat(name: str, *, queues: list[str], age: float = 0.0, kind: str = "worker") -> FleetProcess:
    return FleetProcess.objects.create(id=name, kind=kind, host="host", pid=len(name), queues=queues, threads=2,
                                       heartbeat_at=timezone.now() - timedelta(seconds=age))


@pytest.fixture
def unreachable_broker() -> Iterator[None]:
    """The configured broker swapped for one whose Redis is not there (connection refused)."""
    original = dramatiq.get_broker()
    dramatiq.set_broker(GreenroomRedisBroker(url=f"redis://127.0.0.1:{free_port()}/0"))
    try:
        yield
    finally:
        dramatiq.set_broker(original)


def test_the_overview_shows_one_row_per_latency_class_with_the_brokers_numbers(staff_client, broker):
    # Given two jobs waiting in the interactive queue (no worker runs them) and one in batch
    for _ in range(2):
        services.job_enqueue(task="diagnostics.noop")
    services.job_enqueue(task="maintenance.prune_jobs")
    # When an operator opens the overview
    doc = page(staff_client.get("/dashboard/"))
    # Then each latency class has its row, with the waiting counts the broker holds
    assert [row.get("data-queue") for row in doc.find_all("tr", data_queue=True)] == ["interactive", "default",
                                                                                       "batch"]
    interactive = cells(doc, "interactive")
    assert interactive["waiting"] == "2"
    assert interactive["in_flight"] == "0"
    assert interactive["dead"] == "0"
    assert interactive["oldest_age"].endswith(" s")
    assert cells(doc, "default")["waiting"] == "0"
    assert cells(doc, "default")["oldest_age"] == "—"


def test_throughput_failure_rate_and_workers_come_from_the_last_hour_and_the_registry(staff_client, make_job,
                                                                                     broker):
    # Given three jobs finished in the default queue in the last hour, one of them failed, one long ago
    now = timezone.now()
    for status in (JobStatus.SUCCESSFUL, JobStatus.SUCCESSFUL, JobStatus.FAILED):
        make_job(queue="default", status=status, finished_at=now - timedelta(minutes=5))
    make_job(queue="default", status=JobStatus.FAILED, finished_at=now - timedelta(hours=3))
    # and two live worker processes (one serving default) and one that stopped beating
    beat("a", queues=["interactive", "default"])
    beat("b", queues=["batch"])
    beat("c", queues=["default"], age=3600)
    # When the overview is opened
    doc = page(staff_client.get("/dashboard/"))
    # Then the default row shows 3 jobs over 60 minutes, 1 in 3 failed, and one live worker
    default = cells(doc, "default")
    assert default["per_minute"] == "0.05"
    assert default["failure_rate"] == "33.3 %"
    assert default["workers"] == "1"
    assert cells(doc, "interactive")["failure_rate"] == "—"
    assert doc.find(data_testid="workers-alive").text.strip() == "2"
    # and the chart has a line per queue and a red bar for the minute with the failure
    chart = doc.find("svg", id="throughput-chart")
    assert {line.get("data-series") for line in chart.find_all("polyline")} == {"interactive", "default", "batch"}
    assert all(len(line.get("points").split()) == 60 for line in chart.find_all("polyline"))
    bars = chart.find("g", data_series="failures").find_all("rect")
    assert len(bars) == 1 and bars[0].text == "1 failed"


def test_an_unreachable_broker_shows_as_such_instead_of_numbers(staff_client, make_job, unreachable_broker):
    make_job(queue="default", status=JobStatus.SUCCESSFUL, finished_at=timezone.now())
    response = staff_client.get("/dashboard/")
    doc = page(response)
    assert doc.find(data_testid="broker-status").text == "broker unreachable"
    default = cells(doc, "default")
    assert default["waiting"] == default["dead"] == "broker unreachable"
    # the ledger's numbers are still there
    assert default["per_minute"] == "0.02" and default["failure_rate"] == "0.0 %"


def test_the_overview_stream_sends_the_same_numbers_and_follows_changes(staff_client, open_streams, broker):
    # Given one waiting job and an open overview stream
    services.job_enqueue(task="diagnostics.noop")
    response = staff_client.get("/dashboard/events/")
    assert response["Content-Type"] == "text/event-stream"
    reader = EventReader(response)
    open_streams.append(reader)
    first = reader.next_event()
    assert first["event"] == "overview"
    rows = {row["queue"]: row for row in first["data"]["queues"]}
    assert rows["interactive"]["waiting"] == 1
    assert rows["interactive"]["cells"]["waiting"] == "1"
    assert first["data"]["broker"] == {"ok": True, "error": ""}
    # When another job is enqueued, the next event (about 2 s later) shows it
    services.job_enqueue(task="diagnostics.noop")
    second = reader.next_event()
    assert {row["queue"]: row for row in second["data"]["queues"]}["interactive"]["waiting"] == 2
