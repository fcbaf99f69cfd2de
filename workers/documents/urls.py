"""URLs of the documents app, mounted under /documents/."""

from __future__ import annotations

from django.urls import path

from workers.documents import views

app_name = "documents"
urlpatterns = [
    path("search/", views.search, name="search"),
    path("search/page/", views.search_page, name="search-page"),
]
