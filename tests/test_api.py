"""The jobs API: enqueue, read, list, cancel, retry, visibility, health checks."""

from __future__ import annotations

import base64
import threading
import uuid
from datetime import UTC, datetime, timedelta

import dramatiq
import pytest
from django.db import connections
from django.test import Client
from django.utils import timezone

from project.broker import GreenroomRedisBroker
from tests.api_fixtures import JOBS_URL, finish, queued_ids, token_header
from tests.support.redis_server import free_port
from workers.models import Job, JobStatus

pytest_plugins = ["tests.api_fixtures"]

JOB_FIELDS = {
    "id", "task", "queue", "status", "progress", "attempts", "params", "result", "error", "unique_key",
    "cancel_requested", "retry_of", "created_at", "enqueued_at", "started_at", "finished_at", "next_attempt_at",
    "url",
}


def detail_url(job_id: object) -> str:
    return f"{JOBS_URL}{job_id}/"


def cursor_of(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


# --- enqueue ----------------------------------------------------------------------------------------


def test_enqueue_answers_202_with_id_status_url_and_location(alice, api_as, greenroom_stub_broker):
    api = api_as(alice)

    response = api.post(JOBS_URL, {"task": "diagnostics.sleep", "params": {"seconds": 2}})

    assert response.status_code == 202
    body = response.json()
    assert set(body) == {"id", "status", "url"}
    assert body["status"] == "READY"
    assert body["url"] == detail_url(body["id"])
    assert response["Location"] == body["url"]
    job = Job.objects.get(pk=body["id"])
    assert job.requested_by == alice
    assert job.queue == "default"
    # Params are stored validated, with their defaults filled in.
    assert job.params == {"seconds": 2.0, "blocking": False, "allocate_mb": 0}
    # Published after commit on the job's queue, with the job's id as message id.
    assert job.enqueued_at is not None
    assert queued_ids(greenroom_stub_broker, "default") == [body["id"]]


def test_enqueue_without_params_uses_an_empty_object(alice, api_as):
    response = api_as(alice).post(JOBS_URL, {"task": "diagnostics.noop"})

    assert response.status_code == 202
    assert Job.objects.get(pk=response.json()["id"]).params == {}


def test_enqueue_in_eager_mode_has_run_the_job_when_it_answers(alice, api_as, settings):
    settings.GREENROOM_EAGER = True

    response = api_as(alice).post(JOBS_URL, {"task": "diagnostics.noop"})

    assert response.status_code == 202
    job = Job.objects.get(pk=response.json()["id"])
    assert job.status == JobStatus.SUCCESSFUL
    assert job.result == {"ok": True}


def test_unknown_task_is_refused_with_400(alice, api_as):
    response = api_as(alice).post(JOBS_URL, {"task": "diagnostics.nope"})

    assert response.status_code == 400
    assert "diagnostics.nope" in response.json()["error"]
    assert not Job.objects.exists()


def test_invalid_params_are_refused_with_400_listing_each_error(alice, api_as):
    response = api_as(alice).post(JOBS_URL, {"task": "diagnostics.sleep", "params": {"seconds": -1, "colour": 1}})

    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid params"
    fields = {detail["field"]: detail["message"] for detail in body["details"]}
    assert set(fields) == {"seconds", "colour"}
    assert "greater than or equal to 0" in fields["seconds"]
    assert not Job.objects.exists()


def test_a_missing_required_param_is_named_in_the_details(alice, api_as):
    response = api_as(alice).post(JOBS_URL, {"task": "diagnostics.fail", "params": {}})

    assert response.status_code == 400
    assert [detail["field"] for detail in response.json()["details"]] == ["kind"]


# --- unique keys -----------------------------------------------------------------------------------


def test_a_second_job_with_an_active_unique_key_is_refused_with_409_naming_the_first(alice, api_as):
    api = api_as(alice)
    first = api.enqueue(unique_key="nightly-report")

    response = api.post(JOBS_URL, {"task": "diagnostics.noop", "unique_key": "nightly-report"})

    assert response.status_code == 409
    assert response.json()["existing_id"] == str(first.pk)
    assert Job.objects.filter(unique_key="nightly-report").count() == 1


def test_a_running_job_also_holds_its_unique_key(alice, api_as):
    api = api_as(alice)
    first = finish(api.enqueue(unique_key="k"), JobStatus.RUNNING)

    response = api.post(JOBS_URL, {"task": "diagnostics.noop", "unique_key": "k"})

    assert response.status_code == 409
    assert response.json()["existing_id"] == str(first.pk)


@pytest.mark.parametrize("end", [JobStatus.SUCCESSFUL, JobStatus.FAILED])
def test_the_unique_key_is_free_again_once_the_first_job_finished(alice, api_as, end):
    api = api_as(alice)
    first = finish(api.enqueue(unique_key="k"), end)

    second = api.enqueue(unique_key="k")

    assert second.pk != first.pk
    assert second.status == JobStatus.READY


def test_the_unique_key_is_free_again_once_the_first_job_was_cancelled(alice, api_as):
    api = api_as(alice)
    first = api.enqueue(unique_key="k")
    assert api.post(detail_url(first.pk) + "cancel/").status_code == 202

    second = api.enqueue(unique_key="k")

    assert {job.status for job in Job.objects.filter(unique_key="k")} == {JobStatus.CANCELLED, JobStatus.READY}
    assert second.pk != first.pk


def test_concurrent_requests_with_one_unique_key_create_exactly_one_job(transactional_db, alice, greenroom_stub_broker):
    # Given eight clients that send the same unique key at the same moment
    headers = token_header(alice)
    clients = 8
    barrier = threading.Barrier(clients)
    statuses: list[int] = []
    bodies: list[dict] = []
    lock = threading.Lock()

    def send() -> None:
        try:
            client = Client()
            barrier.wait(timeout=10)
            response = client.post(
                JOBS_URL, {"task": "diagnostics.noop", "unique_key": "race"}, content_type="application/json", **headers
            )
            with lock:
                statuses.append(response.status_code)
                bodies.append(response.json())
        finally:
            connections.close_all()

    # When they all POST
    threads = [threading.Thread(target=send) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    # Then one is accepted, the others are told which job holds the key
    assert sorted(statuses) == [202] + [409] * (clients - 1)
    job = Job.objects.get(unique_key="race")
    accepted = next(body for body in bodies if "url" in body)
    assert accepted["id"] == str(job.pk)
    assert {body["existing_id"] for body in bodies if "existing_id" in body} == {str(job.pk)}
    assert queued_ids(greenroom_stub_broker, "interactive") == [str(job.pk)]


# --- one job ---------------------------------------------------------------------------------------


def test_job_detail_shows_every_field_with_iso_timestamps(alice, api_as):
    api = api_as(alice)
    job = api.enqueue("diagnostics.sleep", {"seconds": 5})
    now = timezone.now()
    finish(job, JobStatus.RUNNING, started_at=now, attempts=1, progress_done=3, progress_total=8,
           progress_message="slept 3 of 8 s")

    response = api.get(detail_url(job.pk))

    assert response.status_code == 200
    body = response.json()
    assert set(body) == JOB_FIELDS
    assert body["id"] == str(job.pk)
    assert body["task"] == "diagnostics.sleep"
    assert body["queue"] == "default"
    assert body["status"] == "RUNNING"
    assert body["attempts"] == 1
    assert body["progress"] == {"done": 3, "total": 8, "percent": 37.5, "message": "slept 3 of 8 s"}
    assert datetime.fromisoformat(body["started_at"]) == now
    assert datetime.fromisoformat(body["created_at"]) == job.created_at
    assert datetime.fromisoformat(body["enqueued_at"]) == job.enqueued_at
    assert body["finished_at"] is None
    assert body["result"] is None
    assert body["error"] is None


def test_a_successful_job_shows_its_result(alice, api_as):
    api = api_as(alice)
    job = finish(api.enqueue(), JobStatus.SUCCESSFUL, result={"ok": True}, finished_at=timezone.now())

    body = api.get(detail_url(job.pk)).json()

    assert body["status"] == "SUCCESSFUL"
    assert body["result"] == {"ok": True}
    assert datetime.fromisoformat(body["finished_at"]) == job.finished_at


def test_a_failed_job_shows_its_error_and_only_staff_see_the_traceback(alice, operator, api_as):
    job = api_as(alice).enqueue()
    finish(job, JobStatus.FAILED, error_class="workers.errors.PermanentError", error_message="no way",
           error_traceback="Traceback (most recent call last): ...", finished_at=timezone.now())

    as_owner = api_as(alice).get(detail_url(job.pk)).json()
    as_staff = api_as(operator).get(detail_url(job.pk)).json()

    assert as_owner["status"] == "FAILED"
    assert as_owner["error"] == {"type": "workers.errors.PermanentError", "message": "no way"}
    assert as_staff["error"]["traceback"].startswith("Traceback")


# --- the list --------------------------------------------------------------------------------------


def test_the_list_shows_the_users_jobs_newest_first(alice, api_as):
    api = api_as(alice)
    jobs = [api.enqueue() for _ in range(3)]

    response = api.get(JOBS_URL)

    assert response.status_code == 200
    body = response.json()
    assert [row["id"] for row in body["results"]] == [str(job.pk) for job in reversed(jobs)]
    assert body["next"] is None
    assert set(body["results"][0]) == JOB_FIELDS


def test_the_list_filters_by_status_and_task(alice, api_as):
    api = api_as(alice)
    noop = api.enqueue("diagnostics.noop")
    failed = finish(api.enqueue("diagnostics.noop"), JobStatus.FAILED)
    sleep = api.enqueue("diagnostics.sleep", {"seconds": 1})

    def ids(query: dict[str, str]) -> set[str]:
        response = api.get(JOBS_URL, query)
        assert response.status_code == 200
        return {row["id"] for row in response.json()["results"]}

    assert ids({"status": "FAILED"}) == {str(failed.pk)}
    assert ids({"task": "diagnostics.sleep"}) == {str(sleep.pk)}
    assert ids({"status": "READY", "task": "diagnostics.noop"}) == {str(noop.pk)}
    assert ids({"status": "CANCELLED"}) == set()


def test_following_next_walks_every_job_exactly_once_in_order(alice, api_as, settings):
    # Given seven jobs, three of them created in the very same microsecond, and pages of two
    settings.GREENROOM_PAGE_SIZE = 2
    api = api_as(alice)
    jobs = [api.enqueue() for _ in range(7)]
    same_moment = timezone.now() + timedelta(seconds=1)
    Job.objects.filter(pk__in=[job.pk for job in jobs[2:5]]).update(created_at=same_moment)
    expected = [str(pk) for pk in Job.objects.order_by("-created_at", "-pk").values_list("pk", flat=True)]

    # When a client follows `next` until it is null
    seen, pages, url = [], 0, JOBS_URL
    while url:
        response = api.get(url)
        assert response.status_code == 200
        body = response.json()
        assert len(body["results"]) <= 2
        seen.extend(row["id"] for row in body["results"])
        url, pages = body["next"], pages + 1
        assert pages <= 10, "pagination does not end"

    # Then it saw every job once, newest first
    assert seen == expected
    assert pages == 4


def test_next_keeps_the_filters(alice, api_as, settings):
    settings.GREENROOM_PAGE_SIZE = 1
    api = api_as(alice)
    failed = [finish(api.enqueue(), JobStatus.FAILED) for _ in range(2)]
    api.enqueue()

    first = api.get(JOBS_URL, {"status": "FAILED"}).json()
    second = api.get(first["next"]).json()

    assert "status=FAILED" in first["next"]
    assert [first["results"][0]["id"], second["results"][0]["id"]] == [str(job.pk) for job in reversed(failed)]
    assert second["next"] is None


def test_an_unknown_status_filter_is_refused_with_400(alice, api_as):
    response = api_as(alice).get(JOBS_URL, {"status": "DONE"})

    assert response.status_code == 400
    assert "READY" in response.json()["allowed"]


@pytest.mark.parametrize(
    "cursor",
    [
        "!!!not base64!!!",
        "abc",
        cursor_of("no separator"),
        cursor_of(f"yesterday|{uuid.uuid4()}"),
        cursor_of("2026-01-01T00:00:00+00:00|not-a-uuid"),
        cursor_of(f"2026-01-01T00:00:00|{uuid.uuid4()}"),  # naive: we never write those
        cursor_of(f"0001-01-01T00:00:00+14:00|{uuid.uuid4()}"),  # before datetime.min in UTC
        base64.urlsafe_b64encode(b"\xff\xfe|\x00").decode(),
    ],
)
def test_a_bad_cursor_is_refused_with_400(alice, api_as, cursor):
    response = api_as(alice).get(JOBS_URL, {"cursor": cursor})

    assert response.status_code == 400
    assert response.json()["error"] == "invalid cursor"


def test_a_nul_character_in_the_task_filter_is_refused_with_400(alice, api_as):
    # PostgreSQL cannot compare text with NUL in it: refused before it reaches the database.
    response = api_as(alice).get(JOBS_URL, {"task": "diagnostics.noop\x00"})

    assert response.status_code == 400


def test_a_valid_cursor_of_our_own_format_pages_on_from_that_point(alice, api_as):
    api = api_as(alice)
    older, newer = api.enqueue(), api.enqueue()
    cursor = cursor_of(f"{newer.created_at.astimezone(UTC).isoformat()}|{newer.pk}")

    response = api.get(JOBS_URL, {"cursor": cursor})

    assert [row["id"] for row in response.json()["results"]] == [str(older.pk)]


# --- cancel and retry ------------------------------------------------------------------------------


def test_cancelling_a_ready_job_cancels_it_at_once(alice, api_as):
    api = api_as(alice)
    job = api.enqueue()

    response = api.post(detail_url(job.pk) + "cancel/")

    assert response.status_code == 202
    assert response.json()["status"] == "CANCELLED"
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED
    assert job.finished_at is not None
    # Its message is still queued; a worker that gets it will not run it.
    assert not Job.claim(job.pk, worker="test:1", stale_before=timezone.now())


def test_cancelling_a_running_job_asks_it_to_stop(alice, api_as):
    api = api_as(alice)
    job = finish(api.enqueue(), JobStatus.RUNNING, heartbeat_at=timezone.now())

    response = api.post(detail_url(job.pk) + "cancel/")

    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "RUNNING"
    assert body["cancel_requested"] is True
    job.refresh_from_db()
    assert job.status == JobStatus.RUNNING
    assert job.cancel_requested_at is not None


@pytest.mark.parametrize("end", [JobStatus.SUCCESSFUL, JobStatus.FAILED, JobStatus.CANCELLED])
def test_cancelling_a_finished_job_is_refused_with_409(alice, api_as, end):
    api = api_as(alice)
    job = finish(api.enqueue(), end)

    response = api.post(detail_url(job.pk) + "cancel/")

    assert response.status_code == 409
    assert response.json()["status"] == end
    job.refresh_from_db()
    assert job.status == end


@pytest.mark.parametrize("end", [JobStatus.FAILED, JobStatus.CANCELLED])
def test_retrying_a_failed_or_cancelled_job_enqueues_a_new_one(alice, api_as, end, greenroom_stub_broker):
    api = api_as(alice)
    old = finish(api.enqueue("diagnostics.sleep", {"seconds": 3}), end)

    response = api.post(detail_url(old.pk) + "retry/")

    assert response.status_code == 202
    new = Job.objects.get(pk=response.json()["id"])
    assert new.pk != old.pk
    assert response["Location"] == detail_url(new.pk)
    assert (new.task, new.params, new.status) == (old.task, old.params, JobStatus.READY)
    assert new.retry_of_id == old.pk
    assert api.get(detail_url(new.pk)).json()["retry_of"] == str(old.pk)
    assert str(new.pk) in queued_ids(greenroom_stub_broker, "default")


@pytest.mark.parametrize("state", [JobStatus.READY, JobStatus.RUNNING, JobStatus.SUCCESSFUL])
def test_retrying_a_job_that_did_not_fail_is_refused_with_409(alice, api_as, state):
    api = api_as(alice)
    job = finish(api.enqueue(), state)

    response = api.post(detail_url(job.pk) + "retry/")

    assert response.status_code == 409
    assert response.json()["status"] == state
    assert Job.objects.count() == 1


def test_retrying_while_another_job_holds_the_unique_key_is_refused_with_409(alice, api_as):
    api = api_as(alice)
    old = finish(api.enqueue(unique_key="k"), JobStatus.FAILED)
    holder = api.enqueue(unique_key="k")

    response = api.post(detail_url(old.pk) + "retry/")

    assert response.status_code == 409
    assert response.json()["existing_id"] == str(holder.pk)


def test_retrying_needs_the_add_job_permission(viewer, api_as):
    # Given a failed job of a user who may read but not enqueue
    job = Job.objects.create(task="diagnostics.noop", queue="interactive", requested_by=viewer)
    finish(job, JobStatus.FAILED)

    response = api_as(viewer).post(detail_url(job.pk) + "retry/")

    assert response.status_code == 403
    assert Job.objects.count() == 1


# --- who sees what ---------------------------------------------------------------------------------


def test_a_user_does_not_see_other_users_jobs(alice, bob, api_as):
    alices = api_as(alice).enqueue()
    bobs = api_as(bob).enqueue()

    listed = [row["id"] for row in api_as(bob).get(JOBS_URL).json()["results"]]

    assert listed == [str(bobs.pk)]
    assert str(alices.pk) not in listed


@pytest.mark.parametrize("action", ["", "cancel/", "retry/"])
def test_another_users_job_is_404_for_detail_cancel_and_retry(alice, bob, api_as, action):
    job = finish(api_as(alice).enqueue(), JobStatus.FAILED)
    job_as_ready = api_as(alice).enqueue()
    bob_api = api_as(bob)

    for target in (job, job_as_ready):
        url = detail_url(target.pk) + action
        response = bob_api.get(url) if not action else bob_api.post(url)
        assert response.status_code == 404
        assert response.json() == {"error": "no such job"}
    assert Job.objects.get(pk=job_as_ready.pk).status == JobStatus.READY
    assert Job.objects.count() == 2


@pytest.mark.parametrize("job_id", ["not-a-uuid", "123", str(uuid.uuid4()), "0" * 33, "%00"])
def test_a_malformed_or_unknown_job_id_is_404(alice, api_as, job_id):
    api = api_as(alice)
    api.enqueue()

    assert api.get(detail_url(job_id)).status_code == 404
    assert api.post(detail_url(job_id) + "cancel/").status_code == 404
    assert api.post(detail_url(job_id) + "retry/").status_code == 404


def test_staff_see_and_act_on_everyones_jobs(alice, operator, api_as):
    job = api_as(alice).enqueue()
    staff = api_as(operator)

    assert [row["id"] for row in staff.get(JOBS_URL).json()["results"]] == [str(job.pk)]
    assert staff.get(detail_url(job.pk)).status_code == 200
    assert staff.post(detail_url(job.pk) + "cancel/").status_code == 202
    assert staff.post(detail_url(job.pk) + "retry/").status_code == 202


# --- health ----------------------------------------------------------------------------------------


def test_healthz_answers_200_without_credentials(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_reports_database_and_broker_ok(db, client):
    # The broker here is the suite's own Redis, not a stub.
    assert dramatiq.get_broker().client is not None

    response = client.get("/readyz")

    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"database": "ok", "broker": "ok"}}


def test_readyz_answers_503_when_the_broker_is_unreachable(db, client):
    previous = dramatiq.get_broker()
    dead = GreenroomRedisBroker(url=f"redis://127.0.0.1:{free_port()}/0", middleware=[])
    dramatiq.set_broker(dead)
    try:
        response = client.get("/readyz")
    finally:
        dramatiq.set_broker(previous)
        dead.close()

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"] == "ok"
    assert "ConnectionError" in body["checks"]["broker"]


# --- hostile input ---------------------------------------------------------------------------------

DEEP = 10_000
BAD_BODIES = {
    "empty": "",
    "whitespace": "  \n ",
    "malformed": '{"task": "diagnostics.noop",',
    "single quotes": "{'task': 'diagnostics.noop'}",
    "array": '["diagnostics.noop"]',
    "string": '"diagnostics.noop"',
    "number": "42",
    "null": "null",
    "task missing": '{"params": {}}',
    "task a number": '{"task": 1}',
    "task null": '{"task": null}',
    "task a list": '{"task": ["diagnostics.noop"]}',
    "task empty": '{"task": ""}',
    "params a list": '{"task": "diagnostics.noop", "params": [1]}',
    "params a string": '{"task": "diagnostics.noop", "params": "seconds=1"}',
    "params a number": '{"task": "diagnostics.noop", "params": 3}',
    "unique_key too long": '{"task": "diagnostics.noop", "unique_key": "' + "k" * 201 + '"}',
    "unique_key empty": '{"task": "diagnostics.noop", "unique_key": ""}',
    "unique_key a number": '{"task": "diagnostics.noop", "unique_key": 5}',
    "NaN": '{"task": "diagnostics.sleep", "params": {"seconds": NaN}}',
    "Infinity": '{"task": "diagnostics.sleep", "params": {"seconds": Infinity}}',
    "-Infinity": '{"task": "diagnostics.sleep", "params": {"seconds": -Infinity}}',
    "overflowing float": '{"task": "diagnostics.sleep", "params": {"seconds": 1e999}}',
    "5000-digit integer": '{"task": "diagnostics.sleep", "params": {"seconds": ' + "9" * 5000 + "}}",
    "NUL in task": '{"task": "diagnostics.noop\\u0000"}',
    "NUL in a param": '{"task": "diagnostics.fail", "params": {"kind": "permanent", "message": "a\\u0000b"}}',
    "NUL in a key": '{"task": "diagnostics.noop", "params": {"a\\u0000": 1}}',
    "NUL in unique_key": '{"task": "diagnostics.noop", "unique_key": "k\\u0000"}',
    "lone surrogate in unique_key": '{"task": "diagnostics.noop", "unique_key": "\\ud800"}',
    "lone surrogate in a param": '{"task": "diagnostics.fail", "params": {"kind": "permanent", "message": "\\udfff"}}',
    "nested too deep for the parser": '{"task": "diagnostics.noop", "params": ' + "[" * DEEP + "]" * DEEP + "}",
    "nested deeper than allowed": '{"task": "diagnostics.noop", "params": {"a": ' + "[" * 900 + "]" * 900 + "}}",
    "nested just within the parser's reach": '{"task": "diagnostics.noop", "params": ' + "[" * 980 + "]" * 980 + "}",
    "nested objects": '{"task": "diagnostics.noop", "params": ' + '{"a":' * 40 + "1" + "}" * 40 + "}",
    "unknown field": '{"task": "diagnostics.noop", "priority": 1}',
    "duplicate-looking unknown fields": '{"task": "diagnostics.noop", "Task": "x", "params ": {}}',
}


@pytest.mark.parametrize("raw", BAD_BODIES.values(), ids=BAD_BODIES.keys())
def test_a_bad_body_gets_a_clear_400(alice, api_as, raw):
    response = api_as(alice).post(JOBS_URL, raw=raw)

    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]
    assert not Job.objects.exists()


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b'{"task": "diagnostics.noop", "params": {"x": "\xff\xfe"}}', "malformed JSON"),
        ('{"task": "diagnostics.noop", "extra": 1}', "unknown field(s): extra"),
        ('{"task": "diagnostics.noop", "params": {"a": NaN}}', "NaN is not valid JSON"),
        ('{"task": "diagnostics.noop", "params": {"a": "\\u0000"}}', "NUL"),
        ('{"task": "x", "params": ' + "[" * 40 + "]" * 40 + "}", "nested too deeply"),
        ("[1, 2]", "must be a JSON object"),
    ],
)
def test_a_bad_body_is_told_what_is_wrong(alice, api_as, raw, reason):
    response = api_as(alice).post(JOBS_URL, raw=raw)

    assert response.status_code == 400
    assert reason in response.json()["error"]


def test_unicode_and_nesting_within_limits_are_accepted(alice, api_as):
    message = "Grüße 👋 " + "x" * 100
    response = api_as(alice).post(JOBS_URL, {"task": "diagnostics.fail", "params": {"kind": "permanent",
                                                                                    "message": message},
                                             "unique_key": "ключ"})

    assert response.status_code == 202
    job = Job.objects.get(pk=response.json()["id"])
    assert job.params["message"] == message
    assert job.unique_key == "ключ"


def test_a_body_over_the_size_limit_is_refused_with_413(alice, api_as, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    body = {"task": "diagnostics.fail", "params": {"kind": "permanent", "message": "x" * 2000}}

    response = api_as(alice).post(JOBS_URL, body)

    assert response.status_code == 413
    assert "too large" in response.json()["error"]
    assert not Job.objects.exists()


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", JOBS_URL, "GET, POST"),
        ("DELETE", JOBS_URL, "GET, POST"),
        ("PATCH", JOBS_URL, "GET, POST"),
        ("POST", detail_url(uuid.uuid4()), "GET"),
        ("DELETE", detail_url(uuid.uuid4()), "GET"),
        ("GET", detail_url(uuid.uuid4()) + "cancel/", "POST"),
        ("GET", detail_url(uuid.uuid4()) + "retry/", "POST"),
    ],
)
def test_a_wrong_method_is_refused_with_405(alice, api_as, method, path, allowed):
    response = api_as(alice).request(method, path)

    assert response.status_code == 405
    assert response["Allow"] == allowed
    assert method in response.json()["error"]


def test_garbage_bodies_never_cause_a_server_error(alice, api_as):
    # A small fuzz loop: random bytes, and a valid body cut, spliced and mangled at random places.
    import random

    rng = random.Random(20261123)
    api = api_as(alice)
    valid = '{"task": "diagnostics.sleep", "params": {"seconds": 1.5}, "unique_key": "fuzz"}'
    alphabet = '{}[]":,.-+eE0123456789 \\u0000ntrufalsNaI\x00\xff\ud800'
    for attempt in range(250):
        kind = attempt % 3
        if kind == 0:
            raw: str | bytes = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 60)))
        elif kind == 1:
            cut = rng.randrange(len(valid))
            raw = valid[:cut] + "".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 6))) + valid[cut + 1:]
        else:
            raw = "".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 40)))
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogatepass")
        response = api.post(JOBS_URL, raw=raw)
        assert response.status_code < 500, (raw, response.content)
        assert response["Content-Type"] == "application/json", raw
        if response.status_code == 202:
            Job.objects.filter(pk=response.json()["id"]).update(status=JobStatus.CANCELLED)  # frees "fuzz"


def test_garbage_query_parameters_never_cause_a_server_error(alice, api_as):
    import random

    rng = random.Random(7)
    api = api_as(alice)
    api.enqueue()
    alphabet = "AZaz09|+/=-_:.T%\x00\u00e9\U0001f600"
    for _ in range(150):
        query = {
            rng.choice(["status", "task", "cursor"]): "".join(rng.choice(alphabet) for _ in range(rng.randrange(60)))
        }
        response = api.get(JOBS_URL, query)
        assert response.status_code in (200, 400), (query, response.content)
