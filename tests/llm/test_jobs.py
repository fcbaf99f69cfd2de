"""llm.validate_api and llm.validate_all end to end: real worker processes, a real HTTP server."""

from __future__ import annotations

from tests.llm.conftest import KEY, Reply, models_reply
from tests.support.workers import wait_for, worker_program
from workers import services
from workers.llm.models import LlmApi, LlmApiStatus, LlmModel
from workers.models import Job, JobStatus


def llm_workers(start_workers, **env):
    return start_workers(worker_program("llm", queues=["interactive", "batch"], **env))


def finished(job: Job, timeout: float = 20) -> Job:
    def done() -> Job | None:
        row = Job.objects.get(pk=job.pk)
        return row if row.is_finished else None

    return wait_for(done, timeout=timeout, what=f"job {job.pk} to finish")


def validate(api: LlmApi) -> Job:
    return services.job_enqueue(task="llm.validate_api", params={"api_id": api.pk})


def available(api: LlmApi) -> list[str]:
    return sorted(LlmModel.objects.filter(api=api, available=True).values_list("model_id", flat=True))


def test_validation_records_models_and_a_refused_key_fails_at_once(start_workers, llm_servers, capfd):
    # Given a healthy API, one whose server refuses (and echoes) the key, and workers logging at DEBUG
    good_server, bad_server = llm_servers(), llm_servers()
    good_server.default = models_reply("a", "b", "c")
    bad_server.default = Reply(status=401, echo_auth=True)
    good = LlmApi.objects.create(name="good", base_url=good_server.url + "/v1", api_key=KEY)
    bad = LlmApi.objects.create(name="bad", base_url=bad_server.url, api_key=KEY)
    llm_workers(start_workers, GREENROOM_LOG_LEVEL="DEBUG")
    # When both are validated
    ok_job, bad_job = validate(good), validate(bad)
    ok_job, bad_job = finished(ok_job), finished(bad_job)
    # Then the healthy one succeeded, with its models and latency recorded
    assert ok_job.status == JobStatus.SUCCESSFUL, ok_job.error_message
    assert ok_job.result == {"api_id": good.pk, "latency_ms": ok_job.result["latency_ms"], "models": 3,
                             "added": 3, "removed": 0}
    good.refresh_from_db()
    assert good.last_status == LlmApiStatus.OK and good.last_latency_ms is not None
    assert good.last_checked_at is not None and good.last_error == ""
    assert available(good) == ["a", "b", "c"]
    # And the refused one failed at once with a readable error, recorded on its row, without the key
    assert bad_job.status == JobStatus.FAILED and bad_job.attempts == 1
    assert bad_job.error_class == "workers.errors.PermanentError"
    assert "refused the API key (401 Unauthorized)" in bad_job.error_message
    bad.refresh_from_db()
    assert bad.last_status == LlmApiStatus.FAILED and "401" in bad.last_error
    for text in (bad_job.error_message, bad_job.error_traceback, bad.last_error):
        assert KEY not in text
    # When the healthy API's list changes and it is validated again
    good_server.default = models_reply("b", "c", "d")
    again = finished(validate(good))
    # Then the new model was added and the missing one marked unavailable (kept, not deleted)
    assert again.status == JobStatus.SUCCESSFUL
    assert again.result["added"] == 1 and again.result["removed"] == 1 and again.result["models"] == 3
    assert available(good) == ["b", "c", "d"]
    assert LlmModel.objects.get(api=good, model_id="a").available is False
    # And the workers' logs never held the key
    logs = capfd.readouterr()
    assert "refused the API key" in logs.err  # the workers' logs were captured
    assert KEY not in logs.out + logs.err


def test_a_503_is_retried_and_a_429_retry_after_is_honoured(start_workers, llm_servers):
    # Given an API that answers 503 once, and one that answers 429 "Retry-After: 2" once
    flaky_server, limited_server = llm_servers(), llm_servers()
    flaky_server.then(Reply(status=503, body={"error": "warming up"}))
    limited_server.then(Reply(status=429, headers={"Retry-After": "2"}, body={"error": "slow down"}))
    flaky = LlmApi.objects.create(name="flaky", base_url=flaky_server.url, api_key=KEY)
    limited = LlmApi.objects.create(name="limited", base_url=limited_server.url, api_key=KEY)
    llm_workers(start_workers)
    # When both are validated
    flaky_job, limited_job = validate(flaky), validate(limited)
    # Then the 429 retry waits (READY, next attempt ~2 s after the failure, more than the 0.5-1 s backoff)
    waiting = wait_for(lambda: Job.objects.filter(pk=limited_job.pk, status=JobStatus.READY, attempts=1,
                                                  next_attempt_at__isnull=False).first(),
                       timeout=15, what="the 429 retry to be scheduled")
    assert waiting.error_message.startswith(f"LLM API at {limited_server.url}/v1/models answered 429")
    limited.refresh_from_db()
    assert limited.last_status == LlmApiStatus.FAILED  # the failed attempt is on the row meanwhile
    # And both succeed on their second attempt
    flaky_job, limited_job = finished(flaky_job), finished(limited_job)
    assert flaky_job.status == JobStatus.SUCCESSFUL and flaky_job.attempts == 2
    assert limited_job.status == JobStatus.SUCCESSFUL and limited_job.attempts == 2
    first, second = limited_server.requests[0].at, limited_server.requests[1].at
    assert second - first >= 1.9, f"retried after {second - first:.2f} s despite Retry-After: 2"
    for api in (flaky, limited):
        api.refresh_from_db()
        assert api.last_status == LlmApiStatus.OK and api.last_error == ""


def test_validate_all_checks_every_active_api_and_reports_each(start_workers, llm_servers, closed_port_url):
    # Given a healthy API, one that is down, and an inactive one
    server = llm_servers()
    good = LlmApi.objects.create(name="good", base_url=server.url, api_key=KEY)
    down = LlmApi.objects.create(name="down", base_url=closed_port_url, api_key=KEY)
    asleep = LlmApi.objects.create(name="asleep", base_url=closed_port_url, is_active=False)
    llm_workers(start_workers)
    # When all are validated
    job = finished(services.job_enqueue(task="llm.validate_all"), timeout=30)
    # Then the job succeeded with one result per active API; the one that is down did not stop the rest
    assert job.status == JobStatus.SUCCESSFUL, job.error_message
    assert job.attempts == 1
    assert job.result["tested"] == 2 and job.result["successful"] == 1 and job.result["failed"] == 1
    by_id = {r["api_id"]: r for r in job.result["results"]}
    assert by_id[good.pk] == {"api_id": good.pk, "name": "good", "ok": True, "error": ""}
    assert by_id[down.pk]["ok"] is False and "could not reach" in by_id[down.pk]["error"]
    assert asleep.pk not in by_id
    assert (job.progress_done, job.progress_total) == (2, 2)
    # And both rows were updated
    good.refresh_from_db()
    down.refresh_from_db()
    asleep.refresh_from_db()
    assert good.last_status == LlmApiStatus.OK and available(good) == ["gpt-test-a", "gpt-test-b"]
    assert down.last_status == LlmApiStatus.FAILED and "ConnectError" in down.last_error
    assert asleep.last_status == LlmApiStatus.NEVER
