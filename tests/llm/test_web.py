"""The /llm/ endpoints, the admin, the job's refusals, and the key never leaking anywhere."""

from __future__ import annotations

import logging

import pytest
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.test import Client

from tests.api_fixtures import token_header
from tests.llm.conftest import KEY, Reply, models_reply
from workers import services
from workers.lib.llm import ModelListing
from workers.llm import demo
from workers.llm.models import LlmApi, LlmApiStatus, LlmModel
from workers.llm.services import llm_api_record_success
from workers.models import Job, JobStatus

pytest_plugins = ["tests.api_fixtures"]

CHANGELIST = "/admin/llm/llmapi/"
INLINE_EMPTY = {"models-TOTAL_FORMS": "0", "models-INITIAL_FORMS": "0", "models-MIN_NUM_FORMS": "0",
                "models-MAX_NUM_FORMS": "1000"}


def validate_url(pk: int) -> str:
    return f"/llm/apis/{pk}/validate/"


@pytest.fixture
def api(db) -> LlmApi:
    return LlmApi.objects.create(name="local", base_url="http://127.0.0.1:9/v1", api_key=KEY)


@pytest.fixture
def llm_operator(make_user):
    """Not staff, but may change LLM APIs."""
    user = make_user("llm-operator")
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="llm"))
    return user


@pytest.fixture
def admin_user(make_user):
    user = make_user("boss", is_staff=True)
    user.is_superuser = True
    user.save()
    return user


@pytest.fixture
def admin_client(admin_user, greenroom_stub_broker) -> Client:
    client = Client()
    client.force_login(admin_user)
    return client


# --- the job's refusals (eager, in-process) ---------------------------------------------------------


def test_validating_an_unknown_api_fails_at_once(db, greenroom_eager):
    job = services.job_enqueue(task="llm.validate_api", params={"api_id": 987654})

    assert job.status == JobStatus.FAILED and job.attempts == 1
    assert job.error_message == "LLM API 987654 does not exist"


def test_validating_an_inactive_api_fails_at_once(api, greenroom_eager):
    LlmApi.objects.filter(pk=api.pk).update(is_active=False)

    job = services.job_enqueue(task="llm.validate_api", params={"api_id": api.pk})

    assert job.status == JobStatus.FAILED and "is inactive" in job.error_message


def test_a_model_that_comes_back_is_available_again(api):
    llm_api_record_success(api=api, listing=ModelListing(latency_ms=5, model_ids=["x", "y"]))
    llm_api_record_success(api=api, listing=ModelListing(latency_ms=5, model_ids=["y"]))

    sync = llm_api_record_success(api=api, listing=ModelListing(latency_ms=5, model_ids=["x", "y"]))

    assert (sync.models, sync.added, sync.removed) == (2, 1, 0)
    assert set(LlmModel.objects.filter(api=api, available=True).values_list("model_id", flat=True)) == {"x", "y"}


# --- endpoints --------------------------------------------------------------------------------------


def test_validate_endpoint_answers_202_with_the_job(api, llm_operator, greenroom_stub_broker):
    response = Client().post(validate_url(api.pk), **token_header(llm_operator))

    assert response.status_code == 202
    job = Job.objects.get(pk=response.json()["id"])
    assert job.task == "llm.validate_api" and job.params == {"api_id": api.pk}
    assert response["Location"] == f"/api/jobs/{job.pk}/"
    # A second request while the first is queued is a duplicate
    again = Client().post(validate_url(api.pk), **token_header(llm_operator))
    assert again.status_code == 409 and again.json()["existing_id"] == str(job.pk)


def test_validate_endpoint_refuses_users_without_permission(api, make_user, greenroom_stub_broker):
    response = Client().post(validate_url(api.pk), **token_header(make_user("nobody", "add_job")))

    assert response.status_code == 403
    assert not Job.objects.exists()


def test_validate_endpoint_answers_404_for_an_unknown_api(llm_operator, greenroom_stub_broker):
    response = Client().post(validate_url(424242), **token_header(llm_operator))

    assert response.status_code == 404


def test_validate_endpoint_needs_authentication_and_post(api):
    assert Client().post(validate_url(api.pk)).status_code == 401
    assert Client().get(validate_url(api.pk)).status_code == 405


def test_api_list_shows_status_and_a_key_hint_only(api, llm_operator):
    response = Client().get("/llm/apis/", **token_header(llm_operator))

    assert response.status_code == 200
    [shown] = response.json()["results"]
    assert shown["name"] == "local" and shown["last_status"] == "never" and shown["key_hint"] == "sk-…abcd"
    assert KEY not in response.content.decode()


def test_api_list_refuses_users_without_permission(api, make_user):
    assert Client().get("/llm/apis/", **token_header(make_user("nobody"))).status_code == 403


# --- admin ------------------------------------------------------------------------------------------


def test_admin_validate_now_enqueues_one_job_per_api_and_warns_on_duplicates(api, admin_client):
    response = admin_client.post(CHANGELIST, {"action": "validate_now", "_selected_action": [api.pk]})
    assert response.status_code == 302
    assert Job.objects.filter(task="llm.validate_api", params__api_id=api.pk).count() == 1

    response = admin_client.post(CHANGELIST, {"action": "validate_now", "_selected_action": [api.pk]}, follow=True)

    texts = [str(m) for m in get_messages(response.wsgi_request)]
    assert any("already queued or running" in t for t in texts), texts
    assert Job.objects.filter(task="llm.validate_api").count() == 1


def test_admin_validate_all_enqueues_one_batch_job(api, admin_client):
    admin_client.post(CHANGELIST, {"action": "validate_all_active", "_selected_action": [api.pk]})
    response = admin_client.post(CHANGELIST, {"action": "validate_all_active", "_selected_action": [api.pk]},
                                 follow=True)

    [job] = Job.objects.filter(task="llm.validate_all")
    assert job.queue == "batch" and job.unique_key == "llm.validate_all"
    assert any("already queued" in str(m) for m in get_messages(response.wsgi_request))


def test_admin_key_field_is_write_only(admin_client, db):
    # When an operator adds an API with a key
    response = admin_client.post(f"{CHANGELIST}add/", {"name": "new", "base_url": "http://127.0.0.1:9",
                                                      "is_active": "on", "new_api_key": KEY, **INLINE_EMPTY})
    assert response.status_code == 302, response.content.decode()[:2000]
    api = LlmApi.objects.get(name="new")
    assert api.api_key == KEY
    # Then the change page shows the hint, never the key
    page = admin_client.get(f"{CHANGELIST}{api.pk}/change/").content.decode()
    assert "sk-…abcd" in page and KEY not in page
    # And saving without typing a key keeps it; a new one replaces it
    admin_client.post(f"{CHANGELIST}{api.pk}/change/", {"name": "new", "base_url": "http://127.0.0.1:9",
                                                         "is_active": "on", "new_api_key": "", **INLINE_EMPTY})
    api.refresh_from_db()
    assert api.api_key == KEY
    admin_client.post(f"{CHANGELIST}{api.pk}/change/", {"name": "new", "base_url": "http://127.0.0.1:9",
                                                         "new_api_key": "sk-other-key-0000wxyz", **INLINE_EMPTY})
    api.refresh_from_db()
    assert api.api_key == "sk-other-key-0000wxyz" and api.is_active is False


# --- the key never leaks ----------------------------------------------------------------------------


def test_the_key_never_appears_in_logs_errors_responses_or_admin_pages(
    llm_server, llm_operator, admin_client, greenroom_eager, caplog
):
    # Given an API whose server refuses the key and echoes it back
    llm_server.default = Reply(status=401, echo_auth=True)
    api = LlmApi.objects.create(name="leaky", base_url=llm_server.url, api_key=KEY)
    caplog.set_level(logging.DEBUG)
    # When it is validated (eager: the job runs in this process, so its logs are captured here)
    response = Client().post(validate_url(api.pk), **token_header(llm_operator))
    assert response.status_code == 202
    job = Job.objects.get(pk=response.json()["id"])
    api.refresh_from_db()
    # Then it failed, and neither the logs nor the job's error nor the row hold the key
    assert job.status == JobStatus.FAILED and "401" in job.error_message
    assert "refused the API key" in caplog.text
    for text in (caplog.text, job.error_message, job.error_traceback, api.last_error, repr(api), str(api)):
        assert KEY not in text
    # Nor do the JSON API, the job's API page or the admin pages
    pages = [
        Client().get("/llm/apis/", **token_header(llm_operator)),
        admin_client.get(f"/api/jobs/{job.pk}/"),
        admin_client.get(CHANGELIST),
        admin_client.get(f"{CHANGELIST}{api.pk}/change/"),
        admin_client.get(f"/admin/workers/job/{job.pk}/change/"),
    ]
    for page in pages:
        assert page.status_code == 200
        assert KEY not in page.content.decode()


def test_a_successful_validation_in_eager_mode_fills_the_admin_list(llm_server, admin_client, greenroom_eager):
    llm_server.default = models_reply("m1", "m2")
    api = LlmApi.objects.create(name="fine", base_url=llm_server.url, api_key=KEY)

    job = services.job_enqueue(task="llm.validate_api", params={"api_id": api.pk})

    assert job.status == JobStatus.SUCCESSFUL
    api.refresh_from_db()
    assert api.last_status == LlmApiStatus.OK
    page = admin_client.get(CHANGELIST).content.decode()
    assert "SUCCESSFUL" in page and f"/admin/workers/job/{job.pk}/change/" in page


# --- demo -------------------------------------------------------------------------------------------


def test_demo_seed_is_idempotent_and_inactive(db):
    demo.seed()
    demo.seed()

    [api] = LlmApi.objects.all()
    assert api.is_active is False and api.api_key == ""
