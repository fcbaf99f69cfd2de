"""URLs of the documents app."""

from __future__ import annotations

from django.urls import URLPattern

app_name = "documents"
urlpatterns: list[URLPattern] = []
