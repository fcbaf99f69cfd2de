"""Models of the pdf app: a report with sections and a long table of entries (e.g. protocol labels)."""

from __future__ import annotations

from typing import ClassVar

from django.conf import settings
from django.db import models
from django.utils import timezone


class Report(models.Model):
    """A document that `pdf.build_report` renders: title, sections, then a table of entries."""

    title = models.CharField(max_length=200)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="pdf_reports")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering: ClassVar[list[str]] = ["-created_at", "-pk"]

    def __str__(self) -> str:
        return self.title


class ReportSection(models.Model):
    """A heading and its body text; paragraphs are separated by blank lines."""

    report = models.ForeignKey(Report, on_delete=models.CASCADE, related_name="sections")
    position = models.PositiveIntegerField(default=0)
    heading = models.CharField(max_length=200)
    body = models.TextField(blank=True, default="")

    class Meta:
        ordering: ClassVar[list[str]] = ["position", "pk"]
        indexes: ClassVar[list[models.Index]] = [
            models.Index(fields=["report", "position"], name="pdf_section_order"),
        ]

    def __str__(self) -> str:
        return self.heading


class ReportEntry(models.Model):
    """One row of the report's table; a report may hold tens of thousands (read in keyset pages)."""

    report = models.ForeignKey(Report, on_delete=models.CASCADE, related_name="entries")
    position = models.PositiveIntegerField(default=0)
    label = models.CharField(max_length=200)
    code = models.CharField(max_length=50, blank=True, default="")
    description = models.TextField(blank=True, default="")

    class Meta:
        ordering: ClassVar[list[str]] = ["position", "pk"]
        verbose_name_plural = "report entries"
        indexes: ClassVar[list[models.Index]] = [
            # The renderer pages through entries by (position, id): this index serves that scan.
            models.Index(fields=["report", "position", "id"], name="pdf_entry_order"),
        ]

    def __str__(self) -> str:
        return self.label
