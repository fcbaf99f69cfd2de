"""LLM API validation jobs.

- `llm.validate_api` `{"api_id": n}` (interactive): list one API's models, record status, latency and
  models on its row. Unknown or inactive API → FAILED at once; network trouble, 5xx and 429 retry
  (a 429/503 Retry-After is honoured up to max_backoff); 401/403/404/bad JSON fail at once.
- `llm.validate_all` `{}` (batch): validate every active API in turn, one bad API not stopping the
  rest; returns a summary. At most one runs at a time.
"""

from __future__ import annotations

import logging
from typing import Any

import pydantic
from periodiq import cron

from workers.catalogue import NoParams, job
from workers.context import current_job
from workers.errors import PermanentError
from workers.lib.llm import redact
from workers.llm.models import LlmApi
from workers.llm.services import llm_api_validate

logger = logging.getLogger(__name__)


class ValidateApiParams(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")

    api_id: int = pydantic.Field(ge=1)


# Someone clicked "Validate now": a few quick retries (0.5 s, 1 s, 2 s … up to a 10 s Retry-After),
# and a time limit well above the HTTP timeouts of workers.lib.llm (5 s connect + 15 s read).
@job(
    "llm.validate_api",
    queue="interactive",
    params=ValidateApiParams,
    max_retries=3,
    min_backoff=0.5,
    max_backoff=10,
    time_limit=60,
    hard_time_limit=90,
    unique_key=lambda params: f"llm.validate_api:{params['api_id']}",
)
def validate_api(*, api_id: int) -> dict[str, int]:
    api = LlmApi.objects.filter(pk=api_id).first()
    if api is None:
        raise PermanentError(f"LLM API {api_id} does not exist")
    if not api.is_active:
        raise PermanentError(f"LLM API {api_id} ({api.name}) is inactive; activate it to validate it")
    ctx = current_job()
    ctx.progress(0, 1, f"listing the models of {api.name}")
    listing, sync = llm_api_validate(api=api)
    ctx.progress(1, 1, f"{sync.models} models")
    return {
        "api_id": api.pk,
        "latency_ms": listing.latency_ms,
        "models": sync.models,
        "added": sync.added,
        "removed": sync.removed,
    }


# Periodic or on demand: no one is waiting. Failures of single APIs are part of the result, so the
# job itself only fails when the database does; two patient retries for that.
@job(
    "llm.validate_all",
    queue="batch",
    params=NoParams,
    max_retries=2,
    min_backoff=30,
    max_backoff=300,
    time_limit=1800,
    hard_time_limit=1900,
    unique_key=lambda params: "llm.validate_all",
    periodic=cron("0 * * * *"),
    why="notice a revoked key or a dead endpoint within the hour",
)
def validate_all() -> dict[str, Any]:
    ctx = current_job()
    apis = list(LlmApi.objects.filter(is_active=True).order_by("pk"))
    results: list[dict[str, Any]] = []
    ctx.progress(0, len(apis), f"{len(apis)} active APIs")
    for done, api in enumerate(apis, start=1):
        try:
            llm_api_validate(api=api)
            results.append({"api_id": api.pk, "name": api.name, "ok": True, "error": ""})
        except Exception as exc:  # noqa: BLE001 - one bad API must not stop the rest; recorded on its row
            error = redact(str(exc), api.api_key) or type(exc).__name__
            results.append({"api_id": api.pk, "name": api.name, "ok": False, "error": error})
        ctx.progress(done, len(apis), f"validated {api.name} ({done} of {len(apis)})")
    successful = sum(1 for r in results if r["ok"])
    logger.info("validated %d LLM APIs: %d ok, %d failed", len(results), successful, len(results) - successful)
    return {"tested": len(results), "successful": successful, "failed": len(results) - successful, "results": results}
