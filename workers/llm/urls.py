"""URLs of the llm app."""

from __future__ import annotations

from django.urls import URLPattern

app_name = "llm"
urlpatterns: list[URLPattern] = []
