"""URLs of the pdf app (mounted at /pdf/)."""

from __future__ import annotations

from django.urls import path

from workers.pdf import views

app_name = "pdf"
urlpatterns = [
    path("reports/<int:pk>/", views.build, name="build"),
    # Ids are parsed by the views, so that a malformed one gets the same JSON 404 as an unknown one.
    path("status/<str:job_id>/", views.status, name="status"),
    path("files/<str:filename>", views.file, name="file"),
]
