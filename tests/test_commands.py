"""`manage.py create_api_token` and `manage.py enqueue`."""

from __future__ import annotations

import hashlib
import io
import json

import dramatiq
import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from project.broker import GreenroomRedisBroker
from tests.api_fixtures import JOBS_URL, queued_ids
from tests.support.redis_server import free_port
from workers.management.commands.enqueue import progress_line
from workers.models import ApiToken, Job, JobStatus

pytest_plugins = ["tests.api_fixtures"]


def run(*args: str) -> tuple[str, str]:
    """Run a command; return its stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def run_until_exit(*args: str) -> tuple[int | str | None, str, str]:
    """Run a command that ends with sys.exit; return its exit code, stdout and stderr."""
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(SystemExit) as exited:
        call_command(*args, stdout=out, stderr=err)
    return exited.value.code, out.getvalue(), err.getvalue()


# --- create_api_token ------------------------------------------------------------------------------


def test_create_api_token_prints_a_key_that_is_stored_only_as_its_hash(alice):
    out, _ = run("create_api_token", "alice", "--name", "laptop")

    key = out.strip()
    token = ApiToken.objects.get(user=alice)
    assert token.name == "laptop"
    assert token.key_hash == hashlib.sha256(key.encode()).hexdigest()
    stored = [str(value) for value in ApiToken.objects.filter(pk=token.pk).values().get().values()]
    assert not any(key in value for value in stored)


def test_the_printed_key_authenticates_api_requests(alice):
    out, _ = run("create_api_token", "alice")

    response = Client().get(JOBS_URL, HTTP_AUTHORIZATION=f"Token {out.strip()}")

    assert response.status_code == 200


def test_each_call_issues_a_new_key(alice):
    first, _ = run("create_api_token", "alice")
    second, _ = run("create_api_token", "alice")

    assert first != second
    assert ApiToken.objects.filter(user=alice).count() == 2


def test_create_api_token_for_an_unknown_user_fails_with_a_reason(db):
    with pytest.raises(CommandError, match="no user named 'mallory'"):
        run("create_api_token", "mallory")
    assert not ApiToken.objects.exists()


# --- enqueue ---------------------------------------------------------------------------------------


def test_enqueue_creates_and_publishes_a_job(db, greenroom_stub_broker):
    out, err = run("enqueue", "diagnostics.sleep", "--params", '{"seconds": 2}', "--unique-key", "cli")

    job = Job.objects.get()
    assert (job.task, job.params["seconds"], job.unique_key, job.status) == ("diagnostics.sleep", 2.0, "cli", "READY")
    assert out.startswith(f"{job.pk} diagnostics.sleep → queue default")
    assert err == ""
    assert queued_ids(greenroom_stub_broker, "default") == [str(job.pk)]


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["diagnostics.noop", "--params", "{not json"], "--params is not valid JSON"),
        (["diagnostics.noop", "--params", "1" * 5000], "--params is not valid JSON"),
        (["reports.nope"], "unknown task 'reports.nope'"),
        (["diagnostics.sleep", "--params", '{"seconds": -1}'], "invalid params: seconds: Input should be greater"),
        (["diagnostics.sleep", "--params", "{}"], "invalid params: seconds: Field required"),
        (["diagnostics.noop", "--params", "[1]"], "params must be a JSON object$"),
    ],
)
def test_enqueue_refuses_bad_input_with_a_reason(db, greenroom_stub_broker, args, reason):
    with pytest.raises(CommandError, match=reason):
        run("enqueue", *args)
    assert not Job.objects.exists()


def test_enqueue_refuses_a_duplicate_unique_key_naming_the_active_job(db, greenroom_stub_broker):
    run("enqueue", "diagnostics.noop", "--unique-key", "once")
    first = Job.objects.get()

    with pytest.raises(CommandError, match=f"already queued or running. \\(job {first.pk}\\)"):
        run("enqueue", "diagnostics.noop", "--unique-key", "once")


def test_enqueue_with_the_broker_down_saves_the_job_and_warns(db):
    previous = dramatiq.get_broker()
    dead = GreenroomRedisBroker(url=f"redis://127.0.0.1:{free_port()}/0", middleware=[])
    dramatiq.set_broker(dead)
    try:
        out, err = run("enqueue", "diagnostics.noop")
    finally:
        dramatiq.set_broker(previous)
        dead.close()

    job = Job.objects.get()
    assert job.enqueued_at is None
    assert str(job.pk) in out
    assert "broker is unreachable" in err


# --- enqueue --wait --------------------------------------------------------------------------------


def test_wait_exits_0_and_prints_the_result_of_a_successful_job(db, settings):
    settings.GREENROOM_EAGER = True

    code, out, _ = run_until_exit("enqueue", "diagnostics.noop", "--wait")

    assert code == 0
    assert "SUCCESSFUL" in out
    assert json.loads(out.strip().splitlines()[-1]) == {"ok": True}


def test_wait_exits_1_and_prints_the_error_of_a_failed_job(db, settings):
    settings.GREENROOM_EAGER = True

    code, out, err = run_until_exit(
        "enqueue", "diagnostics.fail", "--params", '{"kind": "permanent", "message": "disk on fire"}', "--wait"
    )

    assert code == 1
    assert "FAILED" in out
    assert "workers.errors.PermanentError: disk on fire" in err
    assert Job.objects.get().status == JobStatus.FAILED


def test_wait_follows_a_job_run_by_a_worker(transactional_db, greenroom_worker):
    code, out, _ = run_until_exit("enqueue", "diagnostics.noop", "--wait", "--timeout", "20")

    assert code == 0
    assert json.loads(out.strip().splitlines()[-1]) == {"ok": True}
    assert Job.objects.get().attempts == 1


def test_wait_gives_up_after_its_timeout_with_exit_code_3(db, greenroom_stub_broker):
    # Nobody consumes the stub broker: the job stays READY.
    code, _, err = run_until_exit("enqueue", "diagnostics.noop", "--wait", "--timeout", "0.3")

    assert code == 3
    assert "gave up waiting" in err
    assert Job.objects.get().status == JobStatus.READY


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"status": "RUNNING", "progress_done": 5, "progress_total": 10, "progress_message": "half"},
         ["RUNNING", " 50.0% 5/10 half", "█" * 20 + "░" * 20]),
        ({"status": "READY"}, ["READY", "·" * 40, " 0 "]),
        ({"status": "RUNNING", "progress_done": 15, "progress_total": 10}, ["█" * 40, "100.0% 15/10"]),
    ],
)
def test_the_progress_line_shows_status_bar_percent_and_message(fields, expected):
    line = progress_line(Job(**fields), width=100)

    for part in expected:
        assert part in line
    assert len(line) < 100


def test_the_progress_line_fits_a_narrow_terminal():
    line = progress_line(Job(status="RUNNING", progress_total=3, progress_message="m" * 200), width=30)

    assert len(line) == 29
