"""Writes on jobs: enqueue, cancel, retry. Views, the admin, commands and schedules call these."""

from __future__ import annotations

from typing import Any

import pydantic
from django.db import IntegrityError, connection, transaction

from workers import catalogue, conf, publishing
from workers.errors import DuplicateJob, IllegalTransition, InvalidParams, UnknownTask
from workers.execution import run_eager
from workers.models import ACTIVE_STATUSES, Job, JobStatus


def job_validate_params(*, task: str, params: dict[str, Any] | None) -> tuple[catalogue.JobSpec, dict[str, Any]]:
    """Look the task up and validate its params; raise UnknownTask or InvalidParams."""
    spec = catalogue.get(task)
    if spec is None:
        raise UnknownTask(f"unknown task {task!r}")
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise InvalidParams("params must be a JSON object")
    try:
        clean = spec.params.model_validate(params).model_dump(mode="json")
    except pydantic.ValidationError as exc:
        errors: list[dict[str, object]] = [
            {"field": ".".join(str(p) for p in err["loc"]) or "params", "message": err["msg"]}
            for err in exc.errors(include_url=False, include_context=False, include_input=False)
        ]
        raise InvalidParams("invalid params", errors=errors) from None
    return spec, clean


def job_enqueue(
    *,
    task: str,
    params: dict[str, Any] | None = None,
    requested_by: Any = None,
    unique_key: str | None = None,
    retry_of: Job | None = None,
) -> Job:
    """Write a READY job and publish it once the surrounding transaction commits.

    Raises UnknownTask, InvalidParams, or DuplicateJob when a job with the same unique key is
    already READY or RUNNING (the database decides, so two racing requests yield one job).
    """
    spec, clean = job_validate_params(task=task, params=params)
    if unique_key is None and spec.unique_key is not None:
        unique_key = spec.unique_key(clean)
    user = requested_by if getattr(requested_by, "is_authenticated", False) else None
    try:
        with transaction.atomic():
            job = Job.objects.create(
                task=spec.name,
                queue=spec.queue,
                params=clean,
                requested_by=user,
                unique_key=unique_key,
                retry_of=retry_of,
            )
    except IntegrityError:
        if unique_key is None:
            raise  # not the one-active-job-per-key constraint: a real error
        existing = Job.objects.filter(unique_key=unique_key, status__in=ACTIVE_STATUSES).values_list("pk", flat=True)
        raise DuplicateJob(existing.first()) from None
    if conf.get().eager:

        def run_now() -> None:
            run_eager(spec, str(job.pk))
            job.refresh_from_db()  # the caller sees how it ended

        _after_commit(run_now)
    else:
        _after_commit(lambda: publishing.publish(job.pk))
    return job


def _after_commit(fn: Any) -> None:
    """Run `fn` now outside a transaction; inside one, after the outermost commit.

    The transactions that Django's TestCase (pytest-django's `db`) wraps each test in do not count:
    in them, eager jobs run at once, as they would in the application.
    """
    if any(not getattr(block, "_from_testcase", False) for block in connection.atomic_blocks):
        transaction.on_commit(fn)
    else:
        fn()


def job_cancel(*, job: Job) -> Job:
    """Cancel a READY job now, or ask a RUNNING one to stop at its next progress check."""
    job.cancel()
    return job


def job_retry(*, job: Job, requested_by: Any = None) -> Job:
    """Enqueue a new job with the same task and params as a FAILED or CANCELLED one.

    The new job keeps the original's owner, so the owner sees the rerun of their job even when an
    operator asked for it; `requested_by` owns it only if the original had no owner (e.g. the CLI).
    """
    if job.status not in (JobStatus.FAILED, JobStatus.CANCELLED):
        raise IllegalTransition(f"only failed or cancelled jobs can be retried; this one is {job.status}")
    # retry_of is written with the row: in eager mode the new job has run by the time we return.
    return job_enqueue(
        task=job.task,
        params=job.params,
        requested_by=job.requested_by or requested_by,
        unique_key=job.unique_key,
        retry_of=job,
    )
