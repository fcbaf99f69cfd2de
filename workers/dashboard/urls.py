"""URLs of the operators' dashboard, mounted at /dashboard/ (every page staff only)."""

from __future__ import annotations

from django.urls import path

from workers.dashboard import failure_views, job_views, schedule_views, views

app_name = "dashboard"
urlpatterns = [
    path("", views.index, name="index"),
    path("events/", views.overview_stream, name="events"),
    path("jobs/", job_views.job_list, name="jobs"),
    path("jobs/progress/", job_views.job_progress, name="job-progress"),
    path("jobs/<uuid:job_id>/", job_views.job_detail, name="job"),
    path("jobs/<uuid:job_id>/cancel/", job_views.job_cancel, name="job-cancel"),
    path("jobs/<uuid:job_id>/retry/", job_views.job_retry, name="job-retry"),
    path("failures/", failure_views.failures, name="failures"),
    path("failures/group/", failure_views.failure_group, name="failure-group"),
    path("failures/confirm/", failure_views.failures_confirm, name="failures-confirm"),
    path("workers/", views.workers, name="workers"),
    path("schedules/", schedule_views.schedules, name="schedules"),
    path("schedules/toggle/", schedule_views.schedule_toggle, name="schedule-toggle"),
]
