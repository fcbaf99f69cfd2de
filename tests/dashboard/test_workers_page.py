"""The Workers page: every process from the fleet registry, live ones apart from gone ones."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from tests.dashboard.conftest import page
from workers.models import FleetProcess


def process(pk: str, *, age: float = 1.0, **fields) -> FleetProcess:
    now = timezone.now()
    fields.setdefault("kind", "worker")
    return FleetProcess.objects.create(id=pk, host=pk.split(":")[0], pid=int(pk.split(":")[1]),
                                       heartbeat_at=now - timedelta(seconds=age),
                                       started_at=now - timedelta(hours=1), **fields)


def test_live_and_gone_processes_are_listed_apart(staff_client, make_job, settings):
    settings.GREENROOM_HEARTBEAT_INTERVAL = 3
    job = make_job(task="diagnostics.sleep", status="RUNNING")
    busy = process("web1:101:1", queues=["interactive", "default"], threads=4, rss_bytes=150 * 1024 * 1024,
                   running=[{"id": str(job.pk), "task": "diagnostics.sleep"}])
    scheduler = process("web1:102:1", kind="scheduler", active=True)
    silent = process("web2:201:1", age=10, queues=["batch"])  # missed 3 beats of 3 s
    stopped = process("web2:202:1", stopped_at=timezone.now(), queues=["batch"])

    doc = page(staff_client.get("/dashboard/workers/"))

    alive = doc.find(data_testid="processes-alive")
    gone = doc.find(data_testid="processes-gone")
    assert {row.get("data-process-id") for row in alive.find_all("tr", data_process_id=True)} == {busy.pk, scheduler.pk}
    assert {row.get("data-process-id") for row in gone.find_all("tr", data_process_id=True)} == {silent.pk, stopped.pk}
    row = alive.find("tr", data_process_id=busy.pk)
    assert row.find(data_field="host").text == "web1"
    assert row.find(data_field="pid").text == "101"
    assert row.find(data_field="queues").text == "interactive, default"
    assert row.find(data_field="threads").text == "4"
    assert row.find(data_field="memory").text == "150.0"
    assert row.find(data_field="heartbeat").text.endswith(" s ago")
    link = row.find(data_field="running").find("a")
    assert (link.get("href"), link.text) == (f"/dashboard/jobs/{job.pk}/", "diagnostics.sleep")
    assert "active" in alive.find("tr", data_process_id=scheduler.pk).find(data_field="state").text
    assert gone.find("tr", data_process_id=stopped.pk).find(data_field="state").text.strip() == "stopped"
    assert gone.find("tr", data_process_id=silent.pk).find(data_field="state").text.strip() == "gone"
