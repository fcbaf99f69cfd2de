"""`manage.py jobs list | show | retry | cancel`, against the real Redis broker."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from datetime import timedelta

from django.utils import timezone

from tests.cli.helpers import dead_count, failed_job, put_dead_letter, refused, run, waiting_ids
from tests.support.runtime import wait_running, wait_status
from tests.support.workers import BASE_DIR, worker_env
from workers import services
from workers.models import Job, JobStatus

# --- list ------------------------------------------------------------------------------------------------


def test_list_shows_the_newest_jobs_first_with_their_progress_and_owner(broker, django_user_model):
    alice = django_user_model.objects.create_user("alice")
    old = services.job_enqueue(task="diagnostics.noop", requested_by=alice)
    Job.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(minutes=5))
    new = services.job_enqueue(task="diagnostics.sleep", params={"seconds": 3})
    Job.objects.filter(pk=new.pk).update(progress_done=1, progress_total=4)

    out, _ = run("list")

    lines = out.splitlines()
    assert lines[0].split() == ["ID", "TASK", "QUEUE", "STATUS", "PROGRESS", "ATTEMPTS", "CREATED", "USER"]
    assert [line.split()[0] for line in lines[1:]] == [str(new.pk), str(old.pk)]
    assert lines[1].split()[1:5] == ["diagnostics.sleep", "default", "READY", "25%"]
    assert lines[2].split()[-1] == "alice"


def test_list_filters_by_status_task_queue_and_user_and_honours_the_limit(broker, django_user_model):
    alice = django_user_model.objects.create_user("alice")
    mine = services.job_enqueue(task="diagnostics.noop", requested_by=alice)
    sleeper = services.job_enqueue(task="diagnostics.sleep", params={"seconds": 1})
    failure = failed_job()

    def ids(*args: str) -> list[str]:
        return [json.loads(line)["id"] for line in run("list", "--json", *args)[0].splitlines()]

    assert ids("--status", "failed") == [str(failure.pk)]
    assert ids("--task", "diagnostics.sleep") == [str(sleeper.pk)]
    assert ids("--queue", "interactive") == [str(mine.pk)]
    assert ids("--user", "alice") == [str(mine.pk)]
    assert len(ids("--limit", "2")) == 2
    assert len(ids()) == 3


def test_list_as_json_gives_one_parseable_object_per_job(db, broker):
    job = services.job_enqueue(task="diagnostics.sleep", params={"seconds": 2})

    out, _ = run("list", "--json")

    [data] = [json.loads(line) for line in out.splitlines()]
    assert data["id"] == str(job.pk)
    assert data["params"] == {"seconds": 2.0, "blocking": False, "allocate_mb": 0}
    assert data["status"] == "READY" and data["queue"] == "default" and data["requested_by"] is None


def test_list_refuses_an_unknown_status_user_or_a_bad_limit(db):
    assert "unknown status 'DONE'" in refused("list", "--status", "DONE")
    assert "no user 'nobody'" in refused("list", "--user", "nobody")
    assert "--limit" in refused("list", "--limit", "0")


# --- show ------------------------------------------------------------------------------------------------


def test_show_prints_every_field_the_error_and_the_traceback(db):
    job = failed_job(params={"kind": "permanent", "message": "disk full"}, attempts=2, progress_done=3,
                     progress_total=4, progress_message="almost", error_message="disk full")

    out, _ = run("show", str(job.pk))

    assert f"id                {job.pk}" in out
    assert "status            FAILED" in out
    assert "progress          3/4 (75.0%) almost" in out
    assert "attempts          2" in out
    assert '"message": "disk full"' in out
    assert "error             workers.errors.PermanentError: disk full" in out
    assert out.rstrip().endswith("PermanentError: never")  # the traceback, last


def test_show_follows_the_retry_chain_both_ways(db, broker):
    first = failed_job()
    second = services.job_retry(job=first)
    Job.objects.filter(pk=second.pk).update(status=JobStatus.FAILED, finished_at=timezone.now())
    second.refresh_from_db()
    third = services.job_retry(job=second)

    out, _ = run("show", str(second.pk))
    data = json.loads(run("show", str(second.pk), "--json")[0])

    assert f"retry of          {first.pk} FAILED" in out
    assert f"retried by        {third.pk} READY" in out
    assert [j["id"] for j in data["retry_chain"]["retry_of"]] == [str(first.pk)]
    assert [j["id"] for j in data["retry_chain"]["retried_by"]] == [str(third.pk)]
    assert data["dismissed_at"] is not None
    assert "PermanentError" in json.loads(run("show", str(first.pk), "--json")[0])["error"]["traceback"]


def test_show_refuses_a_malformed_or_unknown_id(db):
    missing = uuid.uuid4()

    assert "'nope' is not a job id" in refused("show", "nope")
    assert f"no job {missing}" in refused("show", str(missing))


# --- retry ---------------------------------------------------------------------------------------------


def test_retry_of_one_failed_job_enqueues_a_new_published_job_and_dismisses_the_original(db, broker):
    job = failed_job()
    put_dead_letter(broker.client, message_id=str(job.pk), actor="diagnostics.fail")

    out, _ = run("retry", str(job.pk))

    new = Job.objects.get(retry_of=job)
    assert out.strip() == f"retried {job.pk} (diagnostics.fail) as {new.pk}"
    assert new.status == JobStatus.READY and new.enqueued_at is not None
    assert waiting_ids(broker.client) == [str(new.pk)]
    job.refresh_from_db()
    assert job.dismissed_at is not None
    assert dead_count(broker.client) == 0


def test_retry_refuses_a_job_that_has_not_failed(db, broker):
    job = services.job_enqueue(task="diagnostics.noop")

    assert "only failed or cancelled jobs can be retried" in refused("retry", str(job.pk))
    assert "give a job id, or --failed" in refused("retry")
    assert "not both" in refused("retry", str(job.pk), "--failed")
    assert Job.objects.count() == 1


def test_bulk_retry_asks_first_and_retries_only_the_open_failures_that_match(db, broker):
    # Given two open failures of one task, one of another, a dismissed failure and a success
    a, b = failed_job(), failed_job()
    other = failed_job(task="diagnostics.noop", params={}, queue="interactive")
    failed_job(dismissed_at=timezone.now())
    Job.objects.create(task="diagnostics.fail", queue="default", params={"kind": "permanent"},
                       status=JobStatus.SUCCESSFUL)
    # When the operator answers yes to the bulk retry of that task
    out, _ = run("retry", "--failed", "--task", "diagnostics.fail", stdin="y\n")
    # Then it asked with the count, and retried exactly those two
    assert out.startswith("Retry 2 failed jobs? [y/N] ")
    assert set(Job.objects.filter(retry_of__isnull=False).values_list("retry_of", flat=True)) == {a.pk, b.pk}
    assert "2 retried, 0 could not be retried" in out
    assert set(waiting_ids(broker.client)) == {str(j.pk) for j in Job.objects.filter(retry_of__isnull=False)}
    # And the failure of the other task is still open
    other.refresh_from_db()
    assert other.dismissed_at is None


def test_bulk_retry_does_nothing_when_the_answer_is_no_or_nobody_can_answer(db, broker):
    job = failed_job()

    assert "aborted; nothing was changed" in refused("retry", "--failed", stdin="n\n")
    assert "not interactive" in refused("retry", "--failed", stdin="")
    assert "pass --yes" in refused("retry", "--failed", stdin="")

    assert Job.objects.count() == 1
    job.refresh_from_db()
    assert job.dismissed_at is None


def test_bulk_retry_with_yes_filters_by_queue_and_time_and_empties_their_dead_letters(db, broker):
    old = failed_job(finished_at=timezone.now() - timedelta(days=2))
    recent = failed_job()
    elsewhere = failed_job(task="diagnostics.noop", params={}, queue="interactive")
    for job in (old, recent):
        put_dead_letter(broker.client, message_id=str(job.pk), actor="diagnostics.fail")
    since = (timezone.now() - timedelta(days=1)).isoformat()

    out, _ = run("retry", "--failed", "--queue", "default", "--since", since, "--yes")

    assert "[y/N]" not in out
    assert list(Job.objects.filter(retry_of__isnull=False).values_list("retry_of", flat=True)) == [recent.pk]
    assert dead_count(broker.client) == 2  # only the old job's letter is left (zset entry + message)
    assert Job.objects.get(pk=elsewhere.pk).dismissed_at is None
    assert "unknown queue 'nightly'" in refused("retry", "--failed", "--queue", "nightly", "--yes")
    assert "is not an ISO date" in refused("retry", "--failed", "--since", "yesterday", "--yes")


def test_bulk_retry_reports_a_job_it_cannot_retry_keeps_its_dead_letter_and_exits_non_zero(db, broker):
    # Given a failure whose unique key is held by an active job
    blocked = failed_job(unique_key="report:7")
    services.job_enqueue(task="diagnostics.sleep", params={"seconds": 1}, unique_key="report:7")
    put_dead_letter(broker.client, message_id=str(blocked.pk), actor="diagnostics.fail")
    fine = failed_job()
    # When both are retried
    message = refused("retry", "--failed", "--yes")
    # Then the other one was retried, this one is still open with its dead letter
    assert "1 job(s) could not be retried" in message
    assert Job.objects.filter(retry_of=fine).exists()
    assert not Job.objects.filter(retry_of=blocked).exists()
    assert Job.objects.get(pk=blocked.pk).dismissed_at is None
    assert dead_count(broker.client) == 2


# --- cancel --------------------------------------------------------------------------------------------


def test_cancel_of_a_ready_job_cancels_it(db, broker):
    job = services.job_enqueue(task="diagnostics.sleep", params={"seconds": 5})

    out, _ = run("cancel", str(job.pk))

    assert out.strip() == f"cancelled {job.pk} (diagnostics.sleep)"
    assert Job.objects.get(pk=job.pk).status == JobStatus.CANCELLED


def test_cancel_of_a_finished_job_is_refused(db):
    job = failed_job()

    assert "FAILED; a finished job cannot be cancelled" in refused("cancel", str(job.pk))
    assert "not a job id" in refused("cancel", "12")


def test_cancel_of_a_running_job_asks_it_to_stop_and_it_stops(start_workers):
    # Given a worker running a long cancellable job
    start_workers()
    job = services.job_enqueue(task="diagnostics.sleep", params={"seconds": 60})
    wait_running(job, timeout=60)
    # When the operator cancels it
    out, _ = run("cancel", str(job.pk))
    # Then the CLI says it was asked to stop, and the job ends CANCELLED
    assert "is running and was asked to stop" in out
    done = wait_status(job, timeout=60)
    assert done.status == JobStatus.CANCELLED


# --- the shell -----------------------------------------------------------------------------------------


def test_bad_input_exits_non_zero_from_the_shell(transactional_db, broker):
    def shell(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "manage.py", "jobs", *args], cwd=BASE_DIR, env=worker_env(),
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)

    bad_id = shell("show", "not-an-id")
    no_action = shell()
    unconfirmed = shell("purge", "--queue", "default")

    assert bad_id.returncode == 1 and "'not-an-id' is not a job id" in bad_id.stderr
    assert no_action.returncode != 0 and "ACTION" in no_action.stderr
    assert unconfirmed.returncode == 1 and "not interactive" in unconfirmed.stderr
