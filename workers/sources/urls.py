"""URLs of the sources app, mounted under /sources/."""

from __future__ import annotations

from django.urls import path

from workers.sources import views

app_name = "sources"
urlpatterns = [
    path("<int:pk>/sync/", views.sync, name="sync"),
]
