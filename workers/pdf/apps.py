"""The pdf domain app (issue 3)."""

from __future__ import annotations

from django.apps import AppConfig


class PdfConfig(AppConfig):
    name = "workers.pdf"
    label = "pdf"
    default_auto_field = "django.db.models.BigAutoField"
