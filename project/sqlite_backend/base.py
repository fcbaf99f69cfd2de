"""Django's SQLite backend, waiting for the write lock in short steps instead of SQLite's own.

SQLite has one write lock per database. A writer that finds it taken calls SQLite's busy handler,
which sleeps 1, 2, 5, 10, 15, 20, 25 … ms between tries: a claim that misses the lock three times has
lost 8 ms, four times 18 ms, although the lock is held for well under a millisecond at a time (the
callers' INSERTs, and every worker's claims and finishes, take turns). This backend
turns SQLite's handler off once the connection is set up and retries a statement that found the lock
taken itself, every BUSY_STEP_MIN..BUSY_STEP_MAX seconds, for as long as the `timeout` option
(seconds, as for sqlite3.connect) allows.

It only retries where that is safe: a statement run outside a transaction (SQLite rolled it back
whole) — which includes the `BEGIN IMMEDIATE` of every `atomic` block. Inside an IMMEDIATE
transaction a statement cannot find the lock taken: the BEGIN already holds it. With another
transaction mode (or none) configured, a deferred transaction could meet the lock mid-way, so the
backend then keeps SQLite's own handler and behaves exactly as Django's.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from typing import Any

from django.db.backends.sqlite3 import base

# The first retry's sleep; each later one doubles, up to BUSY_STEP_MAX. time.sleep adds ~50 µs of
# timer slack on Linux, so the first tries come every ~0.15 ms: the lock's usual holder (one commit in
# WAL mode with synchronous=NORMAL) is done in 0.1-0.5 ms.
BUSY_STEP_MIN = 0.0001
# The longest sleep between tries, once a wait has gone on (a long transaction elsewhere). Short
# enough to notice the free lock within 2 ms; each try costs a few µs of CPU.
BUSY_STEP_MAX = 0.002
# Transaction modes that take the write lock at BEGIN (see the module docstring).
LOCKING_MODES = frozenset({"IMMEDIATE", "EXCLUSIVE"})


def is_busy(exc: sqlite3.OperationalError) -> bool:
    """True if the statement failed because another connection holds the lock (SQLITE_BUSY)."""
    return getattr(exc, "sqlite_errorcode", None) is not None and exc.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY


def retry_while_busy[T](run: Callable[[], T], *, timeout: float) -> T:
    """`run()`, tried again in short steps while it finds the database locked, for up to `timeout` s."""
    deadline = time.monotonic() + timeout
    step = BUSY_STEP_MIN
    while True:
        try:
            return run()
        except sqlite3.OperationalError as exc:
            left = deadline - time.monotonic()
            if not is_busy(exc) or left <= 0:
                raise
        time.sleep(min(step, left))  # the last try comes at the deadline
        step = min(step * 2, BUSY_STEP_MAX)


class SQLiteCursorWrapper(base.SQLiteCursorWrapper):
    busy_timeout: float | None = None  # set by the DatabaseWrapper; None: SQLite's own handler waits

    def execute(self, query: str, params: Any = None) -> Any:
        run = base.SQLiteCursorWrapper.execute
        if self.busy_timeout is None or self.connection.in_transaction:
            return run(self, query, params)
        return retry_while_busy(lambda: run(self, query, params), timeout=self.busy_timeout)

    def executemany(self, query: str, param_list: Any) -> Any:
        run = base.SQLiteCursorWrapper.executemany
        if self.busy_timeout is None or self.connection.in_transaction:
            return run(self, query, param_list)
        rows = list(param_list)  # a retry needs them again
        return retry_while_busy(lambda: run(self, query, rows), timeout=self.busy_timeout)


class DatabaseWrapper(base.DatabaseWrapper):
    busy_timeout = 5.0  # seconds; Python's default, until the `timeout` option is read

    def get_connection_params(self) -> dict[str, Any]:
        params = super().get_connection_params()  # sets transaction_mode
        self.busy_timeout = float(params.get("timeout", self.busy_timeout))
        return params

    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        conn = super().get_new_connection(conn_params)
        if self._waits_itself():
            # Set-up statements above ran with SQLite's handler; from here the cursor waits.
            conn.execute("PRAGMA busy_timeout = 0")
        return conn

    def create_cursor(self, name: str | None = None) -> Any:
        cursor = self.connection.cursor(factory=SQLiteCursorWrapper)
        if self._waits_itself():
            cursor.busy_timeout = self.busy_timeout
        return cursor

    def _waits_itself(self) -> bool:
        return getattr(self, "transaction_mode", None) in LOCKING_MODES
