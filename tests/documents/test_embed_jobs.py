"""documents.embed_document and documents.embed_batch, run eagerly through the ledger."""

from __future__ import annotations

import pytest

from workers.documents.models import Chunk, Document
from workers.documents.services import (
    document_create,
    document_embed_batch_enqueue,
    document_enqueue_missing_embeddings,
    document_update,
)
from workers.errors import DuplicateJob
from workers.models import Job, JobStatus
from workers.services import job_enqueue

EMBED = "documents.embed_document"
LONG_TEXT = " ".join(f"Sentence {n} about brewing tea in a warm pot." for n in range(60))


@pytest.fixture
def eager(greenroom_eager, transactional_db, settings):
    """Jobs run inline when enqueued (after commit); small chunks so that documents have several."""
    settings.GREENROOM_CHUNK_SIZE = 300
    settings.GREENROOM_CHUNK_OVERLAP = 50


def embed(document_id: int) -> Job:
    return job_enqueue(task=EMBED, params={"document_id": document_id})


def test_creating_a_document_embeds_it(eager):
    document = document_create(title="Tea", text=LONG_TEXT)

    job = Job.objects.get(task=EMBED)
    assert job.status == JobStatus.SUCCESSFUL
    chunks = Chunk.objects.filter(document=document)
    assert job.result == {"document_id": document.pk, "chunks": chunks.count(), "dim": 256, "backend": "wordllama"}
    assert chunks.count() > 3
    assert all(len(bytes(chunk.vector)) == 256 * 4 and chunk.dim == 256 for chunk in chunks)
    # progress counted chunks, and ended complete
    assert (job.progress_done, job.progress_total) == (chunks.count(), chunks.count())
    assert job.progress_message == f"embedded {chunks.count()} of {chunks.count()} chunks"
    document.refresh_from_db()
    assert document.is_embedded


def test_embedding_again_is_a_no_op(eager):
    document = document_create(title="Tea", text=LONG_TEXT)
    before = list(Chunk.objects.filter(document=document).values_list("pk", flat=True))

    job = embed(document.pk)

    assert job.status == JobStatus.SUCCESSFUL
    assert job.result["skipped"] is True
    assert list(Chunk.objects.filter(document=document).values_list("pk", flat=True)) == before


def test_changed_text_is_embedded_again(eager):
    document = document_create(title="Tea", text=LONG_TEXT)

    document_update(document=document, text="Only one short sentence now.")

    jobs = Job.objects.filter(task=EMBED).order_by("created_at")
    assert [job.status for job in jobs] == [JobStatus.SUCCESSFUL, JobStatus.SUCCESSFUL]
    assert jobs[1].result["chunks"] == 1
    assert list(Chunk.objects.filter(document=document).values_list("text", flat=True)) == [
        "Only one short sentence now."
    ]


def test_empty_document_fails_with_a_readable_error(eager, settings):
    settings.GREENROOM_EMBED_ON_SAVE = False
    document = document_create(title="Empty", text="   ")

    job = embed(document.pk)

    assert job.status == JobStatus.FAILED
    assert job.error_message == f"document {document.pk} has no text to embed"
    assert job.attempts == 1  # permanent: not retried


def test_unknown_document_fails(eager):
    job = embed(999_999)

    assert job.status == JobStatus.FAILED
    assert "999999 does not exist" in job.error_message


def test_embed_on_save_can_be_turned_off(eager, settings):
    settings.GREENROOM_EMBED_ON_SAVE = False

    document_create(title="Tea", text=LONG_TEXT)

    assert not Job.objects.filter(task=EMBED).exists()


def test_batch_goes_on_after_a_bad_document(eager, settings):
    settings.GREENROOM_EMBED_ON_SAVE = False
    good = document_create(title="Tea", text=LONG_TEXT)
    empty = document_create(title="Empty", text="")
    other = document_create(title="Plants", text="Water houseplants sparingly.")

    job = document_embed_batch_enqueue(document_ids=[good.pk, empty.pk, 999_999, other.pk], scope="test")

    assert job.status == JobStatus.SUCCESSFUL
    assert job.result["embedded"] == 2
    assert job.result["failed"] == 2
    assert job.result["skipped"] == 0
    assert [error["document_id"] for error in job.result["errors"]] == [empty.pk, 999_999]
    assert "has no text to embed" in job.result["errors"][0]["error"]
    # progress counted documents, bad ones included
    assert (job.progress_done, job.progress_total) == (4, 4)
    # Run again: the embedded ones are skipped.
    again = document_embed_batch_enqueue(document_ids=None, scope="test")
    assert again.result["skipped"] == 2


def test_one_batch_per_scope_is_active_at_a_time(db, greenroom_stub_broker):
    first = document_embed_batch_enqueue(document_ids=None, scope="nightly")

    with pytest.raises(DuplicateJob) as refused:
        document_embed_batch_enqueue(document_ids=None, scope="nightly")

    assert refused.value.existing_id == first.pk
    document_embed_batch_enqueue(document_ids=None, scope="other")  # another scope is fine


def test_a_second_embed_of_a_queued_document_is_ignored(db, greenroom_stub_broker):
    document = document_create(title="Tea", text=LONG_TEXT)
    document_update(document=document, text=LONG_TEXT + " More.")

    assert Job.objects.filter(task=EMBED).count() == 1


def test_missing_embeddings_are_enqueued_once(db, greenroom_stub_broker, settings):
    settings.GREENROOM_EMBED_ON_SAVE = False
    docs = [document_create(title=f"Doc {n}", text=f"text {n}") for n in range(3)]
    document_create(title="Empty", text="")
    Document.objects.filter(pk=docs[2].pk).update(removed=True)

    assert document_enqueue_missing_embeddings(limit=10) == 2
    # Their jobs are still queued: nothing new to enqueue.
    assert document_enqueue_missing_embeddings(limit=10) == 0
    assert sorted(Job.objects.filter(task=EMBED).values_list("params__document_id", flat=True)) == [
        docs[0].pk, docs[1].pk
    ]
