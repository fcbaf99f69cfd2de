"""Fixtures for the API, admin, command, service and catalogue tests: users, token clients, test jobs.

Test modules load them with `pytest_plugins = ["tests.api_fixtures"]` and import its helpers
directly; nothing here is autouse. PYTEST_DONT_REWRITE: the helpers are imported before pytest sees
this module as a plugin, so its asserts stay plain (they carry their own messages).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import dramatiq
import pytest
from django.contrib.auth.models import Permission
from django.http import HttpResponse
from django.test import Client

from workers import catalogue
from workers.models import ApiToken, Job, JobStatus

JOBS_URL = "/api/jobs/"


def grant(user: Any, *codenames: str) -> Any:
    """Give `user` the workers app permissions `codenames` (e.g. "add_job")."""
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="workers", codename__in=codenames))
    return user


@pytest.fixture
def make_user(db: None, django_user_model: Any) -> Callable[..., Any]:
    """`make_user(name, *permissions, is_staff=False)`."""

    def make(username: str, *permissions: str, is_staff: bool = False) -> Any:
        # No password: these users log in with tokens or force_login, and hashing one costs ~0.3 s.
        user = django_user_model.objects.create_user(username=username, password=None, is_staff=is_staff)
        return grant(user, *permissions)

    return make


@pytest.fixture
def alice(make_user: Callable[..., Any]) -> Any:
    """A user who may enqueue jobs."""
    return make_user("alice", "add_job")


@pytest.fixture
def bob(make_user: Callable[..., Any]) -> Any:
    """Another user who may enqueue jobs."""
    return make_user("bob", "add_job")


@pytest.fixture
def viewer(make_user: Callable[..., Any]) -> Any:
    """A user without the add_job permission: may read their own jobs, not enqueue."""
    return make_user("viewer")


@pytest.fixture
def operator(make_user: Callable[..., Any]) -> Any:
    """A staff user who may enqueue jobs (and sees everyone's)."""
    return make_user("operator", "add_job", is_staff=True)


def token_header(user: Any) -> dict[str, str]:
    """Client keyword arguments carrying a fresh API token of `user`."""
    _, key = ApiToken.issue(user=user)
    return {"HTTP_AUTHORIZATION": f"Token {key}"}


@dataclass
class ApiClient:
    """Django's test client with a token header on every request."""

    client: Client
    headers: dict[str, str]

    def get(self, path: str, query: dict[str, str] | None = None) -> HttpResponse:
        return self.client.get(path, query or {}, **self.headers)

    def post(self, path: str, body: Any = None, *, raw: str | bytes | None = None) -> HttpResponse:
        """POST `body` as JSON, or `raw` exactly as given; no body at all when both are None."""
        data = raw if raw is not None else ("" if body is None else json.dumps(body))
        return self.client.post(path, data, content_type="application/json", **self.headers)

    def request(self, method: str, path: str, raw: str = "") -> HttpResponse:
        return self.client.generic(method, path, raw, content_type="application/json", **self.headers)

    def enqueue(self, task: str = "diagnostics.noop", params: dict[str, Any] | None = None, **extra: Any) -> Job:
        """POST a job that must be accepted; return its row."""
        body = {"task": task, "params": params or {}, **extra}
        response = self.post(JOBS_URL, body)
        assert response.status_code == 202, f"enqueue refused: {response.status_code} {response.content!r}"
        return Job.objects.get(pk=response.json()["id"])


@pytest.fixture
def api_as(greenroom_stub_broker: Any) -> Callable[[Any], ApiClient]:
    """`api_as(user)`: a token-authenticated API client. Jobs are published to the stub broker."""

    def make(user: Any) -> ApiClient:
        return ApiClient(Client(), token_header(user))

    return make


def queued_ids(broker: Any, queue: str) -> list[str]:
    """Message ids waiting in `queue` of a StubBroker."""
    return [dramatiq.Message.decode(raw).message_id for raw in list(broker.queues[queue].queue)]


def finish(job: Job, status: str = JobStatus.SUCCESSFUL, **fields: Any) -> Job:
    """Put a job's row into `status` (as a worker would have), with any other fields."""
    Job.objects.filter(pk=job.pk).update(status=status, **fields)
    job.refresh_from_db()
    return job


@pytest.fixture
def declare_job() -> Iterator[Callable[..., catalogue.JobSpec]]:
    """`declare_job(name, fn=..., **options)`: declare a catalogue job that is forgotten after the test.

    The catalogue registry and the broker's actor table are global: every job declared here (or by a
    declaration that the test makes itself) is removed from both afterwards.
    """
    before = set(catalogue._registry)
    aliases_before = set(catalogue._aliases)
    broker = dramatiq.get_broker()
    actors_before = set(broker.actors)

    def declare(name: str, fn: Callable[..., Any] | None = None, **options: Any) -> catalogue.JobSpec:
        catalogue.job(name, **options)(fn or (lambda: {"ran": name}))
        spec = catalogue.get(name)
        assert spec is not None, f"{name} was not registered"
        return spec

    yield declare
    for name in set(catalogue._registry) - before:
        del catalogue._registry[name]
    for name in set(catalogue._aliases) - aliases_before:
        del catalogue._aliases[name]
    for name in set(broker.actors) - actors_before:
        del broker.actors[name]
