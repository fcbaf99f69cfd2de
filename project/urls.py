"""Greenroom's URL map: the admin, the jobs API and the health checks."""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from workers import health

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("workers.urls")),
    path("pdf/", include("workers.pdf.urls")),
    path("documents/", include("workers.documents.urls")),
    path("sources/", include("workers.sources.urls")),
    path("llm/", include("workers.llm.urls")),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
]
