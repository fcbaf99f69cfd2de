"""URLs of the llm app, mounted under /llm/."""

from __future__ import annotations

from django.urls import URLPattern, path

from workers.llm import views

app_name = "llm"
urlpatterns: list[URLPattern] = [
    path("apis/", views.api_list, name="api-list"),
    path("apis/<int:pk>/validate/", views.api_validate, name="api-validate"),
]
