"""Similarity search: the selector, the JSON endpoint and the HTML page."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.api_fixtures import token_header
from workers.documents.demo import DEMO_DOCUMENTS
from workers.documents.demo import seed as seed_documents
from workers.documents.models import Document
from workers.documents.selectors import document_search

pytest_plugins = ["tests.api_fixtures"]


@pytest.fixture
def demo(greenroom_eager, transactional_db):
    seed_documents()
    seed_documents()  # idempotent
    assert Document.objects.count() == len(DEMO_DOCUMENTS)


def test_search_returns_the_relevant_document_first(demo):
    hits = document_search(query="how long should green tea steep", limit=3)

    assert hits[0].document.title == "Brewing tea"
    assert len(hits) == 3
    assert hits[0].score > hits[1].score


def test_removed_documents_are_not_found(demo):
    Document.objects.filter(title="Brewing tea").update(removed=True)

    hits = document_search(query="how long should green tea steep")

    assert "Brewing tea" not in [hit.document.title for hit in hits]


def test_search_endpoint_answers_json(demo, make_user):
    user = make_user("reader")

    response = Client().get("/documents/search/", {"q": "database backups", "limit": "1"}, **token_header(user))

    assert response.status_code == 200
    [hit] = response.json()["results"]
    assert hit["title"] == "Backing up PostgreSQL"
    assert set(hit) == {"document_id", "title", "source", "path", "snippet", "score"}


def test_search_endpoint_refuses_an_empty_query(db, make_user):
    response = Client().get("/documents/search/", {"q": "  "}, **token_header(make_user("reader")))

    assert response.status_code == 400


def test_search_endpoint_requires_authentication(db):
    assert Client().get("/documents/search/", {"q": "tea"}).status_code == 401


def test_search_page_escapes_the_query_and_shows_hits(demo, make_user):
    client = Client()
    client.force_login(make_user("reader"))

    response = client.get("/documents/search/page/", {"q": "<script>tea</script>"})

    assert response.status_code == 200
    html = response.content.decode()
    assert "<script>tea" not in html
    assert "&lt;script&gt;tea" in html
    assert "Brewing tea" in html


def test_search_page_requires_login(db):
    response = Client().get("/documents/search/page/")

    assert response.status_code == 302
