"""The admin: the job ledger's changelist, its filters, and the retry/cancel actions."""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.utils import timezone

from tests.api_fixtures import finish
from workers.models import ApiToken, Job, JobStatus

pytest_plugins = ["tests.api_fixtures"]

CHANGELIST = "/admin/workers/job/"
XSS = '<script>alert("owned")</script>'


@pytest.fixture
def staff(make_user):
    """A staff member who may view and change jobs (not a superuser)."""
    return make_user("staff", "view_job", "change_job", is_staff=True)


@pytest.fixture
def staff_client(staff, greenroom_stub_broker) -> Client:
    client = Client()
    client.force_login(staff)
    return client


def make_job(status: str = JobStatus.READY, **fields) -> Job:
    params = {"seconds": 1.0, "blocking": False, "allocate_mb": 0}  # as job_enqueue would store them
    return Job.objects.create(task="diagnostics.sleep", queue="default", params=params, status=status,
                              **fields)


def run_action(client: Client, action: str, *jobs: Job):
    return client.post(CHANGELIST, {"action": action, "_selected_action": [str(job.pk) for job in jobs]})


def messages_of(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


# --- the changelist --------------------------------------------------------------------------------


def test_the_changelist_shows_progress_and_escapes_user_data(staff_client):
    # Given jobs whose progress message and error text came from user input
    running = make_job(JobStatus.RUNNING, progress_done=4, progress_total=10, progress_message=f"page {XSS}")
    failed = make_job(JobStatus.FAILED, error_class="builtins.ValueError", error_message=f"bad input {XSS}")
    plain = make_job(progress_message=f"waiting {XSS}")

    # When staff open the changelist
    response = staff_client.get(CHANGELIST)

    # Then every job is listed with its progress bar, and no user text is markup
    assert response.status_code == 200
    page = response.content.decode()
    for job in (running, failed, plain):
        assert str(job.pk) in page
    assert '<progress max="10" value="4"></progress> 40.0%' in page
    assert "<code>ValueError</code>" in page
    assert XSS not in page
    assert "bad input &lt;script&gt;alert(&quot;owned&quot;)&lt;/script&gt;" in page
    assert "page &lt;script&gt;" in page
    assert "waiting &lt;script&gt;" in page


def test_the_changelist_filters_by_status(staff_client):
    failed = make_job(JobStatus.FAILED)
    make_job(JobStatus.READY)
    make_job(JobStatus.SUCCESSFUL)

    response = staff_client.get(CHANGELIST, {"status__exact": "FAILED"})

    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == [failed]


def test_the_changelist_finds_a_job_by_id_and_survives_a_search_that_is_no_id(staff_client):
    wanted = make_job()
    make_job()

    by_id = staff_client.get(CHANGELIST, {"q": str(wanted.pk)})
    by_text = staff_client.get(CHANGELIST, {"q": "not-a-uuid"})

    assert list(by_id.context["cl"].result_list) == [wanted]
    assert by_text.status_code == 200


def test_a_jobs_page_renders_read_only(staff_client):
    job = make_job(JobStatus.FAILED, error_class="builtins.ValueError", error_message=XSS, error_traceback=XSS)

    response = staff_client.get(f"{CHANGELIST}{job.pk}/change/")

    assert response.status_code == 200
    assert XSS not in response.content.decode()
    assert 'name="status"' not in response.content.decode()  # shown, not editable


def test_jobs_cannot_be_added_by_hand_nor_deleted_by_staff(staff_client):
    job = make_job()

    assert staff_client.get(f"{CHANGELIST}add/").status_code == 403
    assert staff_client.get(f"{CHANGELIST}{job.pk}/delete/").status_code == 403
    assert Job.objects.filter(pk=job.pk).exists()


# --- actions ---------------------------------------------------------------------------------------


def test_the_cancel_action_cancels_a_ready_job(staff_client):
    job = make_job()

    response = run_action(staff_client, "cancel_jobs", job)

    assert response.status_code == 302
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED
    assert job.finished_at is not None
    assert messages_of(response) == ["1 job(s) cancelled."]


def test_the_cancel_action_asks_a_running_job_to_stop_and_reports_finished_ones(staff_client):
    running = make_job(JobStatus.RUNNING, heartbeat_at=timezone.now())
    done = make_job(JobStatus.SUCCESSFUL)

    response = run_action(staff_client, "cancel_jobs", running, done)

    running.refresh_from_db()
    done.refresh_from_db()
    assert running.status == JobStatus.RUNNING
    assert running.cancel_requested_at is not None
    assert done.status == JobStatus.SUCCESSFUL
    messages = messages_of(response)
    assert "1 job(s) cancelled." in messages
    assert any(str(done.pk) in message and "SUCCESSFUL" in message for message in messages)


def test_the_retry_action_enqueues_a_new_job_for_a_failed_one(staff_client, staff, greenroom_stub_broker,
                                                              django_user_model):
    owner = django_user_model.objects.create_user("owner")
    failed = make_job(JobStatus.FAILED, error_class="builtins.ValueError", requested_by=owner)

    response = run_action(staff_client, "retry_jobs", failed)

    assert response.status_code == 302
    new = Job.objects.get(retry_of=failed)
    assert (new.task, new.params, new.status) == (failed.task, failed.params, JobStatus.READY)
    assert new.requested_by == owner  # the owner keeps the rerun of their job, not the operator
    assert Job.objects.get(pk=failed.pk).status == JobStatus.FAILED
    assert messages_of(response) == ["1 job(s) retried."]
    assert greenroom_stub_broker.queues["default"].qsize() == 1


def test_the_retry_action_leaves_jobs_that_did_not_fail_alone(staff_client):
    ready = make_job()
    cancelled = finish(make_job(), JobStatus.CANCELLED)

    response = run_action(staff_client, "retry_jobs", ready, cancelled)

    assert Job.objects.filter(retry_of=cancelled).count() == 1
    assert not Job.objects.filter(retry_of=ready).exists()
    messages = messages_of(response)
    assert "1 job(s) retried." in messages
    assert any(str(ready.pk) in message and "only failed or cancelled" in message for message in messages)


def test_staff_without_the_change_permission_cannot_run_the_actions(make_user, greenroom_stub_broker):
    reader = make_user("reader", "view_job", is_staff=True)
    client = Client()
    client.force_login(reader)
    job = make_job()

    listing = client.get(CHANGELIST)
    response = run_action(client, "cancel_jobs", job)

    assert listing.status_code == 200
    assert "cancel_jobs" not in listing.content.decode()
    assert response.status_code == 200  # the changelist again, with "no action selected"
    job.refresh_from_db()
    assert job.status == JobStatus.READY


def test_someone_who_is_not_staff_is_sent_to_the_login_page(alice):
    client = Client()
    client.force_login(alice)

    response = client.get(CHANGELIST)

    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


# --- API tokens ------------------------------------------------------------------------------------


def test_the_token_list_shows_prefixes_and_tokens_cannot_be_added_in_the_admin(make_user, alice):
    admin = make_user("root", is_staff=True)
    admin.is_superuser = True
    admin.save()
    token, key = ApiToken.issue(user=alice, name="laptop")
    client = Client()
    client.force_login(admin)

    listing = client.get("/admin/workers/apitoken/")

    assert listing.status_code == 200
    page = listing.content.decode()
    assert token.prefix in page
    assert "laptop" in page
    assert key not in page
    assert client.get("/admin/workers/apitoken/add/").status_code == 403
