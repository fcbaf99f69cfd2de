"""The schedules app: periodic jobs in code, admin-editable schedules, and the scheduler."""

from __future__ import annotations

from django.apps import AppConfig


class SchedulesConfig(AppConfig):
    name = "schedules"
    verbose_name = "Greenroom schedules"

    def ready(self) -> None:
        from schedules import checks  # noqa: F401 - registers the system checks
