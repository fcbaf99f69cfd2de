"""Admin of the sources app: sources with their latest sync, and "Sync now" / "Sync all active"."""

from __future__ import annotations

import json

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from workers.admin_display import job_badge
from workers.errors import DuplicateJob
from workers.selectors import job_latest
from workers.sources.models import Source
from workers.sources.services import SYNC_TASK, source_sync_all_request, source_sync_enqueue


@admin.register(Source)
class SourceAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "location", "active", "last_synced_at", "sync_job", "result_summary")
    list_filter = ("kind", "active")
    search_fields = ("name", "location")
    readonly_fields = ("last_synced_at", "last_result_pretty", "created_at", "updated_at")
    exclude = ("last_result",)
    actions = ("sync_now", "sync_all_active")

    @admin.display(description="latest sync job")
    def sync_job(self, source: Source) -> str:
        return job_badge(job_latest(task=SYNC_TASK, source_id=source.pk))

    @admin.display(description="last result")
    def result_summary(self, source: Source) -> str:
        result = source.last_result or {}
        keys = ("created", "updated", "skipped", "removed", "failed")
        return ", ".join(f"{result[key]} {key}" for key in keys if key in result) or "—"

    @admin.display(description="last result")
    def last_result_pretty(self, source: Source) -> str:
        return format_html("<pre>{}</pre>", json.dumps(source.last_result, indent=2, ensure_ascii=False))

    @admin.action(description="Sync now", permissions=["change"])
    def sync_now(self, request: HttpRequest, queryset: QuerySet[Source]) -> None:
        queued = skipped = 0
        for source in queryset:
            if source_sync_enqueue(source=source, requested_by=request.user) is None:
                skipped += 1
            else:
                queued += 1
        self.message_user(request, f"{queued} sync(s) queued; {skipped} already queued or running.", messages.SUCCESS)

    @admin.action(description="Sync all active sources", permissions=["change"])
    def sync_all_active(self, request: HttpRequest, queryset: QuerySet[Source]) -> None:
        try:
            source_sync_all_request(requested_by=request.user)
        except DuplicateJob:
            self.message_user(request, "A sync of all sources is already queued or running.", messages.WARNING)
            return
        self.message_user(request, "Sync of all active sources queued.", messages.SUCCESS)
