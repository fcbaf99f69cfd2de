"""Fixtures of the dashboard tests: an operator, end users, their clients, and job rows."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any, cast

import pytest
from django.core.signals import request_finished
from django.db import close_old_connections
from django.http import StreamingHttpResponse
from django.test import Client

from tests.dashboard.html import Element, parse
from workers.models import Job


@pytest.fixture
def staff(db: None, django_user_model: Any) -> Any:
    """An operator: staff, no model permissions."""
    return django_user_model.objects.create_user(username="operator", password=None, is_staff=True)


@pytest.fixture
def member(db: None, django_user_model: Any) -> Any:
    """An end user (not staff)."""
    return django_user_model.objects.create_user(username="member", password=None)


@pytest.fixture
def stranger(db: None, django_user_model: Any) -> Any:
    """Another end user."""
    return django_user_model.objects.create_user(username="stranger", password=None)


def client_for(user: Any | None, **options: Any) -> Client:
    client = Client(**options)
    if user is not None:
        client.force_login(user)
    return client


@pytest.fixture
def staff_client(staff: Any) -> Client:
    return client_for(staff)


@pytest.fixture
def make_job(db: None) -> Callable[..., Job]:
    """`make_job(**fields)`: a Job row written as is (no enqueue, no broker)."""

    def make(**fields: Any) -> Job:
        fields.setdefault("task", "diagnostics.noop")
        fields.setdefault("queue", "interactive")
        return Job.objects.create(**fields)

    return make


def page(response: Any) -> Element:
    assert response.status_code == 200, response.status_code
    return parse(response.content)


def messages_in(response: Any) -> list[str]:
    """The texts of the `.messages` list of a rendered page."""
    doc = parse(response.content)
    return [item.text.strip() for ul in doc.find_all("ul", **{"class": "messages"}) for item in ul.find_all("li")]


class EventReader:
    """Reads server-sent events off a streaming response, one event (or comment) at a time."""

    def __init__(self, response: StreamingHttpResponse) -> None:
        assert response.streaming, "not a streaming response"
        self.response = response
        self.chunks = iter(cast(Iterator[bytes], response.streaming_content))  # WSGI: a sync iterator

    def next_raw(self) -> str:
        return next(self.chunks).decode()

    def next_event(self) -> dict[str, Any]:
        """The next event as {"event", "data", "retry"}; comments (keepalives) are skipped."""
        while True:
            raw = self.next_raw()
            if not raw.startswith(":"):
                return parse_event(raw)

    def rest(self) -> list[str]:
        """Every chunk left, until the stream ends."""
        return [chunk.decode() for chunk in self.chunks]

    def close(self) -> None:
        """Close the response as a WSGI server would when the browser leaves (the test client's own
        way: without closing the test's database connection, which request_finished would do)."""
        request_finished.disconnect(close_old_connections)
        try:
            self.response.close()
        finally:
            request_finished.connect(close_old_connections)


def parse_event(raw: str) -> dict[str, Any]:
    event: dict[str, Any] = {"event": "message", "data": None, "retry": None}
    for line in raw.strip("\n").split("\n"):
        name, _, value = line.partition(": ")
        if name == "data":
            event["data"] = json.loads(value)
        elif name in ("event", "retry"):
            event[name] = value
    return event


@pytest.fixture
def open_streams() -> Iterator[list[EventReader]]:
    """Readers to close after the test (each open stream holds one of the process's slots)."""
    readers: list[EventReader] = []
    yield readers
    for reader in readers:
        reader.close()
