"""Admin of the documents app: documents with their embedding state, and an "Embed now" action.

Saving a document in the admin goes through the services, so that changed text is re-embedded.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import admin, messages
from django.db.models import Count, QuerySet
from django.http import HttpRequest

from workers.admin_display import job_badge
from workers.documents.models import Document
from workers.documents.services import EMBED_TASK, document_embed_enqueue
from workers.selectors import job_latest


@admin.register(Document)
class DocumentAdmin(admin.ModelAdmin):
    list_display = ("title", "source", "path", "removed", "embedded", "chunk_count", "embed_job", "updated_at")
    list_filter = ("removed", "source")
    search_fields = ("title", "path")
    list_select_related = ("source",)
    readonly_fields = ("content_hash", "embedded_hash", "created_at", "updated_at")
    actions = ("embed_now",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Document]:
        return super().get_queryset(request).annotate(chunk_total=Count("chunks"))

    @admin.display(boolean=True, description="embedded?")
    def embedded(self, document: Document) -> bool:
        return document.is_embedded

    @admin.display(description="chunks")
    def chunk_count(self, document: Any) -> int:
        return int(getattr(document, "chunk_total", 0))

    @admin.display(description="latest embed job")
    def embed_job(self, document: Document) -> str:
        return job_badge(job_latest(task=EMBED_TASK, document_id=document.pk))

    def save_model(self, request: HttpRequest, obj: Document, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if "text" in form.changed_data or not change:
            if settings.GREENROOM_EMBED_ON_SAVE and obj.text.strip() and not obj.removed:
                document_embed_enqueue(document=obj, requested_by=request.user)

    @admin.action(description="Embed now", permissions=["change"])
    def embed_now(self, request: HttpRequest, queryset: QuerySet[Document]) -> None:
        queued = skipped = 0
        for document in queryset:
            if document_embed_enqueue(document=document, requested_by=request.user) is None:
                skipped += 1
            else:
                queued += 1
        self.message_user(request, f"{queued} embed job(s) queued; {skipped} already queued or running.",
                          messages.SUCCESS)
