"""The job list's filter form: turns the query string into `queries.JobFilters`."""

from __future__ import annotations

from django import forms

from workers import catalogue
from workers.dashboard.queries import JobFilters
from workers.models import JobStatus


class JobFilterForm(forms.Form):
    """GET /dashboard/jobs/?status=&task=&queue=&user=&since=&until= (every field optional)."""

    status = forms.ChoiceField(required=False, choices=[("", "any status"), *JobStatus.choices])
    task = forms.CharField(required=False, max_length=100,
                           widget=forms.TextInput(attrs={"list": "task-names", "placeholder": "any task"}))
    queue = forms.ChoiceField(required=False, choices=[("", "any queue"), *((q, q) for q in catalogue.QUEUES)])
    user = forms.CharField(required=False, max_length=150, widget=forms.TextInput(attrs={"placeholder": "username"}))
    since = forms.DateTimeField(required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    until = forms.DateTimeField(required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))

    def filters(self) -> JobFilters:
        """The valid fields as filters; an invalid field is left out (and shown as an error)."""
        self.is_valid()
        data = getattr(self, "cleaned_data", {})
        return JobFilters(
            status=data.get("status") or None,
            task=(data.get("task") or "").strip() or None,
            queue=data.get("queue") or None,
            user=(data.get("user") or "").strip() or None,
            since=data.get("since"),
            until=data.get("until"),
        )


def task_names() -> list[str]:
    """The catalogue's job names, for the task field's suggestions."""
    return sorted(spec.name for spec in catalogue.all_jobs())
