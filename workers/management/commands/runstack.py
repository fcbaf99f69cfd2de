"""`manage.py runstack`: the whole stack in one command (what `make run` calls).

Migrates, starts the embedded Redis when no broker URL is set, then supervises the web server and one
Dramatiq worker process per slot of GREENROOM_WORKERS, restarting any that exits. Ctrl-C (or SIGTERM)
stops the web server and the workers together (workers finish their running jobs and requeue what
they had prefetched, within their shutdown timeout), then Redis.
"""

from __future__ import annotations

import secrets
import signal
import sys
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from project.embedded_redis import EmbeddedRedis, EmbeddedRedisError
from workers import conf, metrics
from workers.supervisor import Program, Supervisor

ADMIN_USERNAME = "admin"
# Milliseconds a stopping worker lets its running jobs finish before it gives up on them.
WORKER_SHUTDOWN_TIMEOUT_MS = 30_000


def parse_worker_slots(spec: str) -> list[tuple[list[str], int]]:
    """'interactive,default:4 batch:2' → [(['interactive', 'default'], 4), (['batch'], 2)]."""
    slots = []
    for item in spec.split():
        queues, _, threads = item.partition(":")
        names = [q for q in queues.split(",") if q]
        if not names or not threads.isdigit() or int(threads) < 1:
            raise CommandError(f"bad GREENROOM_WORKERS slot {item!r}: use 'queue,queue:threads'")
        slots.append((names, int(threads)))
    return slots


class Command(BaseCommand):
    help = "Run Greenroom: migrate, embedded Redis if needed, web server and supervised workers."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1", help="address the web server binds (default 127.0.0.1)")
        parser.add_argument("--port", type=int, default=8000, help="port of the web server (default 8000)")
        parser.add_argument("--web-workers", type=int, default=2, help="gunicorn worker processes (default 2)")

    def handle(self, *args: Any, host: str, port: int, web_workers: int, **options: Any) -> None:
        slots = parse_worker_slots(conf.get().workers)
        call_command("migrate", interactive=False, verbosity=0)
        call_command("collectstatic", interactive=False, verbosity=0)
        login = self._ensure_admin()

        redis = None
        if settings.GREENROOM_BROKER_EMBEDDED:
            redis = EmbeddedRedis(Path(settings.GREENROOM_EMBEDDED_REDIS_SOCKET))
            try:
                redis.start()
            except EmbeddedRedisError as exc:
                raise CommandError(str(exc)) from exc
            self.stdout.write(f"Embedded Redis on {redis.url}")
        if settings.GREENROOM_SEED_DEMO:
            # After Redis is up: the demo documents' embed jobs are published straight away.
            call_command("seed_demo", verbosity=0)

        manage = [sys.executable, str(Path(settings.BASE_DIR) / "manage.py")]
        # Every child writes its metrics to one directory, emptied now: GET /metrics sums it (docs/metrics.md).
        env = metrics.multiprocess_env(Path(settings.GREENROOM_METRICS_DIR or Path(settings.VAR_DIR) / "metrics"))
        programs = [
            Program(
                name="web",
                argv=[sys.executable, "-m", "gunicorn", "project.wsgi:application", "--bind", f"{host}:{port}",
                      "--workers", str(web_workers), "--threads", "24", "--graceful-timeout", "10",
                      "--access-logfile", "-", "--no-control-socket", "--chdir", str(settings.BASE_DIR)],
                env=env,
            )
        ]
        for index, (queues, threads) in enumerate(slots, start=1):
            programs.append(Program(
                name=f"worker-{index}[{','.join(queues)}]",
                argv=[*manage, "rundramatiq", "--processes", "1", "--threads", str(threads),
                      "--worker-shutdown-timeout", str(WORKER_SHUTDOWN_TIMEOUT_MS), "--queues", *queues],
                env=env,
            ))
        programs.append(Program(name="scheduler", argv=[*manage, "runscheduler"], env=env))
        supervisor = Supervisor(programs, stop_timeout=WORKER_SHUTDOWN_TIMEOUT_MS / 1000 + 10,
                                say=lambda line: self.stdout.write(line))

        def on_signal(signum: int, frame: Any) -> None:
            self.stdout.write("Stopping…")
            supervisor.stop()

        signal.signal(signal.SIGINT, on_signal)
        signal.signal(signal.SIGTERM, on_signal)
        supervisor.start()
        self.stdout.write(self.style.SUCCESS(f"Greenroom is running on http://{host}:{port}/"))
        self.stdout.write(f"  admin:  http://{host}:{port}/admin/  login {login}")
        self.stdout.write(f"  dashboard: http://{host}:{port}/dashboard/")
        self.stdout.write(f"  API:    POST http://{host}:{port}/api/jobs/  (token: manage.py create_api_token admin)")
        self.stdout.write(f"  programs: {', '.join(p.name for p in programs[1:])}")
        try:
            supervisor.run()
        finally:
            if redis is not None:
                redis.stop()
        self.stdout.write("Stopped.")

    def _ensure_admin(self) -> str:
        """Create the admin superuser on first run; its password lives in var/admin-password."""
        password_file = Path(settings.VAR_DIR) / "admin-password"
        user_model = get_user_model()
        if user_model.objects.filter(username=ADMIN_USERNAME).exists():
            if password_file.exists():
                return f"{ADMIN_USERNAME} / {password_file.read_text().strip()}"
            return f"{ADMIN_USERNAME} (password set earlier; change it with manage.py changepassword admin)"
        password = secrets.token_urlsafe(12)
        user_model.objects.create_superuser(ADMIN_USERNAME, email="", password=password)
        password_file.write_text(password + "\n")
        password_file.chmod(0o600)
        return f"{ADMIN_USERNAME} / {password}"
