"""The SQLite backend's wait for the write lock: short steps, its timeout kept, SQLite's own handler
only where a transaction could meet the lock mid-way (project/sqlite_backend)."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import OperationalError, connection, connections, transaction
from django.db.utils import ConnectionHandler

from project.sqlite_backend import base
from workers import services
from workers.models import Job

# How long the other connection holds the write lock in the tests that wait for it.
HOLD = 0.05


def sqlite_connection(path: Path, **options: Any) -> Any:
    """A connection through the backend to the SQLite file `path`, configured as Django would."""
    settings = {"ENGINE": "project.sqlite_backend", "NAME": str(path), "OPTIONS": options}
    return ConnectionHandler({"default": settings})["default"]


@pytest.fixture
def database(tmp_path: Path, django_db_blocker: Any) -> Iterator[Path]:
    """A fresh SQLite file with one table, in WAL mode (connections to it are the tests' own)."""
    path = tmp_path / "busy.sqlite3"
    setup = sqlite3.connect(path)
    setup.execute("PRAGMA journal_mode=WAL")
    setup.execute("CREATE TABLE item (name TEXT)")
    setup.close()
    with django_db_blocker.unblock():
        yield path


def hold_write_lock(path: Path, *, seconds: float) -> threading.Thread:
    """Take `path`'s write lock on another connection now; release it after `seconds` (thread)."""
    holder = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # in WAL mode: the write lock, until COMMIT

    def release() -> None:
        threading.Event().wait(seconds)
        holder.execute("COMMIT")
        holder.close()

    thread = threading.Thread(target=release)
    thread.start()
    return thread


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Every sleep the backend takes between tries, recorded (and slept)."""
    recorded: list[float] = []

    class RecordingTime:
        monotonic = staticmethod(time.monotonic)

        @staticmethod
        def sleep(seconds: float) -> None:
            recorded.append(seconds)
            time.sleep(seconds)

    monkeypatch.setattr(base, "time", RecordingTime)
    return recorded


def test_a_write_that_finds_the_lock_taken_tries_again_in_short_steps_until_it_gets_it(database, sleeps):
    # Given a connection in IMMEDIATE mode, and another one holding the write lock for a while
    db = sqlite_connection(database, transaction_mode="IMMEDIATE", timeout=5)
    db.ensure_connection()
    release = hold_write_lock(database, seconds=HOLD)

    # When the first one writes outside a transaction
    with db.cursor() as cursor:
        cursor.execute("INSERT INTO item VALUES (%s)", ["waiter"])
    release.join()

    # Then it succeeded once the lock was free, after sleeping in steps that start at BUSY_STEP_MIN,
    # double and never exceed BUSY_STEP_MAX (SQLite's own handler sleeps 1, 2, 5, 10, 15 … ms)
    with db.cursor() as cursor:
        cursor.execute("SELECT name FROM item ORDER BY rowid")
        assert [row[0] for row in cursor.fetchall()] == ["waiter"]
    assert len(sleeps) >= 2
    assert sleeps[0] == base.BUSY_STEP_MIN
    assert sleeps[1] == 2 * base.BUSY_STEP_MIN
    assert max(sleeps) <= base.BUSY_STEP_MAX
    db.close()


def test_an_atomic_block_waits_for_the_lock_at_its_begin(database, sleeps):
    # Given the lock held elsewhere for a while
    db = sqlite_connection(database, transaction_mode="IMMEDIATE", timeout=5)
    db.ensure_connection()
    release = hold_write_lock(database, seconds=HOLD)

    # When a transaction starts (BEGIN IMMEDIATE) and writes twice
    db.set_autocommit(True)
    db._start_transaction_under_autocommit()
    with db.cursor() as cursor:
        cursor.execute("INSERT INTO item VALUES ('one')")
        cursor.execute("INSERT INTO item VALUES ('two')")
    db.commit()
    release.join()

    # Then its BEGIN waited in short steps and both rows are in
    assert sleeps and max(sleeps) <= base.BUSY_STEP_MAX
    with db.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM item")
        assert cursor.fetchone()[0] == 2
    db.close()


def test_a_write_that_cannot_get_the_lock_within_the_timeout_fails_with_database_is_locked(database):
    # Given the lock held far longer than the connection's timeout (0.1 s)
    db = sqlite_connection(database, transaction_mode="IMMEDIATE", timeout=0.1)
    db.ensure_connection()
    release = hold_write_lock(database, seconds=2.0)
    started = time.monotonic()

    # When it writes, it gives up once its timeout has passed, with SQLite's error
    with pytest.raises(OperationalError, match="database is locked"), db.cursor() as cursor:
        cursor.execute("INSERT INTO item VALUES ('late')")
    waited = time.monotonic() - started
    release.join()

    # (not at once, and not for the holder's whole 2 s)
    assert 0.1 <= waited < 1.5
    db.close()


def test_an_error_other_than_a_busy_database_is_raised_at_once(database, sleeps):
    db = sqlite_connection(database, transaction_mode="IMMEDIATE", timeout=5)
    with pytest.raises(OperationalError, match="no such table"), db.cursor() as cursor:
        cursor.execute("INSERT INTO missing VALUES (1)")
    assert sleeps == []
    db.close()


@pytest.mark.parametrize(("mode", "busy_timeout_ms"), [("IMMEDIATE", 0), ("EXCLUSIVE", 0), (None, 3000)])
def test_sqlites_own_busy_handler_is_off_only_where_begin_takes_the_lock(database, mode, busy_timeout_ms):
    # A deferred transaction could meet the lock mid-way, where a retry would be wrong: SQLite waits.
    options: dict[str, Any] = {"timeout": 3}
    if mode:
        options["transaction_mode"] = mode
    db = sqlite_connection(database, **options)
    with db.cursor() as cursor:
        cursor.execute("PRAGMA busy_timeout")
        assert cursor.fetchone()[0] == busy_timeout_ms
    db.close()


@pytest.mark.skipif(connection.vendor != "sqlite", reason="the project's SQLite settings (not in the PostgreSQL suite)")
def test_the_projects_sqlite_database_uses_the_backend_and_an_enqueue_waits_for_the_lock(
    transactional_db, greenroom_stub_broker, sleeps
):
    # Given the project's database, its write lock held by another connection for a while
    assert isinstance(connections["default"], base.DatabaseWrapper)
    connection.ensure_connection()
    release = hold_write_lock(Path(connection.settings_dict["NAME"]), seconds=HOLD)

    # When a job is enqueued (an INSERT, then the publish mark) and a transaction writes
    job = services.job_enqueue(task="diagnostics.noop")
    with transaction.atomic():
        Job.objects.filter(pk=job.pk).update(progress_message="written")
    release.join()

    # Then both waited for the lock in short steps instead of failing or sleeping in SQLite's handler
    assert sleeps and max(sleeps) <= base.BUSY_STEP_MAX
    stored = Job.objects.get(pk=job.pk)
    assert stored.enqueued_at is not None
    assert stored.progress_message == "written"
