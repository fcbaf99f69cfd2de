"""URLs of the end users' job pages, mounted at /jobs/."""

from __future__ import annotations

from django.urls import path

from workers.dashboard import job_page

app_name = "jobs"
urlpatterns = [
    path("<uuid:job_id>/", job_page.job_page, name="job"),
]
