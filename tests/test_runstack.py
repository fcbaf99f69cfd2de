"""`manage.py runstack` end to end: embedded Redis, web, supervised workers, clean stop."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import psutil
import pytest

from tests.support.redis_server import free_port
from tests.support.workers import wait_for

BASE_DIR = Path(__file__).resolve().parent.parent


def _env(var_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"GREENROOM_BROKER_URL", "DATABASE_URL"}}
    env.update(GREENROOM_VAR_DIR=str(var_dir), GREENROOM_WORKERS="interactive,default:2 batch:1",
               PYTHONUNBUFFERED="1")
    return env


def _http(method: str, url: str, token: str, body: dict | None = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Authorization": f"Token {token}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, json.loads(response.read())


def _up(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def _dramatiq_processes(root: psutil.Process) -> list[psutil.Process]:
    found = []
    for process in root.children(recursive=True):
        try:
            if process.status() != psutil.STATUS_ZOMBIE and "dramatiq" in " ".join(process.cmdline()):
                found.append(process)
        except psutil.Error:
            continue  # exited while we looked
    return found


@pytest.mark.chaos
def test_runstack_serves_jobs_restarts_dead_workers_and_stops_cleanly(tmp_path: Path) -> None:
    # Given runstack on the embedded default (no broker URL, SQLite under its var dir)
    port = free_port()
    env = _env(tmp_path)
    log = (tmp_path / "runstack.log").open("wb")
    stack = subprocess.Popen([sys.executable, "manage.py", "runstack", "--port", str(port), "--web-workers", "1"],
                             cwd=BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT)
    root = psutil.Process(stack.pid)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _up(f"{base}/readyz"), timeout=90, interval=0.5, what="runstack to be ready")
        assert (tmp_path / "redis" / "redis.sock").exists()
        wait_for(lambda: len(_dramatiq_processes(root)) >= 4, timeout=60, what="2 workers (main + child each)")
        token = subprocess.run([sys.executable, "manage.py", "create_api_token", "admin"], cwd=BASE_DIR, env=env,
                               check=True, capture_output=True, text=True).stdout.strip()

        # When a job is enqueued through the API, it reaches SUCCESSFUL
        status, accepted = _http("POST", f"{base}/api/jobs/", token, {"task": "diagnostics.noop"})
        assert status == 202
        job_url = f"{base}{accepted['url']}"
        wait_for(lambda: _http("GET", job_url, token)[1]["status"] == "SUCCESSFUL", timeout=30, what="the job")

        # When a worker's whole process group is SIGKILLed, the supervisor starts a new one
        mains = [p for p in _dramatiq_processes(root) if p.ppid() == stack.pid]
        victim = mains[0]
        os.killpg(victim.pid, signal.SIGKILL)
        wait_for(lambda: any(p.pid != victim.pid for p in _dramatiq_processes(root) if p.ppid() == stack.pid)
                 and len([p for p in _dramatiq_processes(root) if p.ppid() == stack.pid]) == 2,
                 timeout=60, what="the killed worker to be replaced")
        status, accepted = _http("POST", f"{base}/api/jobs/", token, {"task": "diagnostics.noop"})
        job_url = f"{base}{accepted['url']}"
        wait_for(lambda: _http("GET", job_url, token)[1]["status"] == "SUCCESSFUL", timeout=30, what="the 2nd job")
        children = root.children(recursive=True)
    finally:
        # When it gets Ctrl-C (SIGINT), it stops every process it started, Redis included
        stack.send_signal(signal.SIGINT)
        code = stack.wait(90)
        log.close()
    assert code == 0, (tmp_path / "runstack.log").read_text()[-3000:]
    _gone, alive = psutil.wait_procs(children, timeout=10)
    assert alive == [], f"left running: {[p.cmdline() for p in alive]}"
    assert not _up(f"{base}/healthz")
