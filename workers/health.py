"""Health checks: `/healthz` (the process answers) and `/readyz` (database and broker — Redis or
RabbitMQ — reachable)."""

from __future__ import annotations

import dramatiq
from django.db import connection
from django.http import HttpRequest, JsonResponse

from project.rabbitmq import GreenroomRabbitmqBroker


def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def check_database() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        return f"{type(exc).__name__}: {exc}"
    return None


def check_broker() -> str | None:
    """None if the broker answers one round trip: a Redis PING, or on RabbitMQ a passive declare."""
    broker = dramatiq.get_broker()
    if isinstance(broker, GreenroomRabbitmqBroker):
        ping = broker.ping
    elif (client := getattr(broker, "client", None)) is not None:
        ping = client.ping
    else:
        return None  # the stub broker in tests is always there
    try:
        ping()
    except Exception as exc:  # noqa: BLE001
        return f"{type(exc).__name__}: {exc}"
    return None


def readyz(request: HttpRequest) -> JsonResponse:
    checks = {"database": check_database(), "broker": check_broker()}
    ready = all(error is None for error in checks.values())
    body = {
        "status": "ready" if ready else "unavailable",
        "checks": {name: ("ok" if error is None else error) for name, error in checks.items()},
    }
    return JsonResponse(body, status=200 if ready else 503)
