"""Gauges read at scrape time: the broker's queues, the ledger's active jobs, the fleet registry."""

from __future__ import annotations

import pytest
from django.db import transaction

from project.broker import redis_client
from tests.support.redis_server import free_port
from workers import catalogue, registry, services
from workers.models import FleetProcess, ProcessKind


@pytest.fixture(autouse=True)
def single_process(settings):
    settings.GREENROOM_METRICS_DIR = ""


def test_queue_gauges_match_what_redis_holds(transactional_db, broker, scrape):
    # Given three jobs waiting in the default queue (no worker runs) and one delayed message
    for seconds in (1, 2, 3):
        services.job_enqueue(task="diagnostics.sleep", params={"seconds": seconds})
    spec = catalogue.get("diagnostics.sleep")
    assert spec is not None and spec.actor is not None
    spec.actor.send_with_options(args=("00000000-0000-0000-0000-000000000000",), delay=600_000)
    # When /metrics is scraped
    seen = scrape()
    # Then each gauge is what Redis says
    assert broker.client.llen("dramatiq:default") == 3
    assert seen.value("greenroom_queue_depth", queue="default") == 3
    assert broker.client.hlen("dramatiq:default.DQ.msgs") == 1
    assert seen.value("greenroom_queue_delayed", queue="default") == 1
    assert seen.value("greenroom_queue_in_flight", queue="default") == 0
    assert seen.value("greenroom_queue_dead_letters", queue="default") == 0
    assert seen.value("greenroom_queue_depth", queue="batch") == 0
    assert seen.value("greenroom_queue_oldest_message_age_seconds", queue="batch") == 0
    assert seen.value("greenroom_queue_oldest_message_age_seconds", queue="default") >= 0
    assert seen.value("greenroom_broker_up") == 1
    # ...and the ledger counts the three READY jobs
    assert seen.value("greenroom_jobs", queue="default", status="READY") == 3
    assert seen.value("greenroom_jobs", queue="default", status="RUNNING") == 0
    assert seen.value("greenroom_database_up") == 1


def test_broker_down_reports_broker_up_0_and_leaves_queue_gauges_out(transactional_db, broker, scrape, monkeypatch):
    # Given a broker whose Redis does not answer (nothing listens on that port)
    monkeypatch.setattr(broker, "client", redis_client(f"redis://127.0.0.1:{free_port()}/0"))
    # When /metrics is scraped
    seen = scrape()
    # Then the scrape still answers, says the broker is down and has no queue gauges
    assert seen.value("greenroom_broker_up") == 0
    assert not {"greenroom_queue_depth", "greenroom_queue_dead_letters"} & seen.names()
    # ...while the ledger's gauges are there
    assert seen.value("greenroom_jobs", queue="default", status="READY") == 0


def test_enqueued_counter_counts_committed_jobs_only(transactional_db, broker, scrape):
    # Given the count before
    before = scrape().count("greenroom_jobs_enqueued_total", task="diagnostics.noop", queue="interactive")
    # When one job is enqueued and another is rolled back with its transaction
    services.job_enqueue(task="diagnostics.noop")
    with pytest.raises(RuntimeError), transaction.atomic():
        services.job_enqueue(task="diagnostics.noop")
        raise RuntimeError("roll back")
    # Then only the committed one counts
    after = scrape().count("greenroom_jobs_enqueued_total", task="diagnostics.noop", queue="interactive")
    assert after == before + 1


def test_enqueued_counter_counts_a_committed_bulk_enqueue_once_per_job(transactional_db, broker, scrape):
    before = scrape().count("greenroom_jobs_enqueued_total", task="diagnostics.noop", queue="interactive")
    # When 5 jobs are enqueued in bulk, and 3 more in a bulk enqueue that is rolled back
    services.job_enqueue_many(task="diagnostics.noop", params_list=[{}] * 5)
    with pytest.raises(RuntimeError), transaction.atomic():
        services.job_enqueue_many(task="diagnostics.noop", params_list=[{}] * 3)
        raise RuntimeError("roll back")
    # Then the committed 5 count
    after = scrape().count("greenroom_jobs_enqueued_total", task="diagnostics.noop", queue="interactive")
    assert after == before + 5


def test_workers_alive_counts_live_worker_processes_per_queue(db, broker, scrape):
    # Given one live worker process on batch,default and one that stopped beating long ago
    registry.process_beat(kind=ProcessKind.WORKER, queues=["batch", "default"], threads=2)
    FleetProcess.objects.create(id="elsewhere:1:1", kind=ProcessKind.WORKER, host="elsewhere", pid=1,
                                queues=["batch"], heartbeat_at="2020-01-01T00:00:00Z")
    # When /metrics is scraped
    seen = scrape()
    # Then only the live one counts, for each of its queues
    assert seen.value("greenroom_workers_alive", queue="batch") == 1
    assert seen.value("greenroom_workers_alive", queue="default") == 1
    assert seen.value("greenroom_workers_alive", queue="interactive") == 0
    assert seen.value("greenroom_worker_processes_alive") == 1


def test_scheduler_gauges_follow_the_active_scheduler(db, broker, scrape):
    # Given no scheduler ever beat
    seen = scrape()
    assert seen.value("greenroom_scheduler_active") == 0
    assert seen.value("greenroom_scheduler_last_beat_timestamp_seconds") is None
    # When a scheduler holding the lease beats
    registry.process_beat(kind=ProcessKind.SCHEDULER, active=True)
    row = FleetProcess.objects.get(kind=ProcessKind.SCHEDULER)
    seen = scrape()
    # Then its beat is the last beat, and a scheduler is active
    assert seen.value("greenroom_scheduler_active") == 1
    assert seen.value("greenroom_scheduler_last_beat_timestamp_seconds") == pytest.approx(row.heartbeat_at.timestamp())
    # When it stops
    registry.process_stopped()
    seen = scrape()
    # Then none is active, and its last beat stays readable (for "no beat for N seconds" alerts)
    assert seen.value("greenroom_scheduler_active") == 0
    assert seen.value("greenroom_scheduler_last_beat_timestamp_seconds") == pytest.approx(row.heartbeat_at.timestamp())
