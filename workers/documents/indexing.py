"""Embedding a document: chunk its text, embed the chunks, replace its stored chunks.

Plain functions called by the documents.* jobs (and usable from a shell or a test without a broker);
`progress(done, total, message)` is the running job's progress callback.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import transaction

from workers.documents.models import Chunk, Document, content_hash
from workers.errors import PermanentError
from workers.lib.chunking import chunk_text
from workers.lib.embedding import EmbeddingBackend, get_backend, vector_to_bytes

Progress = Callable[[int, int | None, str], None]

# How many times one job re-embeds a document whose text changed while it was being embedded (the
# enqueue of that change was refused as a duplicate of this running job). Past it, the nightly
# reconcile picks the document up.
MAX_CATCH_UPS = 3


def _no_progress(done: int, total: int | None, message: str) -> None:
    return None


def document_embed(
    *, document_id: int, backend: EmbeddingBackend | None = None, progress: Progress = _no_progress
) -> dict[str, Any]:
    """Embed the document unless its stored chunks already match its text.

    Returns `{"skipped": True, ...}` when there was nothing to do, else
    `{"document_id", "chunks", "dim", "backend"}`. PermanentError for an unknown or empty document.
    """
    backend = backend or get_backend()
    result: dict[str, Any] = {"document_id": document_id, "skipped": True}
    for _ in range(MAX_CATCH_UPS):
        document = Document.objects.filter(pk=document_id).first()
        if document is None:
            raise PermanentError(f"document {document_id} does not exist")
        if document.is_embedded and document.chunks.exists():
            return result
        result = _embed_text(document, backend, progress)
    return result


def _embed_text(document: Document, backend: EmbeddingBackend, progress: Progress) -> dict[str, Any]:
    text = document.text
    pieces = chunk_text(text, size=settings.GREENROOM_CHUNK_SIZE, overlap=settings.GREENROOM_CHUNK_OVERLAP)
    if not pieces:
        raise PermanentError(f"document {document.pk} has no text to embed")
    batch = max(1, settings.GREENROOM_EMBEDDING_BATCH)
    rows: list[Chunk] = []
    progress(0, len(pieces), f"embedding {len(pieces)} chunks")
    for first in range(0, len(pieces), batch):
        group = pieces[first : first + batch]
        vectors = backend.embed([piece.text for piece in group])
        for piece, vector in zip(group, vectors, strict=True):
            rows.append(
                Chunk(
                    document_id=document.pk,
                    position=piece.position,
                    text=piece.text,
                    start=piece.start,
                    end=piece.end,
                    vector=vector_to_bytes(vector),
                    dim=int(vector.shape[0]),
                    backend=backend.name,
                )
            )
        progress(len(rows), len(pieces), f"embedded {len(rows)} of {len(pieces)} chunks")
    # The hash of the text we embedded, not the document's current one: if the text changed
    # meanwhile, the document still reads as "not embedded" and is embedded again.
    with transaction.atomic():
        if not Document.objects.filter(pk=document.pk).update(embedded_hash=content_hash(text)):
            raise PermanentError(f"document {document.pk} was deleted while it was being embedded")
        Chunk.objects.filter(document_id=document.pk).delete()
        Chunk.objects.bulk_create(rows)
    return {"document_id": document.pk, "chunks": len(rows), "dim": backend.dim, "backend": backend.name}
