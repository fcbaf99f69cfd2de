"""services.job_enqueue_many: bulk rows, pipelined publish after commit, duplicates reported per item."""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from dramatiq import Message

from workers import publishing, services
from workers.errors import InvalidParams, UnknownTask
from workers.models import Job, JobStatus

NOOP = "diagnostics.noop"
SLEEP = "diagnostics.sleep"


def _queued_ids(broker, queue: str) -> set[str]:
    """Message ids (= job ids) of the messages waiting in a queue of the real Redis broker."""
    return {Message.decode(data).message_id for data in broker.client.hvals(f"{broker.namespace}:{queue}.msgs")}


def test_bulk_enqueue_writes_one_row_and_one_message_per_item(db, broker):
    # Given more items than one batch holds
    count = services.ENQUEUE_BATCH * 2 + 7

    # When they are enqueued in bulk (outside a transaction: published at once)
    outcome = services.job_enqueue_many(task=NOOP, params_list=[{} for _ in range(count)])

    # Then every item has a READY, published row and exactly one message whose id is the job's
    assert len(outcome.jobs) == count
    assert outcome.duplicates == []
    rows = Job.objects.filter(task=NOOP)
    assert rows.count() == count
    assert rows.filter(status=JobStatus.READY, enqueued_at__isnull=False).count() == count
    assert _queued_ids(broker, "interactive") == {str(job.pk) for job in outcome.jobs}
    assert broker.client.llen(f"{broker.namespace}:interactive") == count


def test_bulk_enqueue_uses_the_brokers_enqueue_many(db, broker, monkeypatch):
    batches: list[int] = []

    def enqueue_many(messages, *, batch=1000):
        batches.append(len(messages))
        for message in messages:
            broker.enqueue(message)

    monkeypatch.setattr(broker, "enqueue_many", enqueue_many, raising=False)

    outcome = services.job_enqueue_many(task=NOOP, params_list=[{}] * (publishing.PUBLISH_BATCH + 1))

    assert batches == [publishing.PUBLISH_BATCH, 1]
    assert len(_queued_ids(broker, "interactive")) == len(outcome.jobs)


def test_params_are_validated_and_stored_like_single_enqueue(db, broker):
    outcome = services.job_enqueue_many(task=SLEEP, params_list=[{"seconds": 1}, {"seconds": 0.5, "blocking": True}])

    stored = [Job.objects.get(pk=job.pk).params for job in outcome.jobs]
    assert stored[0] == services.job_enqueue(task=SLEEP, params={"seconds": 1}).params
    assert stored[1] == services.job_validate_params(task=SLEEP, params={"seconds": 0.5, "blocking": True})[1]
    # None stands for no params, as in job_enqueue
    assert services.job_enqueue_many(task=NOOP, params_list=[None]).jobs[0].params == {}


def test_bulk_rows_read_back_exactly_as_written(db, broker, django_user_model):
    # Given params whose text needs escaping in any bulk format (COPY's text format on PostgreSQL)
    awkward = "tab\there, line\nbreak, back\\slash, 'quotes\" and \\N, é ✓ \x01"
    owner = django_user_model.objects.create_user("owner")
    # When they are enqueued in bulk, with an owner, unique keys and an urgent priority
    outcome = services.job_enqueue_many(task="testing.record", params_list=[{"path": awkward}, {"path": "plain"}],
                                        requested_by=owner, unique_keys=[None, "k-1"], priority=-1)
    # Then every column reads back as written
    rows = {job.pk: job for job in Job.objects.filter(pk__in=[job.pk for job in outcome.jobs])}
    for written in outcome.jobs:
        row = rows[written.pk]
        assert (row.task, row.queue, row.params, row.status, row.requested_by_id, row.unique_key, row.priority,
                row.created_at) == (written.task, written.queue, written.params, JobStatus.READY, owner.pk,
                                    written.unique_key, -1, written.created_at)
    assert rows[outcome.jobs[0].pk].params["path"] == awkward
    assert rows[outcome.jobs[1].pk].unique_key == "k-1"


def test_one_invalid_item_enqueues_nothing(db, broker):
    params_list = [{"seconds": 1}, {"seconds": "soon"}, {"seconds": 1}, {"nope": 1}]

    with pytest.raises(InvalidParams) as refused:
        services.job_enqueue_many(task=SLEEP, params_list=params_list)

    fields = [error["field"] for error in refused.value.errors]
    assert any(field.startswith("[1].") for field in fields)
    assert any(field.startswith("[3].") for field in fields)
    assert not any(field.startswith(("[0]", "[2]")) for field in fields)
    assert Job.objects.count() == 0
    assert _queued_ids(broker, "default") == set()


def test_an_unknown_task_enqueues_nothing(db, broker):
    with pytest.raises(UnknownTask):
        services.job_enqueue_many(task="nope.never", params_list=[{}])
    assert Job.objects.count() == 0


def test_unique_keys_of_a_different_length_are_refused(db):
    with pytest.raises(ValueError, match="unique_keys"):
        services.job_enqueue_many(task=NOOP, params_list=[{}, {}], unique_keys=["a"])


def test_items_whose_key_is_active_are_skipped_and_reported(db, broker):
    # Given an active job holding key "a", and a finished one that held key "c"
    holder = services.job_enqueue(task=NOOP, unique_key="a")
    finished = services.job_enqueue(task=NOOP, unique_key="c")
    Job.objects.filter(pk=finished.pk).update(status=JobStatus.SUCCESSFUL)

    # When items with keys a, b, b (twice in the call), none, c are enqueued
    outcome = services.job_enqueue_many(
        task=NOOP, params_list=[{}] * 5, unique_keys=["a", "b", "b", None, "c"]
    )

    # Then b (first), the keyless item and c are written; a and the second b are reported
    assert [job.unique_key for job in outcome.jobs] == ["b", None, "c"]
    first_b = outcome.jobs[0]
    assert [(d.index, d.unique_key, d.existing_id) for d in outcome.duplicates] == [
        (0, "a", holder.pk), (2, "b", first_b.pk)
    ]
    assert Job.objects.filter(unique_key="b").count() == 1
    # And only the written jobs were published (besides the two single ones)
    assert _queued_ids(broker, "interactive") == {str(job.pk) for job in (holder, finished, *outcome.jobs)}


def test_declared_unique_keys_apply_to_bulk_items(db, broker):
    first = services.job_enqueue_many(task="documents.embed_document", params_list=[{"document_id": 1}])
    again = services.job_enqueue_many(
        task="documents.embed_document", params_list=[{"document_id": 1}, {"document_id": 2}]
    )

    assert [job.params for job in again.jobs] == [{"document_id": 2}]
    assert [(d.index, d.existing_id) for d in again.duplicates] == [(0, first.jobs[0].pk)]


@pytest.mark.django_db(transaction=True)
def test_jobs_are_published_only_once_the_transaction_commits(broker):
    with transaction.atomic():
        outcome = services.job_enqueue_many(task=NOOP, params_list=[{}] * 3)
        # Inside the transaction nothing is sent yet
        assert _queued_ids(broker, "interactive") == set()
    assert _queued_ids(broker, "interactive") == {str(job.pk) for job in outcome.jobs}
    assert Job.objects.filter(enqueued_at__isnull=True).count() == 0


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_bulk_enqueue_leaves_nothing(broker):
    with pytest.raises(RuntimeError), transaction.atomic():
        services.job_enqueue_many(task=NOOP, params_list=[{}] * 3)
        raise RuntimeError("the caller fails")
    assert Job.objects.count() == 0
    assert _queued_ids(broker, "interactive") == set()


def test_published_rows_are_not_published_again(db, broker):
    # Given jobs published in bulk
    outcome = services.job_enqueue_many(task=NOOP, params_list=[{}] * 10)
    marks = dict(Job.objects.values_list("pk", "enqueued_at"))

    # When the relay and a second publish_many run over them
    assert publishing.relay_unpublished(grace=0) == 0
    assert publishing.publish_many(outcome.jobs) == 0

    # Then no message was sent twice and no mark moved
    assert broker.client.llen(f"{broker.namespace}:interactive") == 10
    assert dict(Job.objects.values_list("pk", "enqueued_at")) == marks


def test_a_broker_failure_leaves_the_rows_to_the_relay(db, broker, monkeypatch):
    # Given a broker that refuses every message
    def refuse(*args, **kwargs):
        raise ConnectionError("redis is away")

    monkeypatch.setattr(broker, "enqueue", refuse)
    monkeypatch.setattr(broker, "enqueue_many", refuse, raising=False)

    # When jobs are enqueued in bulk
    outcome = services.job_enqueue_many(task=NOOP, params_list=[{}] * 5)

    # Then the call still returns its jobs, left unpublished
    assert len(outcome.jobs) == 5
    assert Job.objects.filter(enqueued_at__isnull=True).count() == 5
    # And once the broker is back the relay publishes each of them once
    monkeypatch.undo()
    assert publishing.relay_unpublished(grace=0) == 5
    assert _queued_ids(broker, "interactive") == {str(job.pk) for job in outcome.jobs}


def test_outside_a_transaction_the_rows_are_written_marked_and_no_mark_update_follows(db, broker):
    # One INSERT (COPY on PostgreSQL) per batch and no UPDATE: the rows carry their outbox mark
    with CaptureQueriesContext(connection) as queries:
        outcome = services.job_enqueue_many(task=NOOP, params_list=[{}] * 5)

    statements = [q["sql"].split()[0].upper() for q in queries.captured_queries]
    assert "UPDATE" not in statements
    marks = set(Job.objects.values_list("enqueued_at", flat=True))
    assert len(marks) == 1 and None not in marks
    assert _queued_ids(broker, "interactive") == {str(job.pk) for job in outcome.jobs}


def test_a_failed_batch_of_marked_rows_unmarks_it_and_every_later_batch(db, broker, monkeypatch):
    # Given 6 rows written already marked, published in batches of 2 by a broker that fails the second
    at = timezone.now()
    jobs = [Job.new_ready(task=NOOP, queue="interactive", params={}, requested_by_id=None, unique_key=None)
            for _ in range(6)]
    for job in jobs:
        job.enqueued_at = at
    Job.insert_many(jobs)
    real, calls = broker.enqueue_many, []

    def second_fails(messages, **options):
        calls.append(len(messages))
        if len(calls) == 2:
            raise ConnectionError("redis went away")
        return real(messages, **options)

    monkeypatch.setattr(broker, "enqueue_many", second_fails)

    # When they are published
    sent = publishing.publish_many(jobs, batch=2, marked_at=at)

    # Then the first batch is sent and keeps its mark; the others are left to the relay, unmarked
    assert sent == 2 and calls == [2, 2]
    assert _queued_ids(broker, "interactive") == {str(job.pk) for job in jobs[:2]}
    unmarked = set(Job.objects.filter(enqueued_at__isnull=True).values_list("pk", flat=True))
    assert unmarked == {job.pk for job in jobs[2:]}
    monkeypatch.undo()
    assert publishing.relay_unpublished(grace=0) == 4
    assert _queued_ids(broker, "interactive") == {str(job.pk) for job in jobs}


def test_a_cancelled_job_is_not_published(db, broker):
    outcome = services.job_enqueue_many(task=NOOP, params_list=[{}] * 2)
    Job.objects.filter(pk=outcome.jobs[0].pk).update(enqueued_at=None, status=JobStatus.CANCELLED)
    Job.objects.filter(pk=outcome.jobs[1].pk).update(enqueued_at=None)
    broker.client.flushdb()

    assert publishing.publish_many(outcome.jobs) == 1
    assert _queued_ids(broker, "interactive") == {str(outcome.jobs[1].pk)}


def test_eager_mode_runs_bulk_jobs_inline(db, greenroom_eager):
    outcome = services.job_enqueue_many(task=NOOP, params_list=[{}] * 3)

    assert [job.status for job in outcome.jobs] == [JobStatus.SUCCESSFUL] * 3
    assert all(job.result == {"ok": True} for job in outcome.jobs)
