"""Group commit of the worker's claims and finish writes (GREENROOM_LEDGER_GROUP_COMMIT).

One writer thread per worker process takes whatever writes are waiting when it wakes (up to
`MAX_BATCH` of each kind, no artificial delay) and writes them with one statement per kind: the
claims (`ledger_sql.claim_runs`) first, since worker threads wait for them, then the finish writes
(`ledger_sql.succeed_runs`), each statement its own commit. Worker threads then never touch the
database for a job that does not itself use it (no per-job connection health check either). A
claim's thread waits for the claimed row or None, as from `Job.claim_run`; a finish gets True, or
False when the row has moved on (taken over by another attempt), as from `Job.succeed_run` — so a
message is acked only once its row is durable (held acks: project/held_acks.py).

A claim for a job whose finish is in the same round (its message delivered again) makes that round
write its finishes first: the claim then finds the job SUCCESSFUL. Two claims of one job in one
round: the second is answered "not claimed".

Hand-offs between threads use C-level primitives (a `queue.SimpleQueue` to the writer, a bare lock
per request back): this path runs twice per job, and Python-level Conditions and Events cost more
here than the statements' own Python.

Failures: a batch that fails is written again row by row, each in its own transaction, so one bad
row fails only its own job (its thread gets the exception, as it would from the one-row call). A
worker thread whose write the writer has not taken after `STUCK_AFTER` seconds, or whose writer
thread is gone, withdraws it and writes the row itself.
"""

from __future__ import annotations

import _thread
import logging
import os
import queue
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.db import connection
from django.utils import timezone

from project import held_acks
from workers import conf, ledger_sql
from workers.models import Job

logger = logging.getLogger(__name__)

# Most writes of one kind per statement (100 rows x 7 parameters stays far below every backend's limit).
MAX_BATCH = 100
# Seconds a submitted write may wait for the writer to take it before its thread writes it itself.
STUCK_AFTER = 10.0
# Seconds between a waiting thread's checks that the writer is still alive.
WAIT_SLICE = 0.5

_PENDING, _TAKEN, _WITHDRAWN = range(3)


class _Request:
    """A claim (`run` is None, `job_id` set) or a finish write (`run` set), and its outcome."""

    __slots__ = ("_done", "error", "job_id", "outcome", "resolved", "run", "state", "submitted", "then")

    def __init__(self, *, run: ledger_sql.FinishedRun | None = None, job_id: str = "",
                 then: Callable[[Any, BaseException | None], None] | None = None) -> None:
        self.run = run
        self.job_id = job_id
        self.state = _PENDING
        self.submitted = time.monotonic()
        # A lock held until the outcome is in: releasing and acquiring a bare lock is far cheaper
        # than an Event (a Condition in Python) on this path, taken twice per job.
        self._done = _thread.allocate_lock()
        self._done.acquire()
        self.resolved = False
        self.outcome: Any = None
        self.error: BaseException | None = None
        self.then = then  # called with (outcome, error) once resolved, by the resolving thread

    def resolve(self, *, outcome: Any = None, error: BaseException | None = None) -> None:
        self.outcome, self.error = outcome, error
        self.resolved = True
        self._done.release()
        if self.then is not None:
            try:
                self.then(outcome, error)
            except Exception:  # never let a callback break the writer thread
                logger.exception("ledger writer: the callback of a write failed")

    def wait(self, timeout: float) -> bool:
        """Wait up to `timeout` s for the outcome; True once resolved."""
        if self._done.acquire(timeout=timeout):
            self._done.release()
        return self.resolved


class LedgerWriter:
    """The writer thread of one process and the queue of claims and finish writes waiting for it."""

    def __init__(self, *, max_batch: int = MAX_BATCH, stuck_after: float = STUCK_AFTER) -> None:
        self.max_batch = max_batch
        self.stuck_after = stuck_after
        self._lock = threading.Lock()  # guards `_stopping`, `_thread` and each request's `state`
        self._queue: queue.SimpleQueue[_Request | None] = queue.SimpleQueue()  # None: stop
        self._carried: deque[_Request] = deque()  # taken from the queue, left for the next round
        self._thread: threading.Thread | None = None
        self._stopping = False
        self.batches = 0  # statements written, for tests and benchmarks
        self.rows = 0

    def claim(self, job_id: uuid.UUID | str) -> Job | None:
        """`Job.claim_run` for this process's worker, written with other threads' claims."""
        request = _Request(job_id=str(uuid.UUID(str(job_id))))
        if self._wait(request):
            return self._claim_one(request.job_id)
        return request.outcome  # type: ignore[no-any-return]

    def succeed(self, job_id: uuid.UUID | str, *, attempt: int, result: Any, progress: dict[str, Any]) -> bool:
        """`Job.succeed_run`, written with other threads' finish writes; returns once it is durable."""
        run = ledger_sql.FinishedRun(job_id, attempt, result, progress, timezone.now())
        request = _Request(run=run)
        if self._wait(request):
            return ledger_sql.succeed_run(run.job_id, attempt=run.attempt, result=run.result, progress=run.progress)
        return bool(request.outcome)

    def succeed_later(self, job_id: uuid.UUID | str, *, attempt: int, result: Any, progress: dict[str, Any],
                      then: Callable[[bool | None, BaseException | None], None]) -> None:
        """`succeed` without waiting: `then(succeeded, error)` is called once the write is durable
        (`succeeded` as `succeed` returns it) or has failed (`error`), by the writer thread. When
        the writer is stopping, the row is written (and `then` called) before this returns."""
        run = ledger_sql.FinishedRun(job_id, attempt, result, progress, timezone.now())
        request = _Request(run=run, then=then)
        if self._submit(request):
            return
        try:
            outcome = self._finish_one(request)
        except Exception as exc:  # noqa: BLE001 - handed to `then`, as the writer would
            request.resolve(error=exc)
        else:
            request.resolve(outcome=outcome)

    def _wait(self, request: _Request) -> bool:
        """Queue the request and wait for its outcome (or raise its error). True: the writer will
        not answer it (stopping, stuck or gone), and the calling thread must write it itself."""
        self._submit(request)
        while request.state != _WITHDRAWN and not request.wait(WAIT_SLICE):
            with self._lock:
                alive = self._thread is not None and self._thread.is_alive()
                stuck = time.monotonic() - request.submitted > self.stuck_after
                if request.state == _PENDING and (stuck or not alive):
                    request.state = _WITHDRAWN  # the writer skips it from now on
                elif request.state == _TAKEN and not alive and not request.resolved:
                    request.state = _WITHDRAWN  # its writer died without an answer (never seen)
            if request.state == _WITHDRAWN:
                logger.warning("job %s: ledger writer %s; the worker thread writes its row itself",
                               request.run.job_id if request.run else request.job_id,
                               "gone" if not alive else f"has not taken it after {self.stuck_after:.0f} s")
        if request.state == _WITHDRAWN and not request.resolved:
            return True
        if request.error is not None:
            raise request.error
        return False

    def _submit(self, request: _Request) -> bool:
        """Queue `request` for the writer thread (started if need be); False when stopping (the
        request is then withdrawn: its own thread writes it)."""
        with self._lock:
            if self._stopping:
                request.state = _WITHDRAWN
                return False
            self._queue.put(request)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="greenroom-ledger-writer", daemon=True)
                self._thread.start()
        return True

    def waiting(self) -> int:
        """Writes queued and not yet taken by the writer thread (for tests)."""
        return self._queue.qsize() + len(self._carried)

    @staticmethod
    def _claim_one(job_id: str) -> Job | None:
        from workers.execution import worker_id

        return ledger_sql.claim_run(job_id, worker=worker_id(), stale_before=_stale_before())

    def stop(self, timeout: float = 10.0) -> None:
        """Write what is queued, close the writer's connection and end its thread."""
        with self._lock:
            self._stopping = True
            thread = self._thread
        self._queue.put(None)
        if thread is not None:
            thread.join(timeout)

    def _loop(self) -> None:
        batch: list[_Request] = []
        try:
            while True:
                taken = self._take()
                if taken is None:  # stopping, nothing left
                    break
                batch = taken
                if batch:
                    # Held acks settled by this round's finish writes go to the broker together,
                    # once its claims are answered too.
                    with held_acks.together():
                        self._write(batch)
                    batch = []
        except BaseException as exc:  # never leave a taken write unanswered: its thread would wait
            for request in batch:
                if not request.resolved:
                    request.resolve(error=exc)
            raise
        finally:
            connection.close()

    def _take(self) -> list[_Request] | None:
        """The next round: what is waiting, up to `max_batch` of each kind (the rest is carried to
        the next round); waits for a first request. None once stopping with nothing left."""
        waiting = self._carried
        stopping = False
        if not waiting:
            first = self._queue.get()
            if first is None:
                stopping = True
            else:
                waiting.append(first)
        while True:
            try:
                request = self._queue.get_nowait()
            except queue.Empty:
                break
            if request is None:
                stopping = True
            else:
                waiting.append(request)
        if stopping:
            self._queue.put(None)  # seen again once what is queued is written
            if not waiting:
                return None
        batch: list[_Request] = []
        claims = finishes = 0
        kept: deque[_Request] = deque()
        with self._lock:
            while waiting:
                request = waiting.popleft()
                if request.state != _PENDING:
                    continue
                if request.run is None and claims < self.max_batch:
                    claims += 1
                elif request.run is not None and finishes < self.max_batch:
                    finishes += 1
                else:  # this kind's batch is full: next round
                    kept.append(request)
                    continue
                request.state = _TAKEN
                batch.append(request)
        self._carried = kept
        return batch

    def _write(self, batch: list[_Request]) -> None:
        _drop_connection_if_stale()
        finishes = [request for request in batch if request.run is not None]
        claims = [request for request in batch if request.run is None]
        # Claims first: worker threads wait for them, while a finish only holds its message's ack.
        # Unless a claim is for a job being finished in this round (its message delivered again):
        # then the finish goes first, and the claim finds the job SUCCESSFUL.
        if finishes and claims and not _overlap(finishes, claims):
            self._write_claims(claims)
            self._write_finishes(finishes)
        else:
            if finishes:
                self._write_finishes(finishes)
            if claims:
                self._write_claims(claims)
        self.batches += bool(finishes) + bool(claims)
        self.rows += len(batch)

    def _write_finishes(self, batch: list[_Request]) -> None:
        runs = [request.run for request in batch if request.run is not None]
        try:
            done = ledger_sql.succeed_runs(runs)
        except Exception:  # any failure: each row gets its own chance
            logger.warning("ledger writer: a batch of %d finish writes failed; writing them one by one",
                           len(batch), exc_info=True)
            connection.close()  # a broken connection or an aborted transaction: start afresh
            self._write_each(batch, self._finish_one)
            return
        for request, run in zip(batch, runs, strict=True):
            request.resolve(outcome=str(uuid.UUID(str(run.job_id))) in done)

    def _write_claims(self, batch: list[_Request]) -> None:
        from workers.execution import worker_id

        first: dict[str, _Request] = {}
        for request in batch:
            if request.job_id in first:  # the same job delivered twice at once: one of them runs it
                request.resolve(outcome=None)
            else:
                first[request.job_id] = request
        try:
            claimed = ledger_sql.claim_runs(list(first), worker=worker_id(), stale_before=_stale_before())
        except Exception:
            logger.warning("ledger writer: a batch of %d claims failed; claiming one by one", len(first),
                           exc_info=True)
            connection.close()
            self._write_each(list(first.values()), lambda request: self._claim_one(request.job_id))
            return
        for job_id, request in first.items():
            request.resolve(outcome=claimed.get(job_id))

    @staticmethod
    def _finish_one(request: _Request) -> bool:
        run = request.run
        assert run is not None
        return ledger_sql.succeed_run(run.job_id, attempt=run.attempt, result=run.result, progress=run.progress)

    @staticmethod
    def _write_each(batch: list[_Request], write: Any) -> None:
        for request in batch:
            try:
                outcome = write(request)
            except Exception as exc:  # noqa: BLE001 - this row's own failure, raised by its own thread
                connection.close()
                request.resolve(error=exc)
            else:
                request.resolve(outcome=outcome)


def _overlap(finishes: list[_Request], claims: list[_Request]) -> bool:
    finishing = {str(uuid.UUID(str(request.run.job_id))) for request in finishes if request.run is not None}
    return any(request.job_id in finishing for request in claims)


def _stale_before() -> Any:
    return timezone.now() - timedelta(seconds=conf.get().stale_after)


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


def shutdown(timeout: float = 10.0) -> None:
    """Stop this process's writer, if it has one, once its worker threads are done: what is queued
    is written, its connection closed. The next `writer()` call starts a fresh one."""
    global _writer
    with _writer_lock:
        current, _writer = (_writer if _writer_pid == os.getpid() else None), None
    if current is not None:
        current.stop(timeout)
