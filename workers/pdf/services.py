"""Writes of the pdf app: ask for a build, and the clean-up of built files.

`pdf_delete_expired` and `pdf_delete_orphans` are called by the nightly `maintenance.cleanup_files`
job; both only ever touch MEDIA_ROOT/pdf/.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.utils import timezone

from workers import services
from workers.errors import DuplicateJob
from workers.models import Job, JobStatus
from workers.pdf import conf
from workers.pdf.models import Report
from workers.pdf.selectors import BUILD_TASK

# A file without a successful job is left alone this long (seconds): a build moves its file into
# place just before its job is marked SUCCESSFUL, and a temporary file is written for the whole
# build, which the job's hard time limit keeps well under this.
ORPHAN_GRACE = 3600
# Job ids looked up per query by the clean-up.
LOOKUP_BATCH = 500


def pdf_build_request(*, report: Report, requested_by: Any) -> tuple[Job, bool]:
    """Enqueue a build of `report`, or return the one already queued or running: (job, created).

    Raises DuplicateJob only when the running build cannot be found (it ended in between twice).
    """
    for _ in range(2):
        try:
            job = services.job_enqueue(task=BUILD_TASK, params={"report_id": report.pk}, requested_by=requested_by)
        except DuplicateJob as duplicate:
            existing = Job.objects.filter(pk=str(duplicate.existing_id)).first() if duplicate.existing_id else None
            if existing is not None:
                return existing, False
            continue  # it finished between our insert and our look-up: the key is free again
        return job, True
    raise DuplicateJob(None)


def _pdf_files(directory: Path) -> Iterable[tuple[Path, uuid.UUID | None]]:
    """Built files (`<job id>.pdf`, with their id) and anything else (None) in the directory."""
    if not directory.is_dir():
        return
    for path in directory.iterdir():
        if not path.is_file():
            continue
        try:
            job_id = uuid.UUID(path.stem) if path.suffix == ".pdf" else None
        except ValueError:
            job_id = None
        yield path, job_id


def _batches[T](items: list[T], size: int) -> Iterable[list[T]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _unlink(path: Path) -> int:
    """Delete a file; its size, or 0 if it was already gone (a second clean-up running at once)."""
    try:
        size = path.stat().st_size
        path.unlink()
    except FileNotFoundError:
        return 0
    return size


def pdf_delete_expired(*, now: datetime | None = None) -> dict[str, int]:
    """Delete built PDFs whose job finished more than GREENROOM_PDF_RETENTION_DAYS ago.

    Returns {"deleted": files, "bytes": freed, "kept": files still within retention}.
    """
    settings = conf.get()
    cutoff = (now or timezone.now()) - timedelta(days=settings.retention_days)
    built = {job_id: path for path, job_id in _pdf_files(settings.directory) if job_id is not None}
    deleted = freed = 0
    for batch in _batches(sorted(built), LOOKUP_BATCH):
        expired = Job.objects.filter(
            pk__in=batch, task=BUILD_TASK, status=JobStatus.SUCCESSFUL, finished_at__lt=cutoff
        ).values_list("pk", flat=True)
        for job_id in expired:
            freed += _unlink(built[job_id])
            deleted += 1
    return {"deleted": deleted, "bytes": freed, "kept": len(built) - deleted}


def pdf_delete_orphans(*, now: datetime | None = None) -> dict[str, int]:
    """Delete files in MEDIA_ROOT/pdf/ that no successful build job owns, once an hour old.

    That is: leftover temporary files of killed builds, files whose job row is gone or did not
    succeed, and anything else put there. Returns {"temporary", "orphans", "bytes"}.
    """
    directory = conf.get().directory
    oldest = (now.timestamp() if now else time.time()) - ORPHAN_GRACE
    old = [(path, job_id) for path, job_id in _pdf_files(directory) if _mtime(path) < oldest]
    temporary = orphans = freed = 0
    for path, job_id in old:
        if job_id is None:  # not a built file: a temporary one (".<id>.*.tmp") or a stranger
            freed += _unlink(path)
            if path.name.startswith(".") and path.name.endswith(".tmp"):
                temporary += 1
            else:
                orphans += 1
    candidates = {job_id: path for path, job_id in old if job_id is not None}
    for batch in _batches(sorted(candidates), LOOKUP_BATCH):
        owned = set(
            Job.objects.filter(pk__in=batch, task=BUILD_TASK, status=JobStatus.SUCCESSFUL).values_list("pk", flat=True)
        )
        for job_id in batch:
            if job_id not in owned:
                freed += _unlink(candidates[job_id])
                orphans += 1
    return {"temporary": temporary, "orphans": orphans, "bytes": freed}


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return float("inf")  # gone already: never old enough to delete
