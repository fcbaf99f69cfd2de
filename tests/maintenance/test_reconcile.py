"""maintenance.reconcile: the heal pass of the ledger, as a job that reports what it healed."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from dramatiq import Message

from workers import services
from workers.models import Job, JobStatus


def test_reconcile_requeues_stale_running_jobs_and_publishes_unpublished_ones(transactional_db, greenroom_stub_broker,
                                                                            settings):
    # Given a RUNNING job whose worker stopped beating long ago, and a row never published
    old = timezone.now() - timedelta(minutes=10)
    stale = Job.objects.create(task="diagnostics.noop", queue="interactive", status=JobStatus.RUNNING, created_at=old,
                               attempts=1, started_at=old, heartbeat_at=old, enqueued_at=old)
    unpublished = Job.objects.create(task="diagnostics.noop", queue="interactive", created_at=old)

    # When the reconcile job runs (inline)
    settings.GREENROOM_EAGER = True
    job = services.job_enqueue(task="maintenance.reconcile")

    # Then it healed both and said so, and both messages are in the interactive queue
    assert job.status == JobStatus.SUCCESSFUL
    assert job.result == {"stale_requeued": 1, "lost_republished": 0, "published": 2, "embeddings_queued": 0}
    assert Job.objects.get(pk=stale.pk).status == JobStatus.READY
    queued = {Message.decode(data).message_id for data in greenroom_stub_broker.queues["interactive"].queue}
    assert {str(stale.pk), str(unpublished.pk)} <= queued


def test_reconcile_queues_embeddings_for_documents_whose_chunks_are_out_of_date(transactional_db,
                                                                              greenroom_stub_broker, settings):
    from workers.documents.models import Document

    # Given a document whose text changed since it was embedded (embedding on save is off)
    settings.GREENROOM_EMBED_ON_SAVE = False
    document = Document.objects.create(title="Guide", text="How to run the workers.")
    assert document.embedded_hash != document.content_hash

    # When reconcile runs
    settings.GREENROOM_EAGER = True
    job = services.job_enqueue(task="maintenance.reconcile")

    # Then it queued (and, eagerly, ran) one embed job for it
    assert job.result["embeddings_queued"] == 1
    embed = Job.objects.get(task="documents.embed_document")
    assert embed.params == {"document_id": document.pk}
    assert embed.status == JobStatus.SUCCESSFUL
