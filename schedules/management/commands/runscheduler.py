"""`manage.py runscheduler`: fire the code table's and the database's schedules (runstack starts it).

Several may run: a lease (in the broker's Redis, or in the database when the broker is RabbitMQ)
makes one active; the others stand by, try to take the lease every
second and take over within GREENROOM_SCHEDULER_LEASE_TTL + 1 s of the active one dying. SIGTERM or
SIGINT stops it cleanly and releases the lease, so a standby takes over at once.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.db import close_old_connections

from schedules.lease import scheduler_lease
from schedules.scheduler import Scheduler
from workers.models import ProcessKind
from workers.registry import process_beat, process_stopped

logger = logging.getLogger("schedules.runscheduler")

# Seconds between two ticks of the active scheduler (slots fire at most this late).
DEFAULT_TICK = 1.0
# Seconds between two attempts of a standby to take the lease.
STANDBY_RETRY = 1.0


class Command(BaseCommand):
    help = "Run the scheduler: fire due schedules while holding the lease; stand by otherwise."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tick", type=float, default=DEFAULT_TICK,
                            help=f"seconds between ticks (default {DEFAULT_TICK})")

    def handle(self, *args: Any, tick: float, **options: Any) -> None:
        stop = threading.Event()

        def on_signal(signum: int, frame: Any) -> None:
            stop.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        ttl = float(settings.GREENROOM_SCHEDULER_LEASE_TTL)
        lease = scheduler_lease(ttl=ttl)
        scheduler = Scheduler()
        renew_every = ttl / 3
        active = False
        last_renewal = 0.0
        logger.info("scheduler %s started (lease ttl %.1f s, tick %.1f s)", lease.token, ttl, tick)
        try:
            while not stop.is_set():
                now = time.monotonic()
                if not active or now - last_renewal >= renew_every:
                    try:
                        close_old_connections()  # the database lease: drop a broken or too old connection
                        held = lease.hold()
                    except Exception:  # Redis or the database away: stand down until it is back
                        logger.exception("scheduler %s: cannot reach the lease", lease.token)
                        held = False
                    if held:
                        last_renewal = now
                    if held and not active:
                        logger.info("scheduler %s became active", lease.token)
                        scheduler.activate()
                    elif active and not held:
                        logger.warning("scheduler %s lost the lease; standing by", lease.token)
                    active = held
                _beat(active)
                if active:
                    close_old_connections()
                    try:
                        scheduler.tick()
                    except Exception:  # one bad tick must not stop the scheduler
                        logger.exception("scheduler tick failed")
                    stop.wait(_until_next(tick))
                else:
                    stop.wait(STANDBY_RETRY)
        finally:
            if active:
                lease.release()
            try:
                process_stopped()
            except Exception:
                logger.debug("could not mark the scheduler stopped", exc_info=True)
            lease.close()
            logger.info("scheduler %s stopped%s", lease.token, " and released the lease" if active else "")


def _beat(active: bool) -> None:
    """The registry row the dashboard shows (and /metrics reads as the scheduler's last tick)."""
    try:
        close_old_connections()
        process_beat(kind=ProcessKind.SCHEDULER, active=active)
    except Exception:  # the database is away: firing would fail too, and logs it
        logger.debug("scheduler beat failed", exc_info=True)


def _until_next(tick: float) -> float:
    """Seconds to the next multiple of `tick` on the wall clock (slots fall on whole seconds)."""
    return tick - (time.time() % tick) or tick
