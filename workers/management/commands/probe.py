"""`manage.py probe worker|scheduler`: exit 0 while a process of that kind on this host beats.

The liveness probe of worker and scheduler containers (deploy/k8s/): a Dramatiq process can be up
yet stuck (a job holding the GIL, a dead housekeeping thread); its registry row then stops beating
and the probe fails, so the orchestrator replaces the container. `--host` defaults to this host's
name (a pod's name in Kubernetes).
"""

from __future__ import annotations

import socket
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from workers import registry
from workers.models import ProcessKind


class Command(BaseCommand):
    help = "Exit 0 if a worker (or scheduler) process on this host beat recently; 1 otherwise."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("kind", choices=[ProcessKind.WORKER, ProcessKind.SCHEDULER])
        parser.add_argument("--host", default=None, help="host name to look for (default: this host's)")

    def handle(self, *args: Any, kind: str, host: str | None, **options: Any) -> None:
        host = host or socket.gethostname()
        row = registry.alive(kind).filter(host=host).order_by("-heartbeat_at").first()
        if row is None:
            raise CommandError(f"no {kind} process on {host} beat in the last {registry.alive_window()}")
        self.stdout.write(f"{kind} {row.host}:{row.pid} beat at {row.heartbeat_at.isoformat()}")
