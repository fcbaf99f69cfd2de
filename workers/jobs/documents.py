"""Document embedding jobs.

- `documents.embed_document` `{"document_id": n}`: chunk and embed one document (a no-op, result
  `{"skipped": true}`, when its chunks already match its text). At most one per document.
- `documents.embed_batch` `{"document_ids": [n, ...] | null, "scope": "..."}`: embed many documents
  (null: every document not removed), recording per-document errors instead of stopping. At most one
  per scope.
"""

from __future__ import annotations

import logging
from typing import Any

import pydantic

from workers.catalogue import job
from workers.context import current_job
from workers.documents.indexing import document_embed
from workers.documents.models import Document
from workers.errors import GreenroomError
from workers.lib.embedding import get_backend

logger = logging.getLogger(__name__)

# Errors kept in a batch's result; the count of failures is always exact.
MAX_BATCH_ERRORS = 100


class EmbedDocumentParams(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")

    document_id: int = pydantic.Field(ge=1)


class EmbedBatchParams(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")

    document_ids: list[int] | None = pydantic.Field(default=None, max_length=100_000)
    scope: str = pydantic.Field(default="all", min_length=1, max_length=100, pattern=r"^[\w.:-]+$")


@job(
    "documents.embed_document",
    queue="default",
    params=EmbedDocumentParams,
    # Retries only matter for a remote embedding API (TransientError); WordLlama runs locally.
    max_retries=3,
    min_backoff=5,
    max_backoff=300,
    time_limit=600,
    unique_key=lambda params: f"documents.embed_document:{params['document_id']}",
)
def embed_document(*, document_id: int) -> dict[str, Any]:
    return document_embed(document_id=document_id, progress=current_job().progress)


@job(
    "documents.embed_batch",
    queue="batch",
    params=EmbedBatchParams,
    # Documents already embedded are skipped cheaply, so a retry resumes where the batch stopped.
    max_retries=2,
    time_limit=3 * 3600,
    unique_key=lambda params: f"documents.embed_batch:{params['scope']}",
)
def embed_batch(*, document_ids: list[int] | None, scope: str) -> dict[str, Any]:
    ctx = current_job()
    if document_ids is None:
        ids = list(Document.objects.filter(removed=False).order_by("pk").values_list("pk", flat=True))
    else:
        ids = list(dict.fromkeys(document_ids))  # de-duplicated, order kept
    backend = get_backend()  # one backend (one HTTP configuration, one loaded model) for the batch
    counts = {"embedded": 0, "skipped": 0, "failed": 0}
    errors: list[dict[str, Any]] = []
    for done, document_id in enumerate(ids):
        ctx.progress(done, len(ids), _summary(counts))
        try:
            result = document_embed(document_id=document_id, backend=backend)
        except (GreenroomError, ValueError, OSError) as exc:
            # One bad document must not stop the batch. TransientErrors are recorded too: the
            # nightly reconcile enqueues the documents that are still not embedded.
            counts["failed"] += 1
            logger.warning("embed_batch %s: document %s failed: %s", scope, document_id, exc)
            if len(errors) < MAX_BATCH_ERRORS:
                errors.append({"document_id": document_id, "error": f"{type(exc).__name__}: {exc}"})
            continue
        counts["skipped" if result.get("skipped") else "embedded"] += 1
    ctx.progress(len(ids), len(ids), _summary(counts))
    return {**counts, "errors": errors}


def _summary(counts: dict[str, int]) -> str:
    return ", ".join(f"{count} {name}" for name, count in counts.items())
