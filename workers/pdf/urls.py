"""URLs of the pdf app."""

from __future__ import annotations

from django.urls import URLPattern

app_name = "pdf"
urlpatterns: list[URLPattern] = []
