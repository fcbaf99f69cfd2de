"""Writes on LLM APIs: validate one (call it, record how it went, sync its model list).

Jobs, views and the admin call these; none of them writes LlmApi or LlmModel rows by hand.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import httpx
from django.db import transaction
from django.utils import timezone

from workers.errors import GreenroomError
from workers.lib.llm import ModelListing, list_models, redact
from workers.llm.models import LlmApi, LlmApiStatus, LlmModel

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelSync:
    """How a listing changed an API's models: how many it lists, came (back), went."""

    models: int
    added: int
    removed: int


def llm_api_validate(
    *, api: LlmApi, timeout: httpx.Timeout | None = None, transport: httpx.BaseTransport | None = None
) -> tuple[ModelListing, ModelSync]:
    """List `api`'s models and record the outcome on its row, success or failure.

    A failure is recorded (last_status=failed, last_error) and then re-raised, so that the job ends
    FAILED or retries according to the error's class.
    """
    try:
        listing = list_models(base_url=api.base_url, api_key=api.api_key, timeout=timeout, transport=transport)
    except GreenroomError as exc:
        llm_api_record_failure(api=api, error=str(exc))
        raise
    except Exception as exc:  # a bug, not a network failure: still recorded, without the key
        llm_api_record_failure(api=api, error=redact(f"{type(exc).__name__}: {exc}", api.api_key))
        raise
    sync = llm_api_record_success(api=api, listing=listing)
    logger.info("LLM API %s (%s) ok in %d ms: %d models, %d added, %d removed",
                api.pk, api.name, listing.latency_ms, sync.models, sync.added, sync.removed)
    return listing, sync


def llm_api_record_failure(*, api: LlmApi, error: str) -> None:
    """Mark the API failed now with `error` (a message that never holds the key); models are kept."""
    api.last_status = LlmApiStatus.FAILED
    api.last_checked_at = timezone.now()
    api.last_error = redact(error, api.api_key)[:2000]
    api.save(update_fields=["last_status", "last_checked_at", "last_error", "updated_at"])
    logger.warning("LLM API %s (%s) failed validation: %s", api.pk, api.name, api.last_error)


def llm_api_record_success(*, api: LlmApi, listing: ModelListing) -> ModelSync:
    """Mark the API ok and sync its models: new ones created, missing ones unavailable, returning ones back."""
    now = timezone.now()
    seen = set(listing.model_ids)
    with transaction.atomic():
        known = dict(LlmModel.objects.filter(api=api).values_list("model_id", "available"))
        new = [m for m in listing.model_ids if m not in known]
        returning = [m for m in seen if m in known and not known[m]]
        # ignore_conflicts: a concurrent validation of the same API may have created the row already.
        LlmModel.objects.bulk_create(
            [LlmModel(api=api, model_id=m, first_seen=now, last_seen=now, available=True) for m in new],
            ignore_conflicts=True,
        )
        LlmModel.objects.filter(api=api, model_id__in=seen).update(last_seen=now, available=True)
        removed = LlmModel.objects.filter(api=api, available=True).exclude(model_id__in=seen).update(available=False)
        api.last_status = LlmApiStatus.OK
        api.last_checked_at = now
        api.last_latency_ms = listing.latency_ms
        api.last_error = ""
        api.save(update_fields=["last_status", "last_checked_at", "last_latency_ms", "last_error", "updated_at"])
    return ModelSync(models=len(seen), added=len(new) + len(returning), removed=removed)
