"""Admin for database schedules: a catalogue-backed form, run history, "Run now", and the code table."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from schedules.firing import schedule_fire
from schedules.models import Fire, Schedule
from schedules.periodic import periodic_jobs, timezone_name
from workers import catalogue
from workers.admin_display import job_badge
from workers.errors import InvalidParams, UnknownTask

# Rows of run history shown on a schedule's page.
HISTORY_ROWS = 20


class ScheduleForm(forms.ModelForm):
    task = forms.ChoiceField(choices=(), help_text="A job from the catalogue.")

    class Meta:
        model = Schedule
        fields = ("name", "task", "cron", "timezone", "params", "enabled", "misfire_policy", "misfire_cap")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        choices = [(spec.name, spec.name) for spec in catalogue.all_jobs()]
        current = self.instance.task if self.instance.pk else None
        if current and catalogue.get(current) is None:
            choices.insert(0, (current, f"{current} (not in the catalogue)"))
        self.fields["task"].choices = choices  # type: ignore[attr-defined]


@admin.register(Schedule)
class ScheduleAdmin(admin.ModelAdmin):
    form = ScheduleForm
    list_display = ("name", "task", "cron", "timezone", "enabled", "misfire_policy", "next_fire_at",
                    "last_fired_slot", "error")
    list_filter = ("enabled", "task")
    search_fields = ("name", "task")
    readonly_fields = ("next_fire_at", "last_fired_slot", "last_error", "run_history")
    actions = ("run_now",)
    change_list_template = "admin/schedules/schedule/change_list.html"

    @admin.display(description="last error")
    def error(self, schedule: Schedule) -> str:
        return schedule.last_error[:80]

    @admin.display(description="run history")
    def run_history(self, schedule: Schedule) -> str:
        fires = list(Fire.objects.filter(schedule=schedule).select_related("job")[:HISTORY_ROWS])
        if not fires:
            return "—"
        rows = format_html_join(
            "", "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            ((fire.slot.isoformat(), job_badge(fire.job), fire.note) for fire in fires),
        )
        return format_html("<table><tr><th>slot (UTC)</th><th>job</th><th>note</th></tr>{}</table>", rows)

    @admin.action(description="Run now (enqueue one job per selected schedule)")
    def run_now(self, request: HttpRequest, queryset: QuerySet[Schedule]) -> None:
        now = timezone.now().replace(microsecond=0)
        for schedule in queryset:
            try:
                fire = schedule_fire(schedule_key=f"manual:{schedule.key}", slot=now, task=schedule.task,
                                     params=schedule.params, schedule=schedule, requested_by=request.user)
            except (UnknownTask, InvalidParams) as exc:
                self.message_user(request, f"{schedule}: {exc}", messages.ERROR)
                continue
            if fire is None:
                self.message_user(request, f"{schedule}: already run this second", messages.WARNING)
            elif fire.job is None:
                self.message_user(request, f"{schedule}: {fire.note}", messages.WARNING)
            else:
                self.message_user(request, f"{schedule}: enqueued job {fire.job.pk}", messages.SUCCESS)

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        extra_context = {**(extra_context or {}), "periodic_jobs": periodic_jobs(),
                         "periodic_timezone": timezone_name()}
        return super().changelist_view(request, extra_context)
