"""The workers app: the job ledger, the catalogue, the API and the admin."""

from __future__ import annotations

from importlib import import_module
from importlib.util import find_spec

from django.apps import AppConfig, apps


class WorkersConfig(AppConfig):
    name = "workers"
    verbose_name = "Greenroom jobs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from workers import checks  # noqa: F401  (registers the broker eviction check)

        # Load every app's `jobs` module so that the catalogue knows all jobs by name: views and
        # services then enqueue by name without importing job modules themselves.
        for config in apps.get_app_configs():
            module = f"{config.name}.jobs"
            if find_spec(module) is not None:
                import_module(module)
