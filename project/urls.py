"""Greenroom's URL map: the admin, end users' login, the jobs API, the dashboard, metrics and health."""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from workers import health
from workers.metrics import metrics_view

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),  # login/logout for end users (LOGIN_URL)
    path("api/", include("workers.urls")),
    path("pdf/", include("workers.pdf.urls")),
    path("documents/", include("workers.documents.urls")),
    path("sources/", include("workers.sources.urls")),
    path("llm/", include("workers.llm.urls")),
    path("dashboard/", include("workers.dashboard.urls")),
    path("jobs/", include("workers.dashboard.job_page_urls")),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics_view, name="metrics"),
]
