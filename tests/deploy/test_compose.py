"""compose.yaml: its structure, and its services' own commands run outside Docker.

`docker compose config` (or Debian's docker-compose, which CI installs) validates the file. There is
no Docker engine to run containers here, so the checks below also parse the file, then start the
very commands the services run —
migrate, web (gunicorn), scheduler and the three worker classes — on this machine against the
suite's Redis and database, and follow jobs from an HTTP request to the worker class that runs them.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.contrib.auth import get_user_model

from tests.support.workers import database_url, wait_for, worker_env
from workers import catalogue
from workers.models import ApiToken, FleetProcess, Job, JobStatus
from workers.supervisor import Program

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
APP_SERVICES = ["migrate", "web", "scheduler", "worker-interactive", "worker-default", "worker-batch"]


def test_every_service_has_a_health_check_or_runs_once_and_dependencies_exist():
    for name, service in SERVICES.items():
        assert "healthcheck" in service or service.get("restart") == "no", f"{name} has no health check"
        for dependency in service.get("depends_on", {}):
            assert dependency in SERVICES, f"{name} depends on unknown {dependency}"
    assert SERVICES["scheduler"]["deploy"]["replicas"] == 2
    for name in APP_SERVICES[1:]:
        assert SERVICES[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}


def test_the_broker_redis_never_evicts_and_persists_and_the_cache_redis_may_evict():
    broker = SERVICES["redis-broker"]["command"]
    assert broker[broker.index("--maxmemory-policy") + 1] == "noeviction"
    assert broker[broker.index("--appendonly") + 1] == "yes"
    assert broker[broker.index("--appendfsync") + 1] == "everysec"
    assert broker[broker.index("--save") + 1] != ""  # RDB snapshots as well
    cache = SERVICES["redis-cache"]["command"]
    assert cache[cache.index("--maxmemory-policy") + 1] == "allkeys-lru"
    assert cache[cache.index("--appendonly") + 1] == "no"
    env = SERVICES["web"]["environment"]
    assert env["GREENROOM_BROKER_URL"].startswith("redis://redis-broker:")
    assert env["GREENROOM_CACHE_URL"].startswith("redis://redis-cache:")


def test_each_worker_class_consumes_its_own_queue():
    for queue in catalogue.QUEUES:
        argv = SERVICES[f"worker-{queue}"]["command"]
        assert argv[:3] == ["python", "manage.py", "rundramatiq"]
        assert queue in argv[argv.index("--queues") + 1:]
        assert argv[argv.index("--processes") + 1] == "1"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _local(name: str, port: int) -> Program:
    """The service's command, run here: `python` is this interpreter, the web binds to a free port."""
    argv = list(SERVICES[name]["command"])
    if argv[0] == "python":
        argv[0] = sys.executable
    if argv[0] == "gunicorn":
        argv = [sys.executable, "-m", "gunicorn", *argv[1:]]
        argv[argv.index("--bind") + 1] = f"127.0.0.1:{port}"
    compose_env = {k: str(v) for k, v in SERVICES[name]["environment"].items()}
    # The compose file's own settings, with this machine's database and broker instead of its hosts.
    env = worker_env(**{**compose_env, "DATABASE_URL": database_url(),
                        "GREENROOM_BROKER_URL": worker_env()["GREENROOM_BROKER_URL"],
                        "GREENROOM_CACHE_URL": "", "GREENROOM_LOG_FORMAT": "text",
                        "GREENROOM_HEARTBEAT_INTERVAL": "0.5"})
    return Program(name=name, argv=argv, env=env)


def _post(port: int, key: str, task: str, params: dict[str, Any]) -> str:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/jobs/", method="POST",
        data=json.dumps({"task": task, "params": params}).encode(),
        headers={"Authorization": f"Token {key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 202
        return str(json.loads(response.read())["id"])


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def _ran_on(job_id: str) -> list[str]:
    """The queues served by the worker process that ran the job."""
    job = wait_for(lambda: Job.objects.filter(pk=job_id, status=JobStatus.SUCCESSFUL).first(), timeout=60,
                   what=f"job {job_id} to succeed")
    pid = int(job.worker.rsplit(":", 1)[1])
    return wait_for(lambda: FleetProcess.objects.filter(pid=pid).first(), timeout=10, what="its worker row").queues


@pytest.mark.chaos
def test_a_job_per_class_goes_from_the_web_through_the_broker_to_its_worker_class(start_workers, broker):
    user = get_user_model().objects.create_superuser("ops", "ops@example.com", "pw")
    _, key = ApiToken.issue(user=user)
    port = _free_port()
    # migrate first, once, as compose orders it (a no-op on the test database, but the same command)
    migrate = _local("migrate", port)
    done = subprocess.run(migrate.argv, env=migrate.env, cwd=ROOT, capture_output=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    # web, scheduler and the interactive workers; interactive jobs can only go to worker-interactive
    start_workers(_local("web", port), _local("scheduler", port), _local("worker-interactive", port))
    wait_for(lambda: _ready(port), timeout=60, what="the web's /readyz")
    interactive = _post(port, key, "diagnostics.noop", {})
    assert _ran_on(interactive) == ["interactive"]
    # then the other classes
    start_workers(_local("worker-default", port), _local("worker-batch", port))
    default = _post(port, key, "diagnostics.sleep", {"seconds": 0.2})
    # not maintenance.reconcile: the scheduler fires that one every minute, and its unique key turns
    # a POST that lands while the scheduler's run is open into a 409
    batch = _post(port, key, "documents.embed_batch", {"document_ids": [], "scope": "compose-test"})
    assert "default" in _ran_on(default)
    assert _ran_on(batch) == ["batch"]
    # the health checks the compose file declares pass against these processes
    wait_for(lambda: FleetProcess.objects.filter(kind="scheduler", active=True).exists(), timeout=30,
             what="the scheduler's beat")
    from django.core.management import call_command

    for name in ("worker-interactive", "scheduler"):
        check = SERVICES[name]["healthcheck"]["test"]
        assert check[1:4] == ["python", "manage.py", "probe"]
        call_command("probe", check[4])  # raises CommandError if it would fail


def _compose_command() -> list[str] | None:
    """`docker compose` (the plugin) or `docker-compose` (Debian's package), whichever validates here."""
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True,
                                                 check=False).returncode == 0:
        return ["docker", "compose"]
    return ["docker-compose"] if shutil.which("docker-compose") else None


def test_docker_compose_accepts_the_file():
    command = _compose_command()
    if command is None:
        # .ci/run installs Debian's docker-compose and sets GREENROOM_REQUIRE_COMPOSE=1: CI never skips this.
        assert not os.environ.get("GREENROOM_REQUIRE_COMPOSE"), "docker compose is required but not installed"
        pytest.skip("neither `docker compose` nor `docker-compose` is installed")
    checked = subprocess.run([*command, "-f", str(ROOT / "compose.yaml"), "config", "-q"], capture_output=True,
                             text=True, timeout=60, check=False, env={**os.environ, "SECRET_KEY": "x"})
    assert checked.returncode == 0, checked.stderr
