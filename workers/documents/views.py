"""Search views: `GET /documents/search/?q=` (JSON API) and `GET /documents/search/page/` (HTML)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from workers.documents.selectors import SearchHit, document_search
from workers.views import api_view, error

MAX_QUERY_LENGTH = 1000
MAX_LIMIT = 50


def _limit(request: HttpRequest) -> int:
    try:
        return max(1, min(MAX_LIMIT, int(request.GET.get("limit", "10"))))
    except ValueError:
        return 10


def hit_to_json(hit: SearchHit) -> dict[str, Any]:
    document = hit.document
    return {
        "document_id": document.pk,
        "title": document.title,
        "source": document.source.name if document.source else None,
        "path": document.path,
        "snippet": hit.snippet,
        "score": hit.score,
    }


@api_view({"GET"})
def search(request: HttpRequest, user: Any) -> JsonResponse:
    """Documents most similar to `q`, best first."""
    query = request.GET.get("q", "").strip()
    if not query:
        return error(400, "'q' must be a non-empty search text")
    if len(query) > MAX_QUERY_LENGTH or "\x00" in query:
        return error(400, f"'q' must be at most {MAX_QUERY_LENGTH} characters, without NUL")
    hits = document_search(query=query, limit=_limit(request))
    return JsonResponse({"query": query, "results": [hit_to_json(hit) for hit in hits]})


@login_required
def search_page(request: HttpRequest) -> HttpResponse:
    """A search box and its results (auto-escaped template)."""
    query = request.GET.get("q", "").strip()[:MAX_QUERY_LENGTH].replace("\x00", "")
    hits = document_search(query=query, limit=_limit(request)) if query else []
    return render(request, "documents/search.html", {"query": query, "hits": hits})
