"""The admin: the job ledger with filters and retry/cancel actions, and API tokens.

Actions call the same services as the API; the admin never edits a job row by hand.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from workers import services
from workers.errors import GreenroomError
from workers.models import ApiToken, Job


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = ("id", "task", "queue", "status", "progress", "attempts", "error_summary", "created_at",
                    "finished_at")
    list_filter = ("status", "queue", "task")
    search_fields = ("=id", "task", "unique_key", "error_class", "error_message")
    date_hierarchy = "created_at"
    actions = ("retry_jobs", "cancel_jobs")
    list_select_related = ("requested_by",)
    readonly_fields = [f.name for f in Job._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # jobs are enqueued through services, not typed in

    def has_delete_permission(self, request: HttpRequest, obj: Job | None = None) -> bool:
        return bool(request.user.is_superuser)

    @admin.display(description="progress")
    def progress(self, job: Job) -> str:
        if job.progress_total:
            return format_html(
                '<progress max="{}" value="{}"></progress> {}% {}',
                job.progress_total, job.progress_done, job.percent, job.progress_message,
            )
        return job.progress_message or "—"

    @admin.display(description="error")
    def error_summary(self, job: Job) -> str:
        if not job.error_class:
            return "—"
        return format_html("<code>{}</code>: {}", job.error_class.rsplit(".", 1)[-1], job.error_message[:120])

    @admin.action(description="Retry selected failed/cancelled jobs", permissions=["change"])
    def retry_jobs(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        self._apply(request, queryset, lambda job: services.job_retry(job=job, requested_by=request.user), "retried")

    @admin.action(description="Cancel selected jobs", permissions=["change"])
    def cancel_jobs(self, request: HttpRequest, queryset: QuerySet[Job]) -> None:
        self._apply(request, queryset, lambda job: services.job_cancel(job=job), "cancelled")

    def _apply(self, request: HttpRequest, queryset: QuerySet[Job], action: Any, verb: str) -> None:
        done, refused = 0, []
        for job in queryset:
            try:
                action(job)
                done += 1
            except GreenroomError as exc:
                refused.append(f"{job.pk}: {exc}")
        if done:
            self.message_user(request, f"{done} job(s) {verb}.", messages.SUCCESS)
        for reason in refused:
            self.message_user(request, reason, messages.WARNING)


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("prefix", "name", "user", "created_at", "last_used_at")
    readonly_fields = ("prefix", "key_hash", "created_at", "last_used_at")
    search_fields = ("name", "user__username", "prefix")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # keys are shown once: create them with `manage.py create_api_token`
