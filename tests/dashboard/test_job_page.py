"""The end users' job page: owner and staff only, live hooks, the result and its download link."""

from __future__ import annotations

from urllib.parse import quote

from django.test import Client
from django.utils import timezone

from tests.dashboard.conftest import client_for, page
from workers.models import JobStatus

XSS = "<script>alert(1)</script>"


def test_the_owner_sees_status_progress_and_message(make_job, member):
    job = make_job(requested_by=member, status=JobStatus.RUNNING, progress_done=2, progress_total=5,
                   progress_message=f"page 2 {XSS}")
    response = client_for(member).get(f"/jobs/{job.pk}/")
    doc = page(response)
    assert doc.find(data_testid="job-status").text == "RUNNING"
    bar = doc.find("progress", data_testid="job-progress")
    assert (bar.get("value"), bar.get("max")) == ("2", "5")
    assert doc.find(data_testid="job-progress-message").text == f"page 2 {XSS}"
    assert XSS not in response.content.decode()
    root = doc.find(data_live_job=str(job.pk))
    assert root.get("data-events-url") == f"/api/jobs/{job.pk}/events/"
    assert root.get("data-api-url") == f"/api/jobs/{job.pk}/"


def test_other_users_get_404_staff_see_it_and_anonymous_visitors_log_in(make_job, member, stranger, staff):
    job = make_job(requested_by=member)
    path = f"/jobs/{job.pk}/"
    assert client_for(stranger).get(path).status_code == 404
    assert client_for(staff).get(path).status_code == 200
    anonymous = Client().get(path)
    assert (anonymous.status_code, anonymous["Location"]) == (302, f"/accounts/login/?next={quote(path)}")
    assert client_for(member).get("/jobs/00000000-0000-0000-0000-000000000000/").status_code == 404


def test_a_finished_pdf_build_links_to_its_file(make_job, member):
    job = make_job(task="pdf.build_report", requested_by=member, status=JobStatus.SUCCESSFUL,
                   params={"report_id": 1}, result={"pages": 3}, finished_at=timezone.now())
    doc = page(client_for(member).get(f"/jobs/{job.pk}/"))
    assert doc.find("a", data_testid="result-link").get("href") == f"/pdf/files/{job.pk}.pdf"
    assert doc.find_all(data_live_job=str(job.pk))[0].get("data-finished") == "1"


def test_a_finished_job_shows_its_result_and_no_link(make_job, member):
    job = make_job(requested_by=member, status=JobStatus.SUCCESSFUL, result={"note": XSS},
                   finished_at=timezone.now())
    response = client_for(member).get(f"/jobs/{job.pk}/")
    doc = page(response)
    assert '"note"' in doc.find("pre", data_testid="job-result").text
    assert doc.find_all(data_testid="result-link") == []
    assert XSS not in response.content.decode()


def test_a_running_pdf_build_has_no_link_yet(make_job, member):
    job = make_job(task="pdf.build_report", requested_by=member, status=JobStatus.RUNNING)
    assert page(client_for(member).get(f"/jobs/{job.pk}/")).find_all(data_testid="result-link") == []


def test_an_end_user_logs_in_through_the_accounts_form_and_lands_on_their_job(make_job, member):
    member.set_password("pw-for-member")
    member.save()
    job = make_job(requested_by=member)
    client = Client()
    form = client.get(f"/accounts/login/?next=/jobs/{job.pk}/")
    assert form.status_code == 200 and b'name="next"' in form.content
    wrong = client.post("/accounts/login/", {"username": member.username, "password": "nope",
                                             "next": f"/jobs/{job.pk}/"})
    assert wrong.status_code == 200 and b"did not match" in wrong.content
    right = client.post("/accounts/login/", {"username": member.username, "password": "pw-for-member",
                                             "next": f"/jobs/{job.pk}/"})
    assert (right.status_code, right["Location"]) == (302, f"/jobs/{job.pk}/")
    assert client.get(right["Location"]).status_code == 200
