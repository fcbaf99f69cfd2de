"""The pdf app: reports and their PDF builds."""

from __future__ import annotations

from django.apps import AppConfig


class PdfConfig(AppConfig):
    name = "workers.pdf"
    label = "pdf"
    default_auto_field = "django.db.models.BigAutoField"
