"""Writes on documents. Views, the admin, source syncs and schedules call these."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F

from workers.documents.models import Document
from workers.errors import DuplicateJob
from workers.models import Job
from workers.services import job_enqueue, job_enqueue_many

EMBED_TASK = "documents.embed_document"
BATCH_TASK = "documents.embed_batch"


def document_embed_enqueue(*, document: Document, requested_by: Any = None) -> Job | None:
    """Enqueue documents.embed_document for the document (published after commit).

    None when an embed of it is already queued or running: that job re-reads the text when it
    starts, and catches up with changes made while it runs.
    """
    try:
        return job_enqueue(task=EMBED_TASK, params={"document_id": document.pk}, requested_by=requested_by)
    except DuplicateJob:
        return None


def _embed_if_configured(document: Document, requested_by: Any) -> None:
    if settings.GREENROOM_EMBED_ON_SAVE and document.text.strip() and not document.removed:
        document_embed_enqueue(document=document, requested_by=requested_by)


@transaction.atomic
def document_create(
    *, title: str, text: str, source: Any = None, path: str = "", requested_by: Any = None
) -> Document:
    """Create a document; enqueue its embedding when GREENROOM_EMBED_ON_SAVE."""
    document = Document(title=title, text=text, source=source, path=path)
    document.full_clean()
    document.save()
    _embed_if_configured(document, requested_by)
    return document


@transaction.atomic
def document_update(
    *,
    document: Document,
    title: str | None = None,
    text: str | None = None,
    removed: bool | None = None,
    requested_by: Any = None,
) -> Document:
    """Change a document; enqueue its embedding when its text changed (and GREENROOM_EMBED_ON_SAVE)."""
    before = document.content_hash
    if title is not None:
        document.title = title
    if text is not None:
        document.text = text
    if removed is not None:
        document.removed = removed
    document.full_clean()
    document.save()
    if document.content_hash != before or not document.is_embedded:
        _embed_if_configured(document, requested_by)
    return document


def document_enqueue_missing_embeddings(*, limit: int = 500) -> int:
    """Enqueue embed jobs for up to `limit` documents whose chunks do not match their text.

    Removed and empty documents are left out, and so are documents with an embed job already
    queued or running (its unique key refuses a second one). Returns how many were enqueued.
    """
    candidates = (
        Document.objects.filter(removed=False)
        .exclude(text="")
        .exclude(embedded_hash=F("content_hash"))
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    queued = after = 0
    while queued < limit:
        # Keyset pages, each enqueued in one bulk write; the ones already queued come back as duplicates.
        ids = list(candidates.filter(pk__gt=after)[: limit - queued])
        if not ids:
            break
        after = ids[-1]
        queued += len(job_enqueue_many(task=EMBED_TASK, params_list=[{"document_id": pk} for pk in ids]).jobs)
    return queued


def document_embed_batch_enqueue(
    *, document_ids: list[int] | None, scope: str, requested_by: Any = None
) -> Job:
    """Enqueue documents.embed_batch; DuplicateJob if a batch of this scope is active."""
    return job_enqueue(
        task=BATCH_TASK, params={"document_ids": document_ids, "scope": scope}, requested_by=requested_by
    )
