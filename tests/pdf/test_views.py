"""The pdf views without a worker: visibility, statuses, the file hand-over modes."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.api_fixtures import finish, token_header
from tests.pdf.conftest import built, make_report
from workers import services
from workers.models import Job, JobStatus

pytest_plugins = ["tests.api_fixtures"]


@pytest.fixture
def alice(make_user):
    return make_user("alice")


@pytest.fixture
def client_of():
    def make(user):
        client = Client()
        client.defaults.update(token_header(user))
        return client

    return make


def test_asking_twice_returns_the_queued_build(alice, client_of, greenroom_stub_broker):
    report = make_report(alice, entries=1)
    client = client_of(alice)

    first = client.post(f"/pdf/reports/{report.pk}/")
    second = client.post(f"/pdf/reports/{report.pk}/")

    assert first.status_code == second.status_code == 202
    assert first.json()["id"] == second.json()["id"]
    assert Job.objects.filter(task="pdf.build_report").count() == 1
    job = Job.objects.get()
    assert job.queue == "interactive"
    assert job.unique_key == f"pdf.build_report:{report.pk}"


def test_another_users_report_is_not_found_and_staff_may_build_it(alice, make_user, client_of, greenroom_stub_broker):
    report = make_report(alice, entries=1)
    bob, staff = make_user("bob"), make_user("staff", is_staff=True)

    assert client_of(bob).post(f"/pdf/reports/{report.pk}/").status_code == 404
    assert client_of(alice).post("/pdf/reports/999999/").status_code == 404
    assert Client().post(f"/pdf/reports/{report.pk}/").status_code == 401
    assert client_of(staff).post(f"/pdf/reports/{report.pk}/").status_code == 202


def test_wrong_method_is_405(alice, client_of):
    report = make_report(alice, entries=1)
    response = client_of(alice).get(f"/pdf/reports/{report.pk}/")
    assert response.status_code == 405
    assert response["Allow"] == "POST"


def test_status_of_a_queued_build_is_json_with_progress(alice, client_of, greenroom_stub_broker):
    job = services.job_enqueue(task="pdf.build_report", params={"report_id": 1}, requested_by=alice)

    response = client_of(alice).get(f"/pdf/status/{job.pk}/")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "READY"
    assert body["progress"] == {"done": 0, "total": None, "percent": None, "message": ""}
    assert body["error"] is None


def test_status_of_a_failed_build_is_200_with_the_error(alice, client_of, greenroom_stub_broker):
    job = services.job_enqueue(task="pdf.build_report", params={"report_id": 1}, requested_by=alice)
    finish(job, JobStatus.FAILED, error_class="workers.errors.PermanentError", error_message="report 1 does not exist")

    body = client_of(alice).get(f"/pdf/status/{job.pk}/").json()

    assert body["status"] == "FAILED"
    assert body["error"] == {"type": "workers.errors.PermanentError", "message": "report 1 does not exist"}


def test_unknown_malformed_and_foreign_jobs_are_404(alice, make_user, client_of, greenroom_stub_broker):
    other_task = services.job_enqueue(task="diagnostics.noop", requested_by=alice)
    build = services.job_enqueue(task="pdf.build_report", params={"report_id": 1}, requested_by=alice)
    client = client_of(alice)

    assert client.get(f"/pdf/status/{other_task.pk}/").status_code == 404  # not a pdf job
    assert client.get("/pdf/status/not-a-uuid/").status_code == 404
    assert client.get("/pdf/status/00000000-0000-0000-0000-000000000000/").status_code == 404
    assert client.get("/pdf/files/whatever.txt").status_code == 404
    assert client.get(f"/pdf/files/{build.pk}.pdf").status_code == 404  # not built yet
    assert client_of(make_user("bob")).get(f"/pdf/status/{build.pk}/").status_code == 404


def test_a_built_file_is_served_and_an_expired_one_is_gone(alice, client_of, media_root, greenroom_stub_broker):
    # Given a successful build whose file is there
    job = built(services.job_enqueue(task="pdf.build_report", params={"report_id": 1}, requested_by=alice), media_root)
    client = client_of(alice)

    # Then status redirects to the file, which Django streams
    status = client.get(f"/pdf/status/{job.pk}/")
    assert status.status_code == 302
    download = client.get(status["Location"])
    assert download.status_code == 200
    assert b"".join(download.streaming_content).startswith(b"%PDF")
    assert download["Cache-Control"] == "private, no-store"
    assert download["Content-Disposition"] == 'inline; filename="report-1.pdf"'

    # When the file has been deleted (retention), status and file answer 410
    (media_root / "pdf" / f"{job.pk}.pdf").unlink()
    assert client.get(f"/pdf/status/{job.pk}/").status_code == 410
    assert client.get(f"/pdf/files/{job.pk}.pdf").status_code == 410


@pytest.mark.parametrize(("mode", "header", "expected"), [
    ("x-accel-redirect", "X-Accel-Redirect", "/internal/pdf/{id}.pdf"),
    ("x-sendfile", "X-Sendfile", "{root}/pdf/{id}.pdf"),
])
def test_the_web_server_sends_the_file_in_production(mode, header, expected, alice, client_of, media_root, settings,
                                                     greenroom_stub_broker):
    settings.GREENROOM_PDF_SENDFILE = mode
    settings.GREENROOM_PDF_ACCEL_PREFIX = "/internal/pdf"
    job = built(services.job_enqueue(task="pdf.build_report", params={"report_id": 1}, requested_by=alice), media_root)

    response = client_of(alice).get(f"/pdf/files/{job.pk}.pdf")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response[header] == expected.format(id=job.pk, root=media_root)
    assert response.content == b""


def test_an_eager_build_runs_inside_the_request(alice, client_of, media_root, greenroom_eager):
    report = make_report(alice, entries=60)
    client = client_of(alice)

    job_id = client.post(f"/pdf/reports/{report.pk}/").json()["id"]

    job = Job.objects.get(pk=job_id)
    assert job.status == JobStatus.SUCCESSFUL, job.error_message
    assert job.progress_total == 62
    assert (media_root / job.result["path"]).read_bytes().startswith(b"%PDF")
    assert client.get(f"/pdf/status/{job_id}/").status_code == 302



def test_a_browser_form_post_is_sent_to_the_end_users_job_page(alice, greenroom_stub_broker):
    report = make_report(alice, entries=1)
    browser = Client()
    browser.force_login(alice)

    response = browser.post(f"/pdf/reports/{report.pk}/", HTTP_ACCEPT="text/html,application/xhtml+xml,*/*;q=0.8")

    job = Job.objects.get(task="pdf.build_report")
    assert (response.status_code, response["Location"]) == (303, f"/jobs/{job.pk}/")
    page = browser.get(response["Location"])
    assert page.status_code == 200 and b'data-testid="job-status"' in page.content
    # An API client (no Accept, or JSON) still gets 202 with the page's address in the body
    again = browser.post(f"/pdf/reports/{report.pk}/", HTTP_ACCEPT="application/json")
    assert again.status_code == 202 and again.json()["page"] == f"/jobs/{job.pk}/"
