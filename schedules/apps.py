"""The schedules app: periodic jobs and admin-editable schedules (issue 4 fills it in)."""

from __future__ import annotations

from django.apps import AppConfig


class SchedulesConfig(AppConfig):
    name = "schedules"
    verbose_name = "Greenroom schedules"
