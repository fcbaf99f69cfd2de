"""Who may open the dashboard: staff only; anonymous visitors go to the admin's login, others get 403."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from django.test import Client

from tests.dashboard.conftest import EventReader, client_for
from workers.models import Job, JobStatus

GET_PAGES = [
    "/dashboard/",
    "/dashboard/jobs/",
    "/dashboard/jobs/?status=FAILED&task=diagnostics.fail",
    "/dashboard/jobs/progress/",
    "/dashboard/failures/",
    "/dashboard/failures/group/?task=diagnostics.fail&error_class=x",
    "/dashboard/failures/confirm/?action=retry",
    "/dashboard/workers/",
    "/dashboard/schedules/",
    "/dashboard/events/",
]
POSTS = ["/dashboard/schedules/toggle/", "/dashboard/failures/confirm/"]


@pytest.fixture
def job(make_job) -> Job:
    return make_job(status=JobStatus.FAILED, error_class="builtins.ValueError")


def every_get(job: Job) -> list[str]:
    return [*GET_PAGES, f"/dashboard/jobs/{job.pk}/"]


def every_post(job: Job) -> list[str]:
    return [*POSTS, f"/dashboard/jobs/{job.pk}/cancel/", f"/dashboard/jobs/{job.pk}/retry/"]


def test_anonymous_visitors_are_sent_to_the_admin_login_with_next(job, broker):
    client = Client()
    for path in every_get(job) + every_post(job):
        response = client.post(path) if path in every_post(job) else client.get(path)
        assert response.status_code == 302, path
        assert response["Location"] == f"/admin/login/?next={quote(path, safe='/')}", path


def test_logged_in_users_who_are_not_staff_get_a_staff_only_page(job, member, broker):
    client = client_for(member)
    for path in every_get(job) + every_post(job):
        response = client.post(path) if path in every_post(job) else client.get(path)
        assert response.status_code == 403, path
        assert "Staff only" in response.content.decode(), path
    # and no action went through
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED and job.dismissed_at is None
    assert not Job.objects.filter(retry_of=job).exists()


def test_staff_get_every_page(job, staff_client, broker):
    for path in every_get(job):
        response = staff_client.get(path)
        if path.startswith("/dashboard/failures/confirm/"):
            # nothing selected: back to the failures page, with a message
            assert response.status_code == 302 and response["Location"] == "/dashboard/failures/"
            continue
        assert response.status_code == 200, path
        if response.streaming:
            EventReader(response).close()


def test_posts_without_a_csrf_token_are_refused(make_job, staff, broker):
    # Given a READY job and an operator whose browser does not send the CSRF token
    ready = make_job()
    client = client_for(staff, enforce_csrf_checks=True)
    # When they post the cancel form
    response = client.post(f"/dashboard/jobs/{ready.pk}/cancel/")
    # Then Django refuses it and the job is untouched
    assert response.status_code == 403
    ready.refresh_from_db()
    assert ready.status == JobStatus.READY


def test_every_form_carries_a_csrf_token(make_job, staff, broker):
    # Given pages with POST forms, rendered for a client that enforces CSRF
    failed = make_job(status=JobStatus.FAILED, error_class="builtins.ValueError")
    client = client_for(staff, enforce_csrf_checks=True)
    # When the job page's retry form is submitted with the token the page carries
    html = client.get(f"/dashboard/jobs/{failed.pk}/").content.decode()
    token = html.split('name="csrfmiddlewaretoken" value="', 1)[1].split('"', 1)[0]
    response = client.post(f"/dashboard/jobs/{failed.pk}/retry/", {"csrfmiddlewaretoken": token})
    # Then it goes through
    assert response.status_code == 302
    assert Job.objects.filter(retry_of=failed).count() == 1
