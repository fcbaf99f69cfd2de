"""maintenance.cleanup_files: expired and orphan PDFs go, a fresh successful build stays."""

from __future__ import annotations

import os
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from workers import services
from workers.models import Job, JobStatus


@pytest.mark.django_db
def test_cleanup_files_deletes_expired_and_orphan_pdfs_and_reports_it(greenroom_eager, settings, tmp_path: Path):
    # Given a PDF folder with an expired build, a fresh build and an hour-old orphan
    settings.MEDIA_ROOT = tmp_path
    settings.GREENROOM_PDF_RETENTION_DAYS = 7
    folder = tmp_path / "pdf"
    folder.mkdir()
    now = timezone.now()
    expired = Job.objects.create(task="pdf.build_report", queue="interactive", status=JobStatus.SUCCESSFUL,
                                 finished_at=now - timedelta(days=8))
    fresh = Job.objects.create(task="pdf.build_report", queue="interactive", status=JobStatus.SUCCESSFUL,
                               finished_at=now - timedelta(days=1))
    for job in (expired, fresh):
        (folder / f"{job.pk}.pdf").write_bytes(b"%PDF-1.4 test")
    orphan = folder / f"{uuid.uuid4()}.pdf"
    orphan.write_bytes(b"%PDF-1.4 orphan")
    hour_ago = time.time() - 7200
    for path in folder.iterdir():
        os.utime(path, (hour_ago, hour_ago))

    # When the nightly clean-up runs
    job = services.job_enqueue(task="maintenance.cleanup_files")

    # Then the expired and orphan files are gone, the fresh one stays, and the result says so
    assert job.status == JobStatus.SUCCESSFUL, job.error_message
    assert job.result["expired_pdfs"]["deleted"] == 1
    assert job.result["orphan_pdfs"]["orphans"] == 1
    assert sorted(p.name for p in folder.iterdir()) == [f"{fresh.pk}.pdf"]
