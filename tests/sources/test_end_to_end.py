"""Through real worker processes and Redis: a directory sync whose changed documents get embedded."""

from __future__ import annotations

from tests.support.workers import wait_for, worker_program
from workers.documents.models import Chunk, Document
from workers.models import Job, JobStatus
from workers.services import job_enqueue
from workers.sources.models import Source

from .conftest import write


def finished(task: str, count: int):
    jobs = list(Job.objects.filter(task=task, status__in=(JobStatus.SUCCESSFUL, JobStatus.FAILED)))
    return jobs if len(jobs) >= count else None


def test_sync_and_embedding_on_real_workers(start_workers, tmp_path):
    # Given a worker on the default and batch queues, and a folder of two documents and an empty one
    start_workers(worker_program("worker", queues=["default", "batch"]))
    root = tmp_path / "docs"
    write(root, {"tea.md": "# Tea\nSteep green tea for three minutes.", "plants.md": "# Plants\nWater sparingly.",
                 "empty.md": ""})
    source = Source.objects.create(name="docs", location=str(root))

    # When the source is synced
    sync = job_enqueue(task="sources.sync_source", params={"source_id": source.pk})

    # Then the sync succeeds and the two documents with text are embedded by their own jobs
    [done] = wait_for(lambda: finished("sources.sync_source", 1), timeout=60, what="the sync")
    assert done.pk == sync.pk and done.status == JobStatus.SUCCESSFUL, done.error_message
    assert done.result["created"] == 3
    embeds = wait_for(lambda: finished("documents.embed_document", 2), timeout=60, what="the embeds")
    assert {job.status for job in embeds} == {JobStatus.SUCCESSFUL}
    assert Chunk.objects.filter(document__path="tea.md").count() == 1

    # And an empty document sent to embedding fails readably, as does an unknown one
    empty = Document.objects.get(path="empty.md")
    bad = job_enqueue(task="documents.embed_document", params={"document_id": empty.pk})
    unknown = job_enqueue(task="documents.embed_document", params={"document_id": 999_999})
    for job, message in ((bad, f"document {empty.pk} has no text to embed"), (unknown, "does not exist")):
        failed = wait_for(lambda job=job: Job.objects.filter(pk=job.pk, status=JobStatus.FAILED).first(),
                          timeout=30, what="a failed embed")
        assert message in failed.error_message
