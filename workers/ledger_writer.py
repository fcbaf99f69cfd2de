"""Group commit of the worker's finish writes (GREENROOM_LEDGER_GROUP_COMMIT).

One writer thread per worker process takes whatever finish writes are waiting when it wakes (up to
`MAX_BATCH`, no artificial delay) and writes them with one statement and one commit
(`ledger_sql.succeed_runs`). Each worker thread waits for its own row's outcome, so its message is
acked only once the row is durable, and a run whose row has moved on (taken over by another attempt)
still gets False, as from `Job.succeed_run`.

Failures: a batch that fails is written again row by row, each in its own transaction, so one bad
row fails only its own job (its thread gets the exception, as it would from `Job.succeed_run`). A
worker thread whose write the writer has not taken after `STUCK_AFTER` seconds, or whose writer
thread is gone, withdraws it and writes the row itself.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections import deque
from typing import Any

from django.db import connection
from django.utils import timezone

from workers import ledger_sql

logger = logging.getLogger(__name__)

# Most finish writes per statement (100 rows x 7 parameters stays far below every backend's limit).
MAX_BATCH = 100
# Seconds a submitted write may wait for the writer to take it before its thread writes it itself.
STUCK_AFTER = 10.0
# Seconds between a waiting thread's checks that the writer is still alive.
WAIT_SLICE = 0.5

_PENDING, _TAKEN, _WITHDRAWN = range(3)


class _Request:
    __slots__ = ("done", "error", "outcome", "run", "state", "submitted")

    def __init__(self, run: ledger_sql.FinishedRun) -> None:
        self.run = run
        self.state = _PENDING
        self.submitted = time.monotonic()
        self.done = threading.Event()
        self.outcome = False
        self.error: BaseException | None = None

    def resolve(self, *, outcome: bool = False, error: BaseException | None = None) -> None:
        self.outcome, self.error = outcome, error
        self.done.set()


class LedgerWriter:
    """The writer thread of one process and the queue of finish writes waiting for it."""

    def __init__(self, *, max_batch: int = MAX_BATCH, stuck_after: float = STUCK_AFTER) -> None:
        self.max_batch = max_batch
        self.stuck_after = stuck_after
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._pending: deque[_Request] = deque()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self.batches = 0  # statements written, for tests and benchmarks
        self.rows = 0

    def succeed(self, job_id: uuid.UUID | str, *, attempt: int, result: Any, progress: dict[str, Any]) -> bool:
        """`Job.succeed_run`, written with other threads' finish writes; returns once it is durable."""
        run = ledger_sql.FinishedRun(job_id, attempt, result, progress, timezone.now())
        request = _Request(run)
        with self._lock:
            if not self._stopping:
                self._pending.append(request)
                self._start_if_needed()
                self._wake.notify()
            else:
                request.state = _WITHDRAWN
        while request.state != _WITHDRAWN and not request.done.wait(WAIT_SLICE):
            with self._lock:
                alive = self._thread is not None and self._thread.is_alive()
                stuck = time.monotonic() - request.submitted > self.stuck_after
                if request.state == _PENDING and (stuck or not alive):
                    request.state = _WITHDRAWN  # the writer skips it from now on
                elif request.state == _TAKEN and not alive and not request.done.is_set():
                    request.state = _WITHDRAWN  # its writer died without an answer (never seen)
            if request.state == _WITHDRAWN:
                logger.warning("job %s: ledger writer %s; the worker thread writes its row itself", run.job_id,
                               "gone" if not alive else f"has not taken it after {self.stuck_after:.0f} s")
        if request.state == _WITHDRAWN and not request.done.is_set():
            return ledger_sql.succeed_run(run.job_id, attempt=run.attempt, result=run.result, progress=run.progress)
        if request.error is not None:
            raise request.error
        return request.outcome

    def stop(self, timeout: float = 10.0) -> None:
        """Write what is queued, close the writer's connection and end its thread."""
        with self._lock:
            self._stopping = True
            self._wake.notify()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _start_if_needed(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._loop, name="greenroom-ledger-writer", daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        batch: list[_Request] = []
        try:
            while True:
                with self._lock:
                    while not self._pending and not self._stopping:
                        self._wake.wait()
                    if not self._pending:  # stopping, nothing left
                        break
                    batch = []
                    while self._pending and len(batch) < self.max_batch:
                        request = self._pending.popleft()
                        if request.state == _PENDING:
                            request.state = _TAKEN
                            batch.append(request)
                if batch:
                    self._write(batch)
                    batch = []
        except BaseException as exc:  # never leave a taken write unanswered: its thread would wait
            for request in batch:
                if not request.done.is_set():
                    request.resolve(error=exc)
            raise
        finally:
            connection.close()

    def _write(self, batch: list[_Request]) -> None:
        _drop_connection_if_stale()
        try:
            done = ledger_sql.succeed_runs([request.run for request in batch])
        except Exception:  # any failure: each row gets its own chance
            logger.warning("ledger writer: a batch of %d finish writes failed; writing them one by one",
                           len(batch), exc_info=True)
            connection.close()  # a broken connection or an aborted transaction: start afresh
            self._write_each(batch)
            return
        self.batches += 1
        self.rows += len(batch)
        for request in batch:
            request.resolve(outcome=str(uuid.UUID(str(request.run.job_id))) in done)

    def _write_each(self, batch: list[_Request]) -> None:
        for request in batch:
            run = request.run
            try:
                outcome = ledger_sql.succeed_run(run.job_id, attempt=run.attempt, result=run.result,
                                                 progress=run.progress)
            except Exception as exc:  # noqa: BLE001 - this row's own failure, raised by its own thread
                connection.close()
                request.resolve(error=exc)
            else:
                request.resolve(outcome=outcome)


def _drop_connection_if_stale() -> None:
    """What `close_old_connections` does between messages, without its per-use health check: the
    writer's connection goes once it errored or outlived CONN_MAX_AGE; the next query reconnects."""
    if connection.connection is None:
        return
    if connection.errors_occurred or (connection.close_at is not None and time.monotonic() >= connection.close_at):
        connection.close()


_writer: LedgerWriter | None = None
_writer_pid = 0
_writer_lock = threading.Lock()


def writer() -> LedgerWriter:
    """This process's writer (a fresh one in a forked child: threads do not survive a fork)."""
    global _writer, _writer_pid
    with _writer_lock:
        if _writer is None or _writer_pid != os.getpid():
            _writer, _writer_pid = LedgerWriter(), os.getpid()
        return _writer
