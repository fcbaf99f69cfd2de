"""The admin pages of documents and sources render, and their actions enqueue jobs."""

from __future__ import annotations

from django.test import Client

from workers.documents.services import document_create
from workers.models import Job
from workers.sources.models import Source

pytest_plugins = ["tests.api_fixtures"]


def admin_client(make_user) -> Client:
    client = Client()
    user = make_user("root", is_staff=True)
    user.is_superuser = True
    user.save()
    client.force_login(user)
    return client


def test_document_admin_lists_and_embeds(make_user, greenroom_stub_broker, settings):
    settings.GREENROOM_EMBED_ON_SAVE = False
    document = document_create(title="<b>Tea</b>", text="Steep it.")
    client = admin_client(make_user)

    page = client.get("/admin/documents/document/")
    response = client.post("/admin/documents/document/", {"action": "embed_now", "_selected_action": [document.pk]})

    assert page.status_code == 200
    assert "&lt;b&gt;Tea&lt;/b&gt;" in page.content.decode()
    assert response.status_code == 302
    assert Job.objects.filter(task="documents.embed_document", params__document_id=document.pk).count() == 1


def test_source_admin_lists_and_syncs(make_user, greenroom_stub_broker, tmp_path):
    source = Source.objects.create(name="docs", location=str(tmp_path), last_result={"created": 2})
    client = admin_client(make_user)

    page = client.get("/admin/sources/source/")
    client.post("/admin/sources/source/", {"action": "sync_now", "_selected_action": [source.pk]})
    client.post("/admin/sources/source/", {"action": "sync_all_active", "_selected_action": [source.pk]})
    detail = client.get(f"/admin/sources/source/{source.pk}/change/")

    assert page.status_code == 200 and "2 created" in page.content.decode()
    assert detail.status_code == 200
    assert sorted(Job.objects.values_list("task", flat=True)) == ["sources.sync_all", "sources.sync_source"]
