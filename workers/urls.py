"""URLs of the jobs API, mounted under /api/."""

from __future__ import annotations

from django.urls import path

from workers import events, views

app_name = "workers"
urlpatterns = [
    path("jobs/", views.jobs, name="jobs"),
    path("jobs/<str:job_id>/", views.job_detail, name="job-detail"),
    path("jobs/<str:job_id>/cancel/", views.job_cancel, name="job-cancel"),
    path("jobs/<str:job_id>/retry/", views.job_retry, name="job-retry"),
    path("jobs/<str:job_id>/events/", events.job_stream, name="job-events"),
]
