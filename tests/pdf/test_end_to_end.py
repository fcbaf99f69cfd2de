"""`pdf.build_report` through the HTTP API, run by real worker processes on the real broker."""

from __future__ import annotations

from django.test import Client

from tests.api_fixtures import token_header
from tests.pdf.conftest import make_report
from tests.support.workers import wait_for, worker_program
from workers import services
from workers.models import Job, JobStatus


def interactive_worker(media_root):
    # The worker writes where this process reads: the test's own MEDIA_ROOT.
    return worker_program("pdf", queues=["interactive"], MEDIA_ROOT=str(media_root))


def test_a_report_is_built_by_a_worker_and_downloaded_by_its_owner_only(start_workers, media_root,
                                                                         django_user_model):
    # Given a report long enough to take a moment, its owner and another user
    alice = django_user_model.objects.create_user("alice")
    bob = django_user_model.objects.create_user("bob")
    report = make_report(alice, entries=3000)
    owner, other, anonymous = Client(), Client(), Client()
    owner.defaults.update(token_header(alice))
    other.defaults.update(token_header(bob))

    # When the owner asks for its PDF twice, before and while a worker builds it
    first = owner.post(f"/pdf/reports/{report.pk}/")
    start_workers(interactive_worker(media_root))
    job_id = first.json()["id"]
    # (its first progress write, with the total, comes as the build starts; ~100 pages take seconds)
    wait_for(lambda: Job.objects.filter(pk=job_id, status=JobStatus.RUNNING, progress_total=3002).exists(),
             timeout=30, interval=0.05, what="the build to report progress")
    second = owner.post(f"/pdf/reports/{report.pk}/")

    # Then both answers are 202 with the same job, whose status URL is the Location
    assert first.status_code == 202
    assert set(first.json()) == {"id", "status", "url", "page"}
    assert first["Location"] == first.json()["url"] == f"/pdf/status/{job_id}/"
    assert second.status_code == 202
    assert second.json()["id"] == job_id

    # When the build is done, the status URL redirects to the file
    done = wait_for(lambda: Job.objects.filter(pk=job_id, status__in=[JobStatus.SUCCESSFUL, JobStatus.FAILED]).first(),
                    timeout=60, what="the build to finish")
    assert done.status == JobStatus.SUCCESSFUL, done.error_message
    assert done.result["path"] == f"pdf/{job_id}.pdf"
    assert done.result["pages"] > 50
    status = owner.get(f"/pdf/status/{job_id}/")
    assert status.status_code == 302
    assert status["Location"] == f"/pdf/files/{job_id}.pdf"

    # Then the owner downloads it
    download = owner.get(status["Location"])
    assert download.status_code == 200
    assert download["Content-Type"] == "application/pdf"
    content = b"".join(download.streaming_content)
    assert content.startswith(b"%PDF-")
    assert len(content) == done.result["bytes"]
    # and nobody else can: another user gets 404 (as if it did not exist), an anonymous one 401
    assert other.get(f"/pdf/status/{job_id}/").status_code == 404
    assert other.get(f"/pdf/files/{job_id}.pdf").status_code == 404
    assert other.post(f"/pdf/reports/{report.pk}/").status_code == 404
    assert anonymous.get(f"/pdf/status/{job_id}/").status_code == 401
    assert anonymous.get(f"/pdf/files/{job_id}.pdf").status_code == 401

    # And an unknown report fails at once, with a message a person can read
    missing = services.job_enqueue(task="pdf.build_report", params={"report_id": 987654}, requested_by=alice)
    failed = wait_for(lambda: Job.objects.filter(pk=missing.pk, status=JobStatus.FAILED).first(), timeout=30,
                      what="the unknown report's build to fail")
    assert failed.attempts == 1
    assert failed.error_class == "workers.errors.PermanentError"
    assert "report 987654 does not exist" in failed.error_message
    body = owner.get(f"/pdf/status/{missing.pk}/").json()
    assert body["status"] == "FAILED"
    assert "report 987654 does not exist" in body["error"]["message"]
