"""The documents app: documents, their chunks and embeddings, similarity search."""

from __future__ import annotations

from django.apps import AppConfig


class DocumentsConfig(AppConfig):
    name = "workers.documents"
    label = "documents"
    default_auto_field = "django.db.models.BigAutoField"
