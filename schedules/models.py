"""Database schedules (edited in the admin) and the fires of every schedule, code or database."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone as django_timezone

from schedules.cron import Cron, InvalidCron
from workers.errors import InvalidParams, UnknownTask
from workers.models import Job
from workers.services import job_validate_params

# Upper bound of misfire_cap: a catch-up must not flood the queues.
MAX_MISFIRE_CAP = 1000


class MisfirePolicy(models.TextChoices):
    SKIP = "skip", "Skip missed runs"
    ONCE = "once", "Run one catch-up"
    ALL = "all", "Run every missed slot (up to the cap)"


class Schedule(models.Model):
    """A job enqueued at every slot of a cron expression, in a time zone."""

    name = models.CharField(max_length=100, unique=True)
    task = models.CharField(max_length=100, help_text="A job name from the catalogue.")
    cron = models.CharField(max_length=100, help_text="minute hour day month weekday (0, 7, sun: Sunday).")
    timezone = models.CharField(max_length=64, default="UTC", help_text="IANA name, e.g. Europe/Lisbon.")
    params = models.JSONField(default=dict, blank=True, help_text="The job's parameters, as a JSON object.")
    enabled = models.BooleanField(default=True)
    misfire_policy = models.CharField(max_length=4, choices=MisfirePolicy.choices, default=MisfirePolicy.SKIP)
    misfire_cap = models.PositiveIntegerField(default=10, help_text="Most missed slots run by the 'all' policy.")
    # Slots at or before this are never fired: set on creation and when cron, zone or enabled change.
    active_since = models.DateTimeField(default=django_timezone.now, editable=False)
    # The latest slot the scheduler has dealt with (fired, or passed over by the misfire policy).
    handled_until = models.DateTimeField(null=True, blank=True, editable=False)
    last_fired_slot = models.DateTimeField(null=True, blank=True, editable=False)
    next_fire_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_error = models.TextField(blank=True, default="", editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering: ClassVar[list[str]] = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def key(self) -> str:
        """The schedule key of its fires: 'db:<pk>'."""
        return f"db:{self.pk}"

    def parsed_cron(self) -> Cron:
        return Cron(self.cron, self.timezone)

    def clean(self) -> None:
        errors: dict[str, str] = {}
        try:
            Cron(self.cron, "UTC")
        except InvalidCron as exc:
            errors["cron"] = str(exc)
        try:
            Cron("* * * * *", self.timezone)
        except InvalidCron as exc:
            errors["timezone"] = str(exc)
        try:
            _, self.params = job_validate_params(task=self.task, params=self.params)
        except UnknownTask:
            errors["task"] = f"unknown job {self.task!r}: pick one from the catalogue"
        except InvalidParams as exc:
            details = "; ".join(f"{e['field']}: {e['message']}" for e in exc.errors) or str(exc)
            errors["params"] = f"invalid params for {self.task}: {details}"
        if self.misfire_cap > MAX_MISFIRE_CAP:
            errors["misfire_cap"] = f"at most {MAX_MISFIRE_CAP}"
        if errors:
            raise ValidationError(errors)

    def save(self, *args: Any, **kwargs: Any) -> None:
        now = django_timezone.now()
        if self.pk is None or self._timing_changed():
            # A new or re-timed schedule starts now: it never fires the slots before the edit.
            self.active_since = now
            self.handled_until = None
            if kwargs.get("update_fields") is not None:
                kwargs["update_fields"] = {*kwargs["update_fields"], "active_since", "handled_until", "next_fire_at"}
        self.next_fire_at = self.compute_next_fire(now)
        super().save(*args, **kwargs)

    def compute_next_fire(self, now: datetime) -> datetime | None:
        if not self.enabled:
            return None
        try:
            return self.parsed_cron().next_after(max(now, self.handled_until or now))
        except InvalidCron:
            return None

    def _timing_changed(self) -> bool:
        old = Schedule.objects.filter(pk=self.pk).values("cron", "timezone", "enabled").first()
        if old is None:
            return True
        return (old["cron"], old["timezone"], old["enabled"]) != (self.cron, self.timezone, self.enabled)


class CodeScheduleSwitch(models.Model):
    """An operator's on/off switch for a code-defined periodic job (the dashboard's Schedules page).

    No row means enabled. GREENROOM_PERIODIC = {"<name>": "off"} still turns an entry off for good;
    this switch is for pausing one at run time without a deploy.
    """

    name = models.CharField(max_length=100, unique=True)  # the periodic entry's (= its job's) name
    enabled = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.name}: {'on' if self.enabled else 'off'}"


def code_schedules_switched_off() -> set[str]:
    """Names of the code-defined periodic jobs an operator switched off."""
    return set(CodeScheduleSwitch.objects.filter(enabled=False).values_list("name", flat=True))


class Fire(models.Model):
    """One slot of one schedule, fired once: the unique (schedule_key, slot) pair is the guarantee."""

    schedule_key = models.CharField(max_length=120)  # 'code:<name>', 'db:<pk>' or 'manual:db:<pk>'
    slot = models.DateTimeField()
    schedule = models.ForeignKey(Schedule, null=True, blank=True, on_delete=models.SET_NULL, related_name="fires")
    job = models.ForeignKey(Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    note = models.CharField(max_length=300, blank=True, default="")
    created_at = models.DateTimeField(default=django_timezone.now)

    class Meta:
        ordering: ClassVar[list[str]] = ["-slot"]
        constraints: ClassVar[list[models.BaseConstraint]] = [
            models.UniqueConstraint(fields=["schedule_key", "slot"], name="fire_one_per_slot"),
        ]

    def __str__(self) -> str:
        return f"{self.schedule_key} @ {self.slot.isoformat()}"


class SchedulerLease(models.Model):
    """The scheduler lease kept in the database (schedules/lease.py, `DatabaseLease`): one row per lease.

    Used when the broker is not Redis (RabbitMQ): `holder` has it until `expires_at`, by the database's
    clock; every change is one conditional UPDATE.
    """

    name = models.CharField(max_length=200, primary_key=True)
    holder = models.CharField(max_length=200, blank=True, default="")
    expires_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name}: {self.holder or 'free'} until {self.expires_at.isoformat()}"
