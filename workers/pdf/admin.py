"""Admin of the pdf app: reports with their sections and entries, the latest build, a Build action.

The action goes through the same service as the API (`pdf_build_request`); the admin never writes
job rows itself.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from workers.admin_display import job_badge
from workers.errors import GreenroomError
from workers.pdf import services
from workers.pdf.models import Report, ReportEntry, ReportSection
from workers.pdf.selectors import BUILD_TASK
from workers.selectors import job_latest

# Above this many entries the report's page shows no entries inline (a form with one field set per
# entry would be huge, and Django refuses posts over DATA_UPLOAD_MAX_NUMBER_FIELDS): they are edited
# in the entries list instead, filtered by report.
MAX_INLINE_ENTRIES = 150


class ReportSectionInline(admin.StackedInline):
    model = ReportSection
    extra = 0


class ReportEntryInline(admin.TabularInline):
    model = ReportEntry
    extra = 0
    # A report may hold thousands of entries: a plain text field for the description keeps rows short.
    fields = ("position", "label", "code", "description")
    classes = ("collapse",)


@admin.register(Report)
class ReportAdmin(admin.ModelAdmin):
    list_display = ("title", "owner", "updated_at", "entry_count", "latest_pdf")
    list_select_related = ("owner",)
    search_fields = ("title", "owner__username")
    raw_id_fields = ("owner",)
    actions = ("build_pdf",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Report]:
        return super().get_queryset(request).annotate(entry_total=Count("entries"))

    def get_inlines(self, request: HttpRequest, obj: Report | None) -> list[type[admin.options.InlineModelAdmin]]:
        if obj is not None and obj.entries.count() > MAX_INLINE_ENTRIES:
            return [ReportSectionInline]
        return [ReportSectionInline, ReportEntryInline]

    @admin.display(description="entries")
    def entry_count(self, report: Report) -> str:
        url = reverse("admin:pdf_reportentry_changelist") + f"?report__id__exact={report.pk}"
        return format_html('<a href="{}">{}</a>', url, getattr(report, "entry_total", "?"))

    @admin.display(description="latest PDF build")
    def latest_pdf(self, report: Report) -> str:
        return job_badge(job_latest(task=BUILD_TASK, report_id=report.pk))

    @admin.action(description="Build PDF")
    def build_pdf(self, request: HttpRequest, queryset: QuerySet[Report]) -> None:
        started, running, refused = 0, [], []
        for report in queryset:
            try:
                job, created = services.pdf_build_request(report=report, requested_by=request.user)
            except GreenroomError as exc:
                refused.append(f"{report}: {exc}")
                continue
            if created:
                started += 1
            else:
                running.append(f"{report}: a build is already {job.status.lower()} ({job.pk})")
        if started:
            self.message_user(request, f"{started} PDF build(s) enqueued.", messages.SUCCESS)
        for line in running + refused:
            self.message_user(request, line, messages.WARNING)


@admin.register(ReportEntry)
class ReportEntryAdmin(admin.ModelAdmin):
    list_display = ("label", "code", "report", "position")
    list_filter = (("report", admin.RelatedOnlyFieldListFilter),)
    search_fields = ("label", "code")
    raw_id_fields = ("report",)
    list_select_related = ("report",)
