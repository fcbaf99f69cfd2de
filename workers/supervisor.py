"""A small process supervisor, as compose or Kubernetes would be: start programs, restart the ones
that exit (at once after a clean exit, with growing backoff after a crash), stop all on request.

`runstack` runs the web server and one Dramatiq process per worker slot under it. One process per
slot matters: a Dramatiq main process stops *all* its children when one exits, so recycling a worker
(memory cap, hard time limit) must only ever take down a single-process worker.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)

# Backoff after a crash: first wait, then doubled per crash in a row, up to the cap (seconds).
RESTART_BACKOFF_INITIAL = 1.0
RESTART_BACKOFF_MAX = 30.0
# A program that ran at least this long before crashing starts again with the initial backoff.
STABLE_AFTER = 30.0
# Seconds between two looks at the children.
POLL_INTERVAL = 0.2


@dataclass
class Program:
    """One supervised command line."""

    name: str
    argv: list[str]
    env: dict[str, str] | None = None
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    crashes: int = 0
    restarts: int = 0
    restart_at: float | None = None
    exit_codes: list[int] = field(default_factory=list)


class Supervisor:
    """Keeps `programs` running until `stop()`."""

    def __init__(self, programs: list[Program], *, stop_timeout: float = 40.0,
                 say: Callable[[str], None] | None = None) -> None:
        self.programs = programs
        self.stop_timeout = stop_timeout
        self.say = say or logger.info
        self._stopping = threading.Event()

    def start(self) -> None:
        for program in self.programs:
            self._spawn(program)

    def _spawn(self, program: Program) -> None:
        env = {**os.environ, **(program.env or {})}
        # Own session: a terminal's Ctrl-C reaches only us, and we stop the children in order.
        program.process = subprocess.Popen(program.argv, env=env, stdin=subprocess.DEVNULL, start_new_session=True)
        program.started_at = time.monotonic()
        program.restart_at = None

    def poll_once(self) -> None:
        """Restart what has exited (when its backoff has passed)."""
        now = time.monotonic()
        for program in self.programs:
            proc = program.process
            if program.restart_at is not None:
                if now >= program.restart_at and not self._stopping.is_set():
                    program.restarts += 1
                    self._spawn(program)
                continue
            if proc is None or proc.poll() is None:
                continue
            code = proc.returncode
            program.exit_codes.append(code)
            # A main process that died on its own (killed, crashed) may leave worker processes behind
            # that keep consuming unsupervised: ask them to stop (in-flight jobs finish, prefetched
            # messages go back to the queue) before a fresh copy starts beside them.
            _signal_group(proc, signal.SIGTERM)
            if code == 0:
                program.crashes = 0
                delay = 0.0
            else:
                if now - program.started_at >= STABLE_AFTER:
                    program.crashes = 0
                program.crashes += 1
                delay = min(RESTART_BACKOFF_MAX, RESTART_BACKOFF_INITIAL * 2 ** (program.crashes - 1))
            self.say(f"{program.name} exited with {code}; restarting in {delay:.0f} s")
            program.restart_at = now + delay

    def run(self) -> None:
        """Supervise until stop() is called (from a signal handler or another thread)."""
        while not self._stopping.wait(POLL_INTERVAL):
            self.poll_once()
        self._terminate_all()

    def stop(self) -> None:
        self._stopping.set()

    def _terminate_all(self) -> None:
        live = [p for p in self.programs if p.process is not None and p.process.poll() is None]
        for program in live:
            # The main process only: it forwards SIGTERM to its children itself. Signalling the whole
            # group would hand each Dramatiq worker process a second SIGTERM, which it takes as
            # "kill now" (sys.exit mid-job, prefetched messages stranded until broker maintenance).
            assert program.process is not None
            _signal(program.process, signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout
        for program in live:
            assert program.process is not None
            try:
                program.process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.say(f"{program.name} did not stop within {self.stop_timeout:.0f} s; killing it")
                _signal_group(program.process, signal.SIGKILL)
                program.process.wait()
            # Whatever the main process left behind in its group must not outlive it.
            _signal_group(program.process, signal.SIGKILL)


def _signal(process: subprocess.Popen[bytes], sig: int) -> None:
    try:
        process.send_signal(sig)
    except ProcessLookupError:
        pass


def _signal_group(process: subprocess.Popen[bytes], sig: int) -> None:
    # The whole group: a Dramatiq main process's children must never be orphaned.
    try:
        os.killpg(process.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
