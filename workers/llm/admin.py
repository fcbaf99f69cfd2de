"""Admin of the llm app: LLM APIs with a write-only key, their models, and validation actions.

The stored key is never rendered: the form has a write-only password field to set a new one, and
pages show `key_hint` (`sk-…abcd`) at most. Actions enqueue jobs through services.job_enqueue.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest

from workers import services
from workers.admin_display import job_badge
from workers.errors import DuplicateJob, GreenroomError
from workers.llm.models import LlmApi, LlmModel
from workers.selectors import job_latest


class LlmApiForm(forms.ModelForm):
    """The API's fields plus a write-only key: empty keeps the stored key."""

    new_api_key = forms.CharField(
        label="API key",
        required=False,
        strip=True,
        max_length=500,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Write-only: type a key to replace the stored one; leave empty to keep it.",
    )
    clear_api_key = forms.BooleanField(label="Remove the stored key", required=False)

    class Meta:
        model = LlmApi
        fields = ("name", "base_url", "is_active")

    def save(self, commit: bool = True) -> LlmApi:
        api: LlmApi = super().save(commit=False)
        if self.cleaned_data.get("new_api_key"):
            api.api_key = self.cleaned_data["new_api_key"]
        elif self.cleaned_data.get("clear_api_key"):
            api.api_key = ""
        if commit:
            api.save()
        return api


class LlmModelInline(admin.TabularInline):
    model = LlmModel
    fields = ("model_id", "available", "first_seen", "last_seen")
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ("-available", "model_id")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # models come from validations, not typed in


@admin.register(LlmApi)
class LlmApiAdmin(admin.ModelAdmin):
    form = LlmApiForm
    list_display = ("name", "base_url", "is_active", "last_status", "last_latency_ms", "models_available",
                    "latest_job", "last_checked_at")
    list_filter = ("is_active", "last_status")
    search_fields = ("name", "base_url")
    readonly_fields = ("key_hint", "last_status", "last_checked_at", "last_latency_ms", "last_error", "latest_job",
                       "created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("name", "base_url", "is_active")}),
        ("API key", {"fields": ("key_hint", "new_api_key", "clear_api_key")}),
        ("Last validation", {"fields": ("last_status", "last_checked_at", "last_latency_ms", "last_error",
                                        "latest_job")}),
        ("History", {"fields": ("created_at", "updated_at")}),
    )
    inlines = (LlmModelInline,)
    actions = ("validate_now", "validate_all_active")

    def get_queryset(self, request: HttpRequest) -> QuerySet[LlmApi]:
        return super().get_queryset(request).annotate(
            models_available_count=Count("models", filter=Q(models__available=True))
        )

    @admin.display(description="stored key")
    def key_hint(self, api: LlmApi) -> str:
        return api.key_hint or "—"

    @admin.display(description="models", ordering="models_available_count")
    def models_available(self, api: LlmApi) -> int:
        return getattr(api, "models_available_count", 0)

    @admin.display(description="latest validation")
    def latest_job(self, api: LlmApi) -> str:
        if api.pk is None:
            return "—"
        return job_badge(job_latest(task="llm.validate_api", api_id=api.pk))

    @admin.action(description="Validate now", permissions=["change"])
    def validate_now(self, request: HttpRequest, queryset: QuerySet[LlmApi]) -> None:
        queued = 0
        for api in queryset:
            if not api.is_active:
                self.message_user(request, f"{api.name}: inactive, not validated.", messages.WARNING)
                continue
            try:
                services.job_enqueue(task="llm.validate_api", params={"api_id": api.pk}, requested_by=request.user)
                queued += 1
            except DuplicateJob as exc:
                self.message_user(
                    request, f"{api.name}: a validation is already queued or running ({exc.existing_id}).",
                    messages.WARNING,
                )
            except GreenroomError as exc:
                self.message_user(request, f"{api.name}: {exc}", messages.ERROR)
        if queued:
            self.message_user(request, f"{queued} validation(s) queued.", messages.SUCCESS)

    @admin.action(description="Validate all active APIs (whatever is selected)", permissions=["change"])
    def validate_all_active(self, request: HttpRequest, queryset: QuerySet[LlmApi]) -> None:
        try:
            services.job_enqueue(task="llm.validate_all", requested_by=request.user)
        except DuplicateJob as exc:
            self.message_user(request, f"A validation of all APIs is already queued or running ({exc.existing_id}).",
                              messages.WARNING)
            return
        self.message_user(request, "Validation of all active APIs queued.", messages.SUCCESS)
