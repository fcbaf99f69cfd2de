"""The sources app: documentation sources (directories, git repositories) synced into documents."""

from __future__ import annotations

from django.apps import AppConfig


class SourcesConfig(AppConfig):
    name = "workers.sources"
    label = "sources"
    default_auto_field = "django.db.models.BigAutoField"
