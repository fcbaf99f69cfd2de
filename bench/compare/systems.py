"""The systems compared: how to start their workers, drive them, and count their waiting jobs.

Each system gets its own database number on the one private redis-server, so that their workers can
idle side by side without seeing each other's queues.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import redis
from common import RESULT_PREFIX

HERE = Path(__file__).resolve().parent
BASE_DIR = HERE.parents[1]
# Seconds a stopping worker may take to finish and requeue before its process group is killed.
STOP_TIMEOUT = 30.0


@dataclass
class Program:
    name: str
    argv: list[str]
    env: dict[str, str]
    cwd: Path = BASE_DIR


@dataclass
class System:
    key: str
    label: str
    processes: int
    threads: str  # as compared: "8" threads per process, or "1 (prefork)"
    redis_url_base: str
    redis_db: int
    workdir: Path
    latency: bool = True  # measure enqueue→start latency and enqueue throughput
    notes: list[str] = field(default_factory=list)

    @property
    def redis_url(self) -> str:
        return f"{self.redis_url_base}/{self.redis_db}"

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.redis_url, socket_timeout=10)

    def programs(self) -> list[Program]:
        raise NotImplementedError

    def driver_argv(self) -> list[str]:
        raise NotImplementedError

    def driver_env(self) -> dict[str, str]:
        raise NotImplementedError

    def pending(self, client: redis.Redis) -> int:
        """Jobs not yet done: waiting, prefetched or running (acked ones are gone)."""
        raise NotImplementedError

    def drive(self, *args: str, timeout: float = 600) -> dict[str, Any]:
        """Run the system's driver with `args`; return the JSON it printed."""
        log = self.workdir / f"{self.key}-driver.log"
        with log.open("a") as out:
            out.write(f"$ {' '.join(args)}\n")
            out.flush()
            done = subprocess.run([*self.driver_argv(), *args], env=self.driver_env(), cwd=BASE_DIR, timeout=timeout,
                                  stdout=subprocess.PIPE, stderr=out, text=True, check=False)
            out.write(done.stdout)
        for line in reversed(done.stdout.splitlines()):
            if line.startswith(RESULT_PREFIX):
                return dict(json.loads(line[len(RESULT_PREFIX):]))
        raise RuntimeError(f"{self.key} driver {' '.join(args)} failed (exit {done.returncode}); see {log}")

    def start_driver(self, *args: str) -> subprocess.Popen[str]:
        log = (self.workdir / f"{self.key}-driver.log").open("a")
        return subprocess.Popen([*self.driver_argv(), *args], env=self.driver_env(), cwd=BASE_DIR,
                                stdout=subprocess.PIPE, stderr=log, text=True)


# Greenroom settings a run may set from outside (e.g. GREENROOM_LEDGER_GROUP_COMMIT=true make bench): kept.
FORWARDED = ("GREENROOM_LEDGER_GROUP_COMMIT",)


def _base_env() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items()
           if key in FORWARDED or not key.startswith(("GREENROOM_", "DATABASE_URL"))}
    env["PYTHONUNBUFFERED"] = "1"
    return env


@dataclass
class Greenroom(System):
    database_url: str = ""
    queue: str = "interactive"

    def driver_env(self) -> dict[str, str]:
        env = _base_env()
        env.update({
            "DJANGO_SETTINGS_MODULE": "project.settings",
            "DATABASE_URL": self.database_url,
            "GREENROOM_BROKER_URL": self.redis_url,
            "GREENROOM_VAR_DIR": str(self.workdir / self.key),
        })
        return env

    def driver_argv(self) -> list[str]:
        return [sys.executable, str(HERE / "greenroom_driver.py")]

    def programs(self) -> list[Program]:
        # As production runs them: one `rundramatiq --processes 1` program per slot (runstack's way).
        return [
            Program(name=f"{self.key}-worker-{n}", env=self.driver_env(), argv=[
                sys.executable, str(BASE_DIR / "manage.py"), "rundramatiq", "--processes", "1",
                "--threads", self.threads, "--worker-shutdown-timeout", "20000", "--queues", self.queue,
            ])
            for n in range(1, self.processes + 1)
        ]

    def pending(self, client: redis.Redis) -> int:
        return dramatiq_pending(client)


@dataclass
class RawDramatiq(System):
    def driver_env(self) -> dict[str, str]:
        env = _base_env()
        env["BENCH_REDIS_URL"] = self.redis_url
        return env

    def driver_argv(self) -> list[str]:
        return [sys.executable, str(HERE / "dramatiq_driver.py")]

    def programs(self) -> list[Program]:
        # Raw Dramatiq's own way: one main process with N worker processes, stock settings.
        return [Program(name=f"{self.key}-worker", env=self.driver_env(), cwd=HERE, argv=[
            sys.executable, "-m", "dramatiq", "--path", str(HERE), "--processes", str(self.processes),
            "--threads", self.threads, "dramatiq_app", "--queues", "bench",
        ])]

    def pending(self, client: redis.Redis) -> int:
        return dramatiq_pending(client)


@dataclass
class Celery(System):
    python: Path = Path()

    def driver_env(self) -> dict[str, str]:
        env = _base_env()
        env["BENCH_REDIS_URL"] = self.redis_url
        env["PYTHONPATH"] = str(HERE)
        return env

    def driver_argv(self) -> list[str]:
        return [str(self.python), str(HERE / "celery_driver.py")]

    def programs(self) -> list[Program]:
        return [Program(name=f"{self.key}-worker", env=self.driver_env(), cwd=HERE, argv=[
            str(self.python), "-m", "celery", "-A", "celery_app", "worker", "--pool", "prefork",
            "--concurrency", str(self.processes), "--prefetch-multiplier", "1", "--queues", "bench",
            "--loglevel", "WARNING",
        ])]

    def pending(self, client: redis.Redis) -> int:
        # kombu's Redis transport: waiting messages in the queue's lists (one per priority step),
        # delivered but unacked ones in the `unacked` hash until the late ack.
        waiting = sum(int(client.llen(key)) for key in client.scan_iter(match="bench*", _type="list"))
        return waiting + int(client.hlen("unacked"))


def dramatiq_pending(client: redis.Redis) -> int:
    """Messages in Dramatiq's `<ns>:<queue>.msgs` hashes: queued, prefetched or running, until acked."""
    total = 0
    for key in client.scan_iter(match="*.msgs"):
        if not key.endswith(b".XQ.msgs"):
            total += int(client.hlen(key))
    return total


class Workers:
    """The worker programs of one system, each in its own session, logging to a file."""

    def __init__(self, system: System) -> None:
        self.system = system
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self) -> Workers:
        for program in self.system.programs():
            log = (self.system.workdir / f"{program.name}.log").open("ab")
            self.processes.append(subprocess.Popen(program.argv, env=program.env, cwd=program.cwd, stdout=log,
                                                   stderr=subprocess.STDOUT, start_new_session=True))
        return self

    def tree(self) -> list[psutil.Process]:
        """Every live process of the system's programs: main processes and their children."""
        found = []
        for popen in self.processes:
            try:
                main = psutil.Process(popen.pid)
                found += [main, *main.children(recursive=True)]
            except psutil.NoSuchProcess:
                continue
        return found

    def stop(self) -> None:
        for popen in self.processes:
            if popen.poll() is None:
                popen.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        for popen in self.processes:
            try:
                popen.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            try:
                os.killpg(popen.pid, signal.SIGKILL)  # its own session: orphans included
            except ProcessLookupError:
                pass
            popen.wait()
        self.processes = []
