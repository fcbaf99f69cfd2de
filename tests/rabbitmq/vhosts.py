"""RabbitMQ vhosts for tests: created and deleted with `rabbitmqctl` (AMQP cannot create a vhost).

A test run on RabbitMQ works in a vhost of its own, so that nothing it declares outlives it and two
runs never share a queue. Without a usable `rabbitmqctl` (not installed, or not allowed to talk to
the node) the run uses the vhost of its URL and deletes the queues it declared at the end.
"""

from __future__ import annotations

import shutil
import subprocess
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import pika

# Seconds one rabbitmqctl call may take (it starts an Erlang VM: about a second).
RABBITMQCTL_TIMEOUT = 60


def is_amqp(url: str) -> bool:
    return url.split("://", 1)[0].lower() in ("amqp", "amqps")


def with_vhost(url: str, vhost: str) -> str:
    """`url` pointed at `vhost`."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + quote(vhost, safe=""), parts.query, parts.fragment))


def vhost_of(url: str) -> str:
    path = urlsplit(url).path
    return unquote(path[1:]) if len(path) > 1 else "/"


def _rabbitmqctl(*args: str) -> bool:
    tool = shutil.which("rabbitmqctl")
    if tool is None:
        return False
    try:
        done = subprocess.run([tool, *args], capture_output=True, timeout=RABBITMQCTL_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def add_vhost(url: str, vhost: str) -> bool:
    """Create `vhost` with full permissions for the URL's user; False if rabbitmqctl cannot."""
    user = urlsplit(url).username or "guest"
    return _rabbitmqctl("add_vhost", vhost) and _rabbitmqctl("set_permissions", "-p", vhost, user, ".*", ".*", ".*")


def delete_vhost(vhost: str) -> bool:
    """Delete `vhost` and every queue in it."""
    return _rabbitmqctl("delete_vhost", vhost)


def delete_queues(url: str, names: list[str]) -> None:
    """Delete these queues (and their .DQ and .XQ) in the URL's vhost, those that exist."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        for name in names:
            for queue in (name, f"{name}.DQ", f"{name}.XQ"):
                channel = connection.channel()
                try:
                    channel.queue_delete(queue)
                except pika.exceptions.ChannelClosedByBroker:
                    continue
                channel.close()
    finally:
        connection.close()
