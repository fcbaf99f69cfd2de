"""Nightly and maintenance jobs (latency class `batch`): each reports what it did in its result.

- `maintenance.prune_jobs`: deletes finished jobs older than GREENROOM_JOB_RETENTION_DAYS, in batches,
  and the fleet registry's rows of processes gone for a day.
- `maintenance.cleanup_files`: deletes generated PDFs past GREENROOM_PDF_RETENTION_DAYS, orphan PDFs
  (no successful job) and leftover temporary files.
- `maintenance.reconcile`: the heal pass — stale RUNNING jobs back to READY, lost messages and
  unpublished rows published again, and documents whose embeddings are missing or out of date
  queued for embedding.
"""

from __future__ import annotations

from datetime import timedelta

import pydantic
from django.conf import settings
from django.utils import timezone
from periodiq import cron

from workers import conf, publishing, registry
from workers.catalogue import job
from workers.context import current_job
from workers.lib.pruning import prune_finished_jobs


class NoParams(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")


class PruneParams(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")

    # Overrides GREENROOM_JOB_RETENTION_DAYS for this run (e.g. an operator's one-off clean-up).
    older_than_days: int | None = pydantic.Field(default=None, ge=1, le=36_500)


@job("maintenance.prune_jobs", queue="batch", params=PruneParams, max_retries=2, time_limit=1800,
     unique_key=lambda params: "maintenance.prune_jobs",
     periodic=cron("30 3 * * *"), why="delete finished jobs past GREENROOM_JOB_RETENTION_DAYS")
def prune_jobs(*, older_than_days: int | None = None) -> dict[str, int]:
    gone_processes = registry.prune_processes()
    days = older_than_days or settings.GREENROOM_JOB_RETENTION_DAYS
    if not days:
        return {"deleted": 0, "batches": 0, "retention_days": 0, "processes_deleted": gone_processes}
    result = prune_finished_jobs(before=timezone.now() - timedelta(days=days), on_progress=current_job().progress)
    return {**result, "retention_days": days, "processes_deleted": gone_processes}


@job("maintenance.cleanup_files", queue="batch", params=NoParams, max_retries=2, time_limit=1800,
     unique_key=lambda params: "maintenance.cleanup_files",
     periodic=cron("45 3 * * *"), why="delete expired and orphan PDFs and temporary files")
def cleanup_files() -> dict[str, dict[str, int]]:
    from workers.pdf.services import pdf_delete_expired, pdf_delete_orphans

    return {"expired_pdfs": pdf_delete_expired(), "orphan_pdfs": pdf_delete_orphans()}


@job("maintenance.reconcile", queue="batch", params=NoParams, max_retries=1, time_limit=300,
     unique_key=lambda params: "maintenance.reconcile",
     periodic=cron("* * * * *"), why="heal pass: stale RUNNING jobs, lost messages, missing embeddings")
def reconcile() -> dict[str, int]:
    from workers.documents.services import document_enqueue_missing_embeddings

    cfg = conf.get()
    return {
        "stale_requeued": publishing.requeue_stale(stale_after=cfg.stale_after),
        "lost_republished": publishing.republish_lost(older_than=cfg.republish_after),
        "published": publishing.relay_unpublished(grace=cfg.relay_grace),
        "embeddings_queued": document_enqueue_missing_embeddings(),
    }
