"""Reads on LLM APIs, and an API as JSON (never with its key)."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Q, QuerySet
from django.urls import reverse

from workers.llm.models import LlmApi
from workers.selectors import job_latest
from workers.serializers import iso


def llm_api_list() -> QuerySet[LlmApi]:
    """Every API by name, with `models_available` counted."""
    return LlmApi.objects.annotate(models_available=Count("models", filter=Q(models__available=True))).order_by("name")


def llm_api_to_json(api: LlmApi) -> dict[str, Any]:
    """An API as the JSON endpoints show it: status and a key hint, never the key."""
    latest = job_latest(task="llm.validate_api", api_id=api.pk)
    return {
        "id": api.pk,
        "name": api.name,
        "base_url": api.base_url,
        "is_active": api.is_active,
        "key_hint": api.key_hint,
        "last_status": api.last_status,
        "last_checked_at": iso(api.last_checked_at),
        "last_latency_ms": api.last_latency_ms,
        "last_error": api.last_error,
        "models_available": getattr(api, "models_available", None),
        "latest_job": None if latest is None else {"id": str(latest.pk), "status": latest.status},
        "validate_url": reverse("llm:api-validate", args=[api.pk]),
    }
