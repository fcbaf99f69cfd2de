"""The event streams: a job's progress as it changes, their bounds, and who may follow them."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from tests.dashboard.conftest import EventReader, client_for
from workers import events
from workers.models import ApiToken, Job, JobStatus


def stream_url(job: Job) -> str:
    return f"/api/jobs/{job.pk}/events/"


def open_stream(client: Client, url: str, readers: list[EventReader]) -> EventReader:
    response = client.get(url)
    assert response.status_code == 200, response.content
    reader = EventReader(response)
    readers.append(reader)
    return reader


def test_the_stream_sends_the_job_at_once_then_each_change_then_the_end(make_job, member, open_streams):
    # Given a member's running job
    job = make_job(requested_by=member, status=JobStatus.RUNNING, attempts=1, progress_done=0, progress_total=10,
                   progress_message="starting")
    client = client_for(member)
    # When they open its stream
    response = client.get(stream_url(job))
    assert response["Content-Type"] == "text/event-stream"
    assert response["Cache-Control"] == "no-cache"
    assert response["X-Accel-Buffering"] == "no"
    reader = EventReader(response)
    open_streams.append(reader)
    # Then the first event is the job as the API shows it, with the reconnect delay
    first = reader.next_event()
    assert first["event"] == "progress"
    assert first["retry"] == str(events.RECONNECT_MS)
    assert first["data"]["id"] == str(job.pk)
    assert first["data"]["status"] == "RUNNING"
    assert first["data"]["progress"] == {"done": 0, "total": 10, "percent": 0.0, "message": "starting"}

    # When the worker writes progress, the next event carries it
    Job.objects.filter(pk=job.pk).update(progress_done=4, progress_message="page 4")
    second = reader.next_event()
    assert second["event"] == "progress"
    assert second["retry"] is None
    assert second["data"]["progress"]["done"] == 4
    assert second["data"]["progress"]["message"] == "page 4"

    # When the job finishes, the final state comes, then `end`, then the stream closes
    Job.objects.filter(pk=job.pk).update(status=JobStatus.SUCCESSFUL, progress_done=10, result={"pages": 10},
                                         finished_at=timezone.now())
    third = reader.next_event()
    assert (third["event"], third["data"]["status"], third["data"]["result"]) == ("progress", "SUCCESSFUL",
                                                                                  {"pages": 10})
    end = reader.next_event()
    assert end["event"] == "end"
    assert end["data"]["status"] == "SUCCESSFUL"
    assert reader.rest() == []


def test_a_stream_of_a_finished_job_ends_at_once(make_job, member, open_streams):
    job = make_job(requested_by=member, status=JobStatus.FAILED, error_class="x.Boom", error_message="boom")
    reader = open_stream(client_for(member), stream_url(job), open_streams)
    assert [reader.next_event()["event"], reader.next_event()["event"]] == ["progress", "end"]
    assert reader.rest() == []


def test_an_unchanged_job_sends_nothing_but_keepalives(make_job, member, open_streams, monkeypatch):
    # Given a keepalive interval short enough for a test (it is 15 s)
    monkeypatch.setattr(events, "KEEPALIVE_INTERVAL", 0.6)
    job = make_job(requested_by=member, status=JobStatus.RUNNING)
    reader = open_stream(client_for(member), stream_url(job), open_streams)
    assert reader.next_event()["event"] == "progress"
    # When nothing changes, the next chunk is a comment line, not an event
    assert reader.next_raw() == ": keepalive\n\n"


def test_a_stream_ends_itself_after_the_maximum_age(make_job, member, open_streams, settings):
    # Given streams that may last one second
    settings.GREENROOM_SSE_MAX_SECONDS = 1
    job = make_job(requested_by=member, status=JobStatus.RUNNING)
    reader = open_stream(client_for(member), stream_url(job), open_streams)
    assert reader.next_event()["event"] == "progress"
    # Then the stream ends without an `end` event (the job still runs: the browser reconnects)
    assert [chunk for chunk in reader.rest() if not chunk.startswith(":")] == []


def test_streams_beyond_the_limit_are_refused_with_503_until_one_closes(make_job, member, open_streams, settings):
    settings.GREENROOM_SSE_MAX_STREAMS = 2
    job = make_job(requested_by=member, status=JobStatus.RUNNING)
    client = client_for(member)
    first = open_stream(client, stream_url(job), open_streams)
    open_stream(client, stream_url(job), open_streams)
    # When a third stream is asked for
    refused = client.get(stream_url(job))
    # Then it is refused with a time to come back, and the page falls back to polling
    assert refused.status_code == 503
    assert refused["Retry-After"] == str(events.RETRY_AFTER_SECONDS)
    # When one of the open streams closes (the browser left), a new one is accepted
    first.close()
    again = open_stream(client, stream_url(job), open_streams)
    assert again.next_event()["event"] == "progress"
    assert client.get(stream_url(job)).status_code == 503


def test_the_stream_limit_counts_the_overview_stream_too(make_job, staff, open_streams, settings, broker):
    settings.GREENROOM_SSE_MAX_STREAMS = 1
    job = make_job(status=JobStatus.RUNNING)
    client = client_for(staff)
    open_stream(client, "/dashboard/events/", open_streams)
    assert client.get(stream_url(job)).status_code == 503


def test_other_users_get_404_and_anonymous_401(make_job, member, stranger):
    job = make_job(requested_by=member, status=JobStatus.RUNNING)
    assert client_for(stranger).get(stream_url(job)).status_code == 404
    assert Client().get(stream_url(job)).status_code == 401
    assert client_for(stranger).get("/api/jobs/not-a-uuid/events/").status_code == 404


def test_staff_may_follow_any_job_and_see_its_traceback(make_job, member, staff, open_streams):
    job = make_job(requested_by=member, status=JobStatus.FAILED, error_class="x.Boom", error_traceback="Traceback…")
    reader = open_stream(client_for(staff), stream_url(job), open_streams)
    assert reader.next_event()["data"]["error"]["traceback"] == "Traceback…"
    # while the owner's stream carries no traceback (as the API)
    owner = open_stream(client_for(member), stream_url(job), open_streams)
    assert "traceback" not in owner.next_event()["data"]["error"]


def test_a_token_authenticates_a_stream(make_job, member, open_streams):
    job = make_job(requested_by=member, status=JobStatus.RUNNING)
    _, key = ApiToken.issue(user=member)
    reader = open_stream(Client(headers={"Authorization": f"Token {key}"}), stream_url(job), open_streams)
    assert reader.next_event()["data"]["id"] == str(job.pk)


@pytest.mark.django_db(transaction=True)
def test_an_open_stream_holds_no_database_connection_between_reads(django_user_model, open_streams):
    # Given a running job (no test transaction around it: as in a real request)
    owner = django_user_model.objects.create_user(username="owner", password=None)
    job = Job.objects.create(task="diagnostics.noop", queue="interactive", status=JobStatus.RUNNING,
                             requested_by=owner)
    reader = open_stream(client_for(owner), stream_url(job), open_streams)
    # When the stream has sent an event and waits for the next change
    assert reader.next_event()["event"] == "progress"
    # Then this thread's connection has been closed, not kept for the stream's lifetime
    assert connection.connection is None
    Job.objects.filter(pk=job.pk).update(progress_done=1)
    assert reader.next_event()["data"]["progress"]["done"] == 1
    assert connection.connection is None
