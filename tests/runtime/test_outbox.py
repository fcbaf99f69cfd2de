"""The outbox: enqueueing works while Redis is down, and the relay publishes the jobs once it is back."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from tests.support.runtime import Stopwatch, lines, redis_only, row, say, wait_status, worker_pid
from tests.support.workers import worker_program
from workers import services
from workers.models import ApiToken, JobStatus

# An enqueue with the broker down costs the connection attempts of project.broker (refused at once
# on a local port): well under a second; the bound leaves room for a slow machine.
ENQUEUE_LIMIT = 5.0


def _api_client(django_user_model) -> tuple[Client, dict[str, str]]:
    """A test client and the token header of a staff user who may enqueue jobs."""
    user = django_user_model.objects.create_user(username="operator", password="not-a-real-pass", is_staff=True)
    user.user_permissions.add(Permission.objects.get(content_type__app_label="workers", codename="add_job"))
    _, key = ApiToken.issue(user=user)
    return Client(), {"HTTP_AUTHORIZATION": f"Token {key}"}


@redis_only
@pytest.mark.chaos
def test_jobs_enqueued_while_redis_is_down_are_published_when_it_is_back(
    start_workers, broker_redis, django_user_model, tmp_path: Path, record_property
):
    # Given a worker that relays unpublished rows every half second, and is consuming
    pool = start_workers(worker_program("relay", queues=["default"], threads=2, GREENROOM_RELAY_INTERVAL=0.5))
    warmup = services.job_enqueue(task="testing.record", params={"path": str(tmp_path / "warmup.txt")})
    assert wait_status(warmup, timeout=20).status == JobStatus.SUCCESSFUL
    pid = worker_pid(pool, "relay")
    client, auth = _api_client(django_user_model)

    # When Redis stops
    broker_redis.stop()
    # And a job is enqueued through the service
    clock = Stopwatch()
    by_service = services.job_enqueue(task="testing.record", params={"path": str(tmp_path / "service.txt")})
    service_took = clock.elapsed
    # And another through the API
    clock = Stopwatch()
    response = client.post("/api/jobs/", json.dumps({"task": "testing.record",
                                                      "params": {"path": str(tmp_path / "api.txt")}}),
                           content_type="application/json", **auth)
    api_took = clock.elapsed
    say(f"enqueue with Redis down: service {service_took * 1000:.0f} ms, API {api_took * 1000:.0f} ms")
    record_property("enqueue_with_redis_down_ms", round(service_took * 1000))

    # Then both calls succeed quickly, leaving READY rows that are not yet published
    assert response.status_code == 202, response.content
    by_api = response.json()["id"]
    assert service_took < ENQUEUE_LIMIT
    assert api_took < ENQUEUE_LIMIT
    for job in (by_service.pk, by_api):
        saved = row(job)
        assert saved.status == JobStatus.READY
        assert saved.enqueued_at is None
    # And they wait while the outage lasts, over several relay passes (which fail and try again)
    time.sleep(3)
    for job in (by_service.pk, by_api):
        waiting = row(job)
        assert (waiting.status, waiting.attempts) == (JobStatus.READY, 0)

    # When Redis comes back on the same port
    broker_redis.start()
    clock = Stopwatch()
    # Then the relay publishes both and the worker runs each exactly once
    for job, name in ((by_service.pk, "service.txt"), (by_api, "api.txt")):
        done = wait_status(job, timeout=30)
        assert done.status == JobStatus.SUCCESSFUL, (done.status, done.error_message)
        assert done.attempts == 1
        assert done.enqueued_at is not None
        assert lines(tmp_path / name) == ["start 1", "done"]
    say(f"Redis back → both jobs SUCCESSFUL in {clock.elapsed:.1f} s")
    # And the worker process rode out the outage: same process, never restarted
    assert worker_pid(pool, "relay") == pid
    assert pool.program("relay").restarts == 0
    # And it still takes new work directly
    after = services.job_enqueue(task="testing.record", params={"path": str(tmp_path / "after.txt")})
    assert row(after).enqueued_at is not None
    assert wait_status(after, timeout=20).status == JobStatus.SUCCESSFUL
