"""Reads on documents: similarity search over the stored chunk vectors."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from workers.documents.models import Chunk, Document
from workers.lib.embedding import EmbeddingBackend, get_backend

SNIPPET_LENGTH = 300


@dataclass(frozen=True)
class SearchHit:
    """A document and its best-matching chunk."""

    document: Document
    snippet: str
    score: float


def document_search(*, query: str, limit: int = 10, backend: EmbeddingBackend | None = None) -> list[SearchHit]:
    """Documents whose chunks are most similar to `query`, best first (one hit per document).

    Cosine similarity with numpy over every chunk embedded by the current backend (vectors are
    stored normalised, so it is a dot product): fine for thousands of chunks, not for millions.
    Removed documents are left out.
    """
    query = query.strip()
    if not query or limit <= 0:
        return []
    backend = backend or get_backend()
    rows = list(
        Chunk.objects.filter(document__removed=False, backend=backend.name)
        .values_list("document_id", "text", "vector", "dim")
    )
    wanted = backend.embed([query])[0]
    # Only chunks of the query's size can be compared (a backend's model may have changed).
    rows = [row for row in rows if row[3] == wanted.shape[0]]
    if not rows:
        return []
    matrix = np.frombuffer(b"".join(bytes(row[2]) for row in rows), dtype=np.float32).reshape(len(rows), -1)
    scores = matrix @ wanted
    best: dict[int, tuple[float, str]] = {}
    for index in np.argsort(-scores, kind="stable"):
        document_id, text = rows[index][0], rows[index][1]
        if document_id not in best:
            best[document_id] = (float(scores[index]), text)
            if len(best) >= limit:
                break
    documents = Document.objects.select_related("source").in_bulk(list(best))
    return [
        SearchHit(document=documents[pk], snippet=text[:SNIPPET_LENGTH], score=round(score, 4))
        for pk, (score, text) in best.items()
        if pk in documents
    ]
