"""Who may call the jobs API: tokens, sessions with CSRF, the add_job permission."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, Permission
from django.test import Client
from django.utils import timezone

from tests.api_fixtures import JOBS_URL, token_header
from workers.models import ApiToken, Job

pytest_plugins = ["tests.api_fixtures"]

NOOP = {"task": "diagnostics.noop"}
# A CSRF secret as Django's cookie carries it (32 characters of its alphabet).
CSRF_SECRET = "a" * 16 + "B" * 16


def post_json(client: Client, body: dict, **headers: str):
    return client.post(JOBS_URL, json.dumps(body), content_type="application/json", **headers)


@pytest.fixture
def session_client(alice, greenroom_stub_broker) -> Client:
    """A browser logged in as alice whose requests are CSRF-checked (as real ones are)."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    return client


# --- no or bad credentials -------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), [("get", JOBS_URL), ("post", JOBS_URL),
                                              ("get", JOBS_URL + "00000000-0000-0000-0000-000000000000/")])
def test_a_request_without_credentials_is_refused_with_401_and_a_token_challenge(db, client, method, path):
    response = getattr(client, method)(path)

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert "authentication required" in response.json()["error"]


@pytest.mark.parametrize(
    "authorization",
    [
        "Token not-a-real-key",
        "Token ",
        "Token",
        "Bearer some-key",
        "Basic YWxpY2U6c2VjcmV0",
        "token-without-a-scheme",
    ],
)
def test_a_bad_token_or_scheme_is_refused_with_401(alice, client, authorization):
    response = post_json(client, NOOP, HTTP_AUTHORIZATION=authorization)

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert not Job.objects.exists()


def test_a_bad_token_is_refused_even_with_a_valid_session(alice, client):
    # An explicit Authorization header is what the client meant: it is not silently ignored.
    client.force_login(alice)

    response = client.get(JOBS_URL, HTTP_AUTHORIZATION="Token wrong")

    assert response.status_code == 401


def test_a_deleted_token_no_longer_works(alice, client):
    headers = token_header(alice)
    assert client.get(JOBS_URL, **headers).status_code == 200

    ApiToken.objects.filter(user=alice).delete()

    assert client.get(JOBS_URL, **headers).status_code == 401


def test_the_token_of_a_deactivated_user_is_refused(alice, client):
    headers = token_header(alice)
    alice.is_active = False
    alice.save()

    response = client.get(JOBS_URL, **headers)

    assert response.status_code == 401
    assert response.json()["error"] == "invalid token"


# --- tokens ----------------------------------------------------------------------------------------


def test_a_valid_token_acts_as_its_user(alice, client, greenroom_stub_broker):
    response = post_json(client, NOOP, **token_header(alice))

    assert response.status_code == 202
    assert Job.objects.get(pk=response.json()["id"]).requested_by == alice


def test_the_token_scheme_is_case_insensitive_and_spaces_around_the_key_are_ignored(alice, client):
    _, key = ApiToken.issue(user=alice)

    response = client.get(JOBS_URL, HTTP_AUTHORIZATION=f"token   {key} ")

    assert response.status_code == 200


def test_a_token_request_needs_no_csrf_token(alice, greenroom_stub_broker):
    client = Client(enforce_csrf_checks=True)

    response = post_json(client, NOOP, **token_header(alice))

    assert response.status_code == 202


def test_using_a_token_records_when_it_was_last_used_at_most_once_a_minute(alice, client):
    headers = token_header(alice)
    token = ApiToken.objects.get(user=alice)
    assert token.last_used_at is None

    client.get(JOBS_URL, **headers)
    token.refresh_from_db()
    first_use = token.last_used_at
    client.get(JOBS_URL, **headers)
    token.refresh_from_db()

    assert first_use is not None
    assert token.last_used_at == first_use  # not rewritten on every request

    # A minute later it is refreshed.
    ApiToken.objects.filter(pk=token.pk).update(last_used_at=first_use - timedelta(minutes=2))
    client.get(JOBS_URL, **headers)
    token.refresh_from_db()
    assert token.last_used_at > first_use - timedelta(seconds=1)
    assert timezone.now() - token.last_used_at < timedelta(minutes=1)


# --- permission ------------------------------------------------------------------------------------


def test_enqueueing_without_the_add_job_permission_is_refused_with_403(viewer, client):
    response = post_json(client, NOOP, **token_header(viewer))

    assert response.status_code == 403
    assert "workers.add_job" in response.json()["error"]
    assert not Job.objects.exists()


def test_a_user_without_the_permission_may_still_list_their_jobs(viewer, client):
    response = client.get(JOBS_URL, **token_header(viewer))

    assert response.status_code == 200
    assert response.json() == {"results": [], "next": None}


def test_the_permission_may_come_from_a_group(viewer, client, greenroom_stub_broker):
    group = Group.objects.create(name="schedulers")
    group.permissions.add(Permission.objects.get(content_type__app_label="workers", codename="add_job"))
    viewer.groups.add(group)

    response = post_json(client, NOOP, **token_header(viewer))

    assert response.status_code == 202


# --- sessions and CSRF -----------------------------------------------------------------------------


def test_a_session_post_without_a_csrf_token_is_refused_with_403(session_client):
    response = post_json(session_client, NOOP)

    assert response.status_code == 403
    assert "CSRF" in response.json()["error"]
    assert not Job.objects.exists()


def test_a_session_post_with_a_wrong_csrf_token_is_refused_with_403(session_client):
    session_client.cookies["csrftoken"] = CSRF_SECRET

    response = post_json(session_client, NOOP, HTTP_X_CSRFTOKEN="b" * 32)

    assert response.status_code == 403
    assert not Job.objects.exists()


def test_a_session_post_with_the_csrf_token_is_accepted(session_client, alice):
    session_client.cookies["csrftoken"] = CSRF_SECRET

    response = post_json(session_client, NOOP, HTTP_X_CSRFTOKEN=CSRF_SECRET)

    assert response.status_code == 202
    assert Job.objects.get(pk=response.json()["id"]).requested_by == alice


def test_a_session_get_needs_no_csrf_token(session_client):
    response = session_client.get(JOBS_URL)

    assert response.status_code == 200


def test_a_session_cancel_without_a_csrf_token_is_refused_with_403(session_client, alice):
    job = Job.objects.create(task="diagnostics.noop", queue="interactive", requested_by=alice)

    response = session_client.post(f"{JOBS_URL}{job.pk}/cancel/")

    assert response.status_code == 403
    job.refresh_from_db()
    assert job.status == "READY"


def test_an_oversized_form_post_from_a_session_gets_a_json_413(session_client, settings):
    # The CSRF check reads a form body before the view does; the size limit must still answer in JSON.
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    session_client.cookies["csrftoken"] = CSRF_SECRET

    response = session_client.post(JOBS_URL, {"task": "x" * 4000})

    assert response.status_code == 413
    assert response["Content-Type"] == "application/json"
