"""Structured job logs: every line a job's run writes carries its job fields; secrets never reach the output."""

from __future__ import annotations

import io
import json
import logging
import sys
import time
import uuid
from pathlib import Path

import pytest

import tests.metrics.observed_jobs  # noqa: F401 - declares observed.* in this process too
from project.logging import (
    REDACTED,
    JobContextFilter,
    JsonFormatter,
    RedactingFilter,
    TextFormatter,
    current_job_fields,
    redact,
)
from tests.support.runtime import wait_status
from tests.support.workers import wait_for, worker_program
from workers import context, execution, services
from workers.models import JobStatus

SECRET = "sk-live-4f9a8b7c6d5e4f3a2b1c"


# --- a real worker process ---------------------------------------------------------------------------
def json_lines(path: Path) -> list[dict]:
    """The JSON lines of a worker's log (Dramatiq's main process writes its own lines in its own format)."""
    found = []
    for line in path.read_text().splitlines() if path.exists() else []:
        if line.startswith("{"):
            found.append(json.loads(line))
    return found


def test_worker_json_lines_carry_the_job_fields_and_no_secret(start_workers, tmp_path):
    # Given a worker process logging JSON, whose log (the Dramatiq main process forwards its child's
    # stderr there) goes to a file
    log = tmp_path / "worker.log"
    program = worker_program("worker", queues=["default"], GREENROOM_LOG_FORMAT="json")
    program.argv[program.argv.index("--queues"):program.argv.index("--queues")] = ["tests.metrics.observed_jobs"]
    program.argv += ["--log-file", str(log)]
    start_workers(program)

    # When a job logs a secret the careless ways, and another fails with a secret in its error
    logged = services.job_enqueue(task="observed.log_lines", params={"secret": SECRET})
    failed = services.job_enqueue(task="diagnostics.fail", params={"kind": "permanent", "message": f"api_key={SECRET}"})
    assert wait_status(logged, timeout=60).status == JobStatus.SUCCESSFUL
    assert wait_status(failed, timeout=60).status == JobStatus.FAILED
    lines = wait_for(lambda: (found := json_lines(log)) and any(
        line.get("job_id") == str(failed.pk) and line["logger"] == "workers.execution" for line in found) and found,
        timeout=30, what="the failure's lines in the worker's log")

    # Then the job's own lines carry its fields as JSON fields
    own = [line for line in lines if line["logger"] == "tests.metrics.observed_jobs"]
    assert [line["level"] for line in own] == ["INFO", "WARNING"]
    for line in own:
        assert (line["job_id"], line["task"], line["queue"], line["attempt"]) == (
            str(logged.pk), "observed.log_lines", "default", 1)
    assert "api_key=[REDACTED]" in own[0]["message"]
    assert "'Authorization': '[REDACTED]'" in own[1]["message"]
    # ...and so do Dramatiq's line about the failure (with its traceback) and Greenroom's
    dramatiq_line = next(line for line in lines if line["logger"].startswith("dramatiq.worker")
                         and line.get("job_id") == str(failed.pk))
    assert (dramatiq_line["task"], dramatiq_line["queue"], dramatiq_line["attempt"]) == (
        "diagnostics.fail", "default", 1)
    assert "PermanentError" in dramatiq_line["exception"]
    greenroom_line = next(line for line in lines if line["logger"] == "workers.execution"
                          and line.get("job_id") == str(failed.pk))
    assert (greenroom_line["task"], greenroom_line["queue"]) == ("diagnostics.fail", "default")
    # (its attempt is null: LedgerRetries takes the attempt off the message before recording the failure)
    assert "attempt" in greenroom_line
    # ...while the worker's own lines outside any job carry none
    assert any(line.get("job_id") is None for line in lines)
    # And the secret is nowhere in the log
    assert SECRET not in log.read_text()


# --- the job fields --------------------------------------------------------------------------------------
def record(message: str, *args: object, **extra: object) -> logging.LogRecord:
    made = logging.LogRecord("greenroom.test", logging.INFO, __file__, 1, message, args, None)
    made.__dict__.update(extra)
    return made


def formatted(formatter: logging.Formatter, made: logging.LogRecord) -> str:
    for step in (JobContextFilter(), RedactingFilter()):
        assert step.filter(made)
    return formatter.format(made)


@pytest.fixture
def running_job():
    """This thread runs a job (eager mode has no Dramatiq message: the queue comes from the catalogue)."""
    ctx = context.JobContext(job_id=uuid.uuid4(), task="diagnostics.noop", attempt=2, progress_interval=0.5,
                             hard_deadline=time.monotonic() + 60)
    token = context.enter(ctx)
    yield ctx
    context.leave(ctx, token)


def test_outside_a_job_there_are_no_job_fields():
    assert current_job_fields() is None
    line = json.loads(formatted(JsonFormatter(), record("hello %s", "world")))
    assert line["message"] == "hello world"
    assert "job_id" not in line
    assert formatted(TextFormatter("%(message)s"), record("hello")) == "hello"


def test_json_line_in_a_job_has_the_job_fields(running_job):
    line = json.loads(formatted(JsonFormatter(), record("working")))
    assert (line["job_id"], line["task"], line["queue"], line["attempt"]) == (
        str(running_job.job_id), "diagnostics.noop", "interactive", 2)


def test_text_line_in_a_job_ends_with_the_job_fields(running_job):
    text = formatted(TextFormatter("%(levelname)s %(message)s"), record("working"))
    assert text == f"INFO working [job_id={running_job.job_id} task=diagnostics.noop queue=interactive attempt=2]"


def test_settings_install_both_filters_on_the_console_handler():
    handlers = [h for h in logging.getLogger().handlers
                if any(isinstance(f, JobContextFilter) for f in h.filters)
                and any(isinstance(f, RedactingFilter) for f in h.filters)]
    assert handlers, "LOGGING did not put JobContextFilter and RedactingFilter on a root handler"
    assert isinstance(handlers[0].formatter, TextFormatter | JsonFormatter)


def test_attempt_option_matches_the_one_execution_writes():
    from project.logging import ATTEMPT_OPTION

    assert execution.ATTEMPT_OPTION == ATTEMPT_OPTION


# --- redaction -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "expected"), [
    (f"calling with api_key={SECRET} now", "calling with api_key=[REDACTED] now"),
    (f"{{'Authorization': 'Bearer {SECRET}'}}", "{'Authorization': '[REDACTED]'}"),
    (f'{{"password": "{SECRET}", "user": "ann"}}', '{"password": "[REDACTED]", "user": "ann"}'),
    (f"Authorization: Bearer {SECRET}", "Authorization: Bearer [REDACTED]"),
    (f"sent Token {SECRET} upstream", "sent Token [REDACTED] upstream"),
    (f"X-Api-Key: {SECRET}", "X-Api-Key: [REDACTED]"),
    (f"client_secret={SECRET}&grant_type=x", "client_secret=[REDACTED]&grant_type=x"),
    (f"postgres://greenroom:{SECRET}@db:5432/app", "postgres://greenroom:[REDACTED]@db:5432/app"),
    (f"the key is {SECRET}", "the key is [REDACTED]"),
    (f"GET url=https://api.test/v1?access_token={SECRET}&page=2", "GET url=https://api.test/v1?access_token=[REDACTED]&page=2"),
    (f"password: '{SECRET} with spaces' user=ann", "password: '[REDACTED]' user=ann"),
])
def test_secrets_are_redacted(text, expected):
    assert redact(text) == expected
    assert SECRET not in redact(text)


@pytest.mark.parametrize("text", [
    "max_tokens=512 prompt_tokens=20",
    "unique_key=report:3 task=pdf.build",
    "author=Ann",
    'File "/srv/workers/auth.py", line 12, in check',
    "token expired; retrying",
])
def test_ordinary_text_is_left_alone(text):
    assert redact(text) == text


def test_tracebacks_and_extra_fields_are_redacted():
    try:
        raise ValueError(f"refused password={SECRET}")
    except ValueError:
        made = logging.LogRecord("greenroom.test", logging.ERROR, __file__, 1, "failed", (), None)
        made.exc_info = sys.exc_info()
    made.__dict__.update({"api_key": SECRET, "url": f"https://u:{SECRET}@host/"})
    line = json.loads(formatted(JsonFormatter(), made))
    assert SECRET not in json.dumps(line)
    assert line["api_key"] == REDACTED
    assert line["url"] == "https://u:[REDACTED]@host/"
    assert "ValueError: refused password=[REDACTED]" in line["exception"]


def test_text_output_is_redacted_too():
    made = record("headers %s", {"authorization": f"Bearer {SECRET}"})
    handler_output = io.StringIO()
    handler = logging.StreamHandler(handler_output)
    handler.addFilter(JobContextFilter())
    handler.addFilter(RedactingFilter())
    handler.setFormatter(TextFormatter("%(message)s"))
    handler.handle(made)
    assert handler_output.getvalue() == "headers {'authorization': '[REDACTED]'}\n"
