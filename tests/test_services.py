"""Services (enqueue, cancel, retry) and selectors (who sees which jobs)."""

from __future__ import annotations

import dramatiq
import pydantic
import pytest
from django.contrib.auth.models import AnonymousUser
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext

from project.broker import GreenroomRedisBroker
from tests.api_fixtures import finish, queued_ids
from tests.support.redis_server import free_port
from workers import selectors, services
from workers.errors import DuplicateJob, IllegalTransition, InvalidParams, UnknownTask
from workers.models import Job, JobStatus

pytest_plugins = ["tests.api_fixtures"]


class SourceParams(pydantic.BaseModel):
    source_id: int


@pytest.fixture
def stub(db, greenroom_stub_broker):
    """A database and the stub broker, which records what is published."""
    return greenroom_stub_broker


# --- validating params -----------------------------------------------------------------------------


def test_validating_returns_the_spec_and_params_with_defaults():
    spec, clean = services.job_validate_params(task="diagnostics.sleep", params={"seconds": "1.5"})

    assert spec.name == "diagnostics.sleep"
    assert clean == {"seconds": 1.5, "blocking": False, "allocate_mb": 0}


def test_no_params_count_as_an_empty_object():
    _, clean = services.job_validate_params(task="diagnostics.noop", params=None)

    assert clean == {}


def test_an_unknown_task_raises_unknown_task():
    with pytest.raises(UnknownTask, match=r"'reports\.build'"):
        services.job_validate_params(task="reports.build", params={})


@pytest.mark.parametrize("params", [[], "seconds=1", 3, True])
def test_params_that_are_not_an_object_raise_invalid_params(params):
    with pytest.raises(InvalidParams, match="must be a JSON object"):
        services.job_validate_params(task="diagnostics.noop", params=params)


def test_invalid_params_list_one_error_per_field_without_echoing_input():
    with pytest.raises(InvalidParams) as caught:
        services.job_validate_params(task="diagnostics.sleep", params={"seconds": "secret-value", "extra": 1})

    errors = {error["field"]: error["message"] for error in caught.value.errors}
    assert set(errors) == {"seconds", "extra"}
    assert "secret-value" not in str(caught.value.errors)


# --- enqueue ---------------------------------------------------------------------------------------


def test_enqueue_writes_a_ready_row_and_publishes_it(stub):
    job = services.job_enqueue(task="diagnostics.fail", params={"kind": "permanent"})

    stored = Job.objects.get(pk=job.pk)
    assert stored.status == JobStatus.READY
    assert (stored.task, stored.queue) == ("diagnostics.fail", "default")
    assert stored.params == {"kind": "permanent", "message": "diagnostics.fail was asked to fail"}
    assert stored.enqueued_at is not None
    assert stored.requested_by is None
    assert queued_ids(stub, "default") == [str(job.pk)]


def test_an_enqueue_outside_a_transaction_writes_its_row_already_marked_published(stub):
    # One statement, one commit: the row is INSERTed with its outbox mark (enqueued_at) and sent
    # right after, instead of an INSERT and then an UPDATE for the mark.
    with CaptureQueriesContext(connection) as queries:
        job = services.job_enqueue(task="diagnostics.noop")

    # (on PostgreSQL the hot statements bypass Django's query log: the stored mark tells instead)
    assert "UPDATE" not in [q["sql"].split()[0].upper() for q in queries.captured_queries]
    stored = Job.objects.get(pk=job.pk)
    assert stored.enqueued_at is not None and stored.enqueued_at == job.enqueued_at  # the INSERT's own
    assert stored.created_at <= stored.enqueued_at
    assert queued_ids(stub, "interactive") == [str(job.pk)]


def test_an_enqueued_row_holds_every_column_as_the_orm_would_have_written_it(stub, alice):
    # job_enqueue writes its row with one prepared INSERT, not Model.save: the two must agree
    # (JSON params, the requester, a retry link, a unique key, a priority, every default).
    first = finish(services.job_enqueue(task="diagnostics.noop", requested_by=alice), JobStatus.FAILED)
    params = {"kind": "permanent", "message": "échec"}
    values = {"task": "diagnostics.fail", "queue": "default", "params": params,
              "requested_by": alice, "unique_key": "k-1", "retry_of": first, "priority": 0}

    enqueued = services.job_enqueue(task="diagnostics.fail", params=params,
                                    requested_by=alice, unique_key="k-1", retry_of=first, priority=0)
    by_orm = Job.objects.create(**{**values, "unique_key": "k-2"})

    def stored(pk: object) -> dict[str, object]:
        row = Job.objects.filter(pk=pk).values().get()
        return {k: v for k, v in row.items() if k not in {"id", "created_at", "enqueued_at", "unique_key"}}

    assert enqueued.requested_by == alice and enqueued.retry_of == first  # the returned object too
    assert stored(enqueued.pk) == stored(by_orm.pk)
    assert Job.objects.get(pk=enqueued.pk).unique_key == "k-1"
    assert Job.objects.get(pk=enqueued.pk).created_at == enqueued.created_at


def test_enqueue_records_an_authenticated_requester_but_not_an_anonymous_one(stub, alice):
    mine = services.job_enqueue(task="diagnostics.noop", requested_by=alice)
    anonymous = services.job_enqueue(task="diagnostics.noop", requested_by=AnonymousUser())

    assert Job.objects.get(pk=mine.pk).requested_by == alice
    assert Job.objects.get(pk=anonymous.pk).requested_by is None


def test_enqueue_inside_a_transaction_publishes_only_after_commit(stub, django_capture_on_commit_callbacks):
    # Given an enqueue inside the caller's transaction
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        job = services.job_enqueue(task="diagnostics.noop")
        # Then nothing is published while the row could still be rolled back
        assert queued_ids(stub, "interactive") == []
        assert Job.objects.get(pk=job.pk).enqueued_at is None

    # And it is published once the transaction commits
    assert queued_ids(stub, "interactive") == [str(job.pk)]
    assert Job.objects.get(pk=job.pk).enqueued_at is not None


def test_enqueue_rolled_back_with_its_transaction_publishes_nothing(stub, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError), transaction.atomic():
        services.job_enqueue(task="diagnostics.noop")
        raise RuntimeError("the caller changed its mind")

    assert not Job.objects.exists()
    assert queued_ids(stub, "interactive") == []


def test_enqueue_with_the_broker_down_keeps_the_row_for_the_relay(db):
    previous = dramatiq.get_broker()
    dead = GreenroomRedisBroker(url=f"redis://127.0.0.1:{free_port()}/0", middleware=[])
    dramatiq.set_broker(dead)
    try:
        job = services.job_enqueue(task="diagnostics.noop")
    finally:
        dramatiq.set_broker(previous)
        dead.close()

    stored = Job.objects.get(pk=job.pk)
    assert stored.status == JobStatus.READY
    assert stored.enqueued_at is None  # the relay publishes it when the broker is back


def test_enqueue_refuses_a_second_active_job_with_the_same_unique_key(stub):
    first = services.job_enqueue(task="diagnostics.noop", unique_key="k")

    with pytest.raises(DuplicateJob) as caught:
        services.job_enqueue(task="diagnostics.noop", unique_key="k")

    assert caught.value.existing_id == first.pk
    assert Job.objects.count() == 1
    assert queued_ids(stub, "interactive") == [str(first.pk)]


def test_a_duplicate_inside_the_callers_transaction_leaves_that_transaction_usable(stub):
    services.job_enqueue(task="diagnostics.noop", unique_key="k")

    with transaction.atomic():
        with pytest.raises(DuplicateJob):
            services.job_enqueue(task="diagnostics.noop", unique_key="k")
        # The failed insert was rolled back to its savepoint: the transaction goes on.
        other = services.job_enqueue(task="diagnostics.noop", unique_key="other")

    assert Job.objects.filter(pk=other.pk).exists()


def test_a_jobs_declared_unique_key_is_derived_from_its_params(stub, declare_job):
    declare_job("tests.sync_source", params=SourceParams, unique_key=lambda params: f"source:{params['source_id']}")

    first = services.job_enqueue(task="tests.sync_source", params={"source_id": 7})
    with pytest.raises(DuplicateJob):
        services.job_enqueue(task="tests.sync_source", params={"source_id": "7"})
    other = services.job_enqueue(task="tests.sync_source", params={"source_id": 8})

    assert (first.unique_key, other.unique_key) == ("source:7", "source:8")


def test_an_explicit_unique_key_wins_over_the_declared_one(stub, declare_job):
    declare_job("tests.sync_source", params=SourceParams, unique_key=lambda params: f"source:{params['source_id']}")

    job = services.job_enqueue(task="tests.sync_source", params={"source_id": 7}, unique_key="manual")

    assert job.unique_key == "manual"


def test_an_integrity_error_unrelated_to_unique_keys_is_not_reported_as_a_duplicate(
    transactional_db, greenroom_stub_broker, django_user_model
):
    # Given an active job without a key, and a requester whose row vanished meanwhile
    services.job_enqueue(task="diagnostics.noop")
    ghost = django_user_model(pk=987654, username="ghost")

    # When a job is enqueued for it, the foreign key fails at commit
    with pytest.raises(IntegrityError):
        services.job_enqueue(task="diagnostics.noop", requested_by=ghost)

    # Then the real error surfaces, not a DuplicateJob pointing at an unrelated job
    assert Job.objects.count() == 1


# --- cancel ----------------------------------------------------------------------------------------


def test_cancel_service_cancels_a_ready_job_and_asks_a_running_one_to_stop(stub):
    ready = services.job_enqueue(task="diagnostics.noop")
    running = finish(services.job_enqueue(task="diagnostics.noop"), JobStatus.RUNNING)

    services.job_cancel(job=ready)
    services.job_cancel(job=running)

    assert Job.objects.get(pk=ready.pk).status == JobStatus.CANCELLED
    running.refresh_from_db()
    assert running.status == JobStatus.RUNNING
    assert running.cancel_requested_at is not None


def test_cancel_service_refuses_a_finished_job(stub):
    job = finish(services.job_enqueue(task="diagnostics.noop"), JobStatus.SUCCESSFUL)

    with pytest.raises(IllegalTransition):
        services.job_cancel(job=job)


# --- retry -----------------------------------------------------------------------------------------


def test_retry_enqueues_a_copy_linked_to_the_failed_job(stub, alice):
    old = finish(services.job_enqueue(task="diagnostics.sleep", params={"seconds": 1}, requested_by=alice,
                                      unique_key="k"), JobStatus.FAILED)

    new = services.job_retry(job=old)

    stored = Job.objects.get(pk=new.pk)
    assert stored.retry_of_id == old.pk
    assert (stored.task, stored.params, stored.unique_key) == (old.task, old.params, "k")
    assert stored.requested_by == alice  # kept when nobody else asks
    assert stored.status == JobStatus.READY
    assert str(new.pk) in queued_ids(stub, "default")


def test_retry_by_an_operator_stays_with_the_original_owner(stub, alice, operator):
    old = finish(services.job_enqueue(task="diagnostics.noop", requested_by=alice), JobStatus.CANCELLED)

    new = services.job_retry(job=old, requested_by=operator)

    assert Job.objects.get(pk=new.pk).requested_by == alice


def test_retry_of_an_ownerless_job_belongs_to_whoever_asked_for_it(stub, operator):
    old = finish(services.job_enqueue(task="diagnostics.noop"), JobStatus.CANCELLED)

    new = services.job_retry(job=old, requested_by=operator)

    assert Job.objects.get(pk=new.pk).requested_by == operator


@pytest.mark.parametrize("state", [JobStatus.READY, JobStatus.RUNNING, JobStatus.SUCCESSFUL])
def test_retry_refuses_jobs_that_did_not_fail(stub, state):
    job = finish(services.job_enqueue(task="diagnostics.noop"), state)

    with pytest.raises(IllegalTransition, match="only failed or cancelled"):
        services.job_retry(job=job)
    assert Job.objects.count() == 1


def test_retry_in_eager_mode_links_the_new_job_before_it_runs(db, settings):
    settings.GREENROOM_EAGER = True
    old = services.job_enqueue(task="diagnostics.fail", params={"kind": "permanent"})
    old.refresh_from_db()
    assert old.status == JobStatus.FAILED

    new = services.job_retry(job=old)

    stored = Job.objects.get(pk=new.pk)
    assert stored.status == JobStatus.FAILED
    assert stored.retry_of_id == old.pk


# --- selectors -------------------------------------------------------------------------------------


def test_users_see_their_own_jobs_and_staff_see_all(stub, alice, bob, operator):
    alices = services.job_enqueue(task="diagnostics.noop", requested_by=alice)
    bobs = services.job_enqueue(task="diagnostics.noop", requested_by=bob)
    nobodys = services.job_enqueue(task="diagnostics.noop")

    assert list(selectors.job_list(user=alice)) == [alices]
    assert list(selectors.job_list(user=operator)) == [nobodys, bobs, alices]
    assert selectors.job_get(user=alice, job_id=bobs.pk) is None
    assert selectors.job_get(user=operator, job_id=bobs.pk) == bobs
    assert selectors.job_get(user=AnonymousUser(), job_id=nobodys.pk) is None


def test_the_job_list_filters_by_status_and_task(stub, alice):
    noop = services.job_enqueue(task="diagnostics.noop", requested_by=alice)
    failed = finish(services.job_enqueue(task="diagnostics.noop", requested_by=alice), JobStatus.FAILED)
    sleep = services.job_enqueue(task="diagnostics.sleep", params={"seconds": 0}, requested_by=alice)

    assert list(selectors.job_list(user=alice, status="FAILED")) == [failed]
    assert list(selectors.job_list(user=alice, task="diagnostics.sleep")) == [sleep]
    assert list(selectors.job_list(user=alice, status="READY", task="diagnostics.noop")) == [noop]
