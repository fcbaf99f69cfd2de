"""Documentation source jobs.

- `sources.sync_source` `{"source_id": n}`: read the source's matching files into documents (created,
  updated, skipped by content hash; removed when gone) and enqueue embeds of the changed ones. At
  most one per source.
- `sources.sync_all` `{}`: enqueue `sources.sync_source` for every active source not already syncing
  (one bulk write: `services.job_enqueue_many`).
"""

from __future__ import annotations

import pydantic
from periodiq import cron

from workers.catalogue import NoParams, job
from workers.context import current_job
from workers.sources.models import Source
from workers.sources.services import source_sync_enqueue_many
from workers.sources.syncing import source_sync


class SyncSourceParams(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")

    source_id: int = pydantic.Field(ge=1)


@job(
    "sources.sync_source",
    queue="default",
    params=SyncSourceParams,
    # A sync is idempotent (unchanged files are skipped), so a retry after a database or network
    # blip is cheap; a source that cannot be read at all fails at once (PermanentError).
    max_retries=2,
    min_backoff=10,
    max_backoff=120,
    time_limit=1800,
    unique_key=lambda params: f"sources.sync_source:{params['source_id']}",
)
def sync_source(*, source_id: int) -> dict[str, object]:
    return source_sync(source_id=source_id, progress=current_job().progress)


@job(
    "sources.sync_all",
    queue="batch",
    params=NoParams,
    # It only enqueues; a rerun skips the sources it already queued (their syncs are active).
    max_retries=1,
    time_limit=300,
    unique_key=lambda _params: "sources.sync_all",
    periodic=cron("0 2 * * *"),
    why="refresh every documentation source overnight",
)
def sync_all() -> dict[str, int]:
    outcome = source_sync_enqueue_many(sources=Source.objects.filter(active=True).order_by("pk").only("pk"))
    return {"queued": len(outcome.jobs), "skipped": len(outcome.duplicates)}
