"""Real worker processes for tests: Dramatiq workers under Greenroom's supervisor, on the test DB."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection

from workers.supervisor import Program, Supervisor

BASE_DIR = Path(settings.BASE_DIR)

# Modules every test worker imports: the catalogue, plus the jobs that exist only for tests.
JOB_MODULES = ["workers.jobs", "tests.support.testjobs"]


def database_url() -> str:
    """A DATABASE_URL for the database the tests run on (the test database, once set up)."""
    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    user = db.get("USER") or ""
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    return f"postgres://{user}{password}@{host}:{port}/{db['NAME']}"


def worker_env(**overrides: Any) -> dict[str, str]:
    env = {
        "DATABASE_URL": database_url(),
        "GREENROOM_BROKER_URL": os.environ["GREENROOM_BROKER_URL"],
        "DJANGO_SETTINGS_MODULE": "project.settings",
        # Idle consumers poll every 100 ms instead of backing off to 1 s: faster tests.
        "dramatiq_worker_timeout": "100",
        "PYTHONPATH": str(BASE_DIR),
    }
    env.update({key: str(value) for key, value in overrides.items()})
    return env


def worker_program(name: str, *, queues: list[str], threads: int = 4, **env: Any) -> Program:
    argv = [
        sys.executable, "-m", "dramatiq", "--path", str(BASE_DIR), "--processes", "1", "--threads", str(threads),
        "--worker-shutdown-timeout", "15000", "django_dramatiq.setup", *JOB_MODULES, "--queues", *queues,
    ]
    return Program(name=name, argv=argv, env=worker_env(**env))


class WorkerPool:
    """Supervised worker processes, run from a background thread of the test process."""

    def __init__(self, programs: list[Program]) -> None:
        self.supervisor = Supervisor(programs, stop_timeout=20, say=lambda line: print(line, file=sys.stderr))
        self._thread = threading.Thread(target=self.supervisor.run, daemon=True)

    def start(self) -> WorkerPool:
        self.supervisor.start()
        self._thread.start()
        return self

    def stop(self) -> None:
        self.supervisor.stop()
        self._thread.join(60)

    def program(self, name: str) -> Program:
        return next(p for p in self.supervisor.programs if p.name == name)

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Signal a worker's whole process group (the Dramatiq main process and its child)."""
        process = self.program(name).process
        assert process is not None
        os.killpg(process.pid, sig)


def wait_for[T](predicate: Callable[[], T], *, timeout: float, interval: float = 0.1, what: str = "condition") -> T:
    """Poll `predicate` until it returns something truthy; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)
