"""The fleet registry's rows: one per process, alive while it beats, pruned a day after it is gone."""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
from django.utils import timezone

from workers import registry
from workers.models import FleetProcess, ProcessKind

pytestmark = pytest.mark.django_db


def test_beats_upsert_one_row_per_process_with_what_it_runs():
    registry.process_beat(kind=ProcessKind.WORKER, queues={"default", "batch"}, threads=2,
                          running=[{"id": "j1", "task": "t"}])
    registry.process_beat(kind=ProcessKind.WORKER, queues={"default", "batch"}, threads=2, running=[])
    [row] = FleetProcess.objects.all()
    assert row.pk == registry.process_id()
    assert (row.pid, row.queues, row.threads, row.running) == (os.getpid(), ["batch", "default"], 2, [])
    assert row.rss_bytes > 0
    assert list(registry.alive(ProcessKind.WORKER)) == [row]
    assert not registry.alive(ProcessKind.SCHEDULER).exists()


def test_a_process_that_stopped_or_stopped_beating_is_not_alive_and_is_pruned_a_day_later(settings):
    settings.GREENROOM_HEARTBEAT_INTERVAL = 3.0
    registry.process_beat(kind=ProcessKind.SCHEDULER, active=True)
    registry.process_stopped()
    assert not registry.alive().exists()
    registry.process_beat(kind=ProcessKind.SCHEDULER, active=True)  # started again (same process here)
    assert registry.alive(ProcessKind.SCHEDULER).get().active
    FleetProcess.objects.update(heartbeat_at=timezone.now() - timedelta(seconds=10))
    assert not registry.alive().exists()  # 3 beats missed
    assert registry.prune_processes() == 0
    FleetProcess.objects.update(heartbeat_at=timezone.now() - timedelta(days=1, seconds=1))
    assert registry.prune_processes() == 1


def test_the_probe_command_passes_while_a_process_of_the_kind_beats_on_this_host():
    from django.core.management import CommandError, call_command

    with pytest.raises(CommandError, match="no worker process"):
        call_command("probe", "worker")
    registry.process_beat(kind=ProcessKind.WORKER, queues={"default"}, threads=1)
    call_command("probe", "worker")
    with pytest.raises(CommandError):
        call_command("probe", "scheduler")
    with pytest.raises(CommandError):
        call_command("probe", "worker", "--host", "elsewhere")
    FleetProcess.objects.update(heartbeat_at=timezone.now() - timedelta(minutes=5))
    with pytest.raises(CommandError):
        call_command("probe", "worker")
