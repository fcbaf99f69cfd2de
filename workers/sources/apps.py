"""The sources domain app (issue 3)."""

from __future__ import annotations

from django.apps import AppConfig


class SourcesConfig(AppConfig):
    name = "workers.sources"
    label = "sources"
    default_auto_field = "django.db.models.BigAutoField"
