"""The ledger's hot paths in raw SQL: the worker's claim and finish, bulk insert and publish marks.

Django has no ORM API for UPDATE ... RETURNING, and compiling ORM queries costs more than the
database call on these paths (bench/ledger_writes.py). Only the model's own quoted table and column
names are formatted into the statements; every value is a parameter, prepared as the ORM prepares it.
`Job.claim_run`, `Job.succeed_run`, `Job.mark_published`, `Job.new_ready` and `Job.insert_many` are
the public entry points; they call these.
"""

from __future__ import annotations

import functools
import operator
import sqlite3
import uuid
from datetime import datetime
from types import NoneType
from typing import Any, NamedTuple

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection, connections, models, transaction
from django.utils import timezone

from workers.models import Job, JobStatus


def claim_run(job_id: uuid.UUID | str, *, worker: str, stale_before: datetime) -> Job | None:
    """`claim` and read the claimed row in one statement (UPDATE … RETURNING); None if not claimed.

    The worker's hot path: one round trip and one commit instead of an UPDATE and a SELECT, in
    raw SQL because Django has no public ORM API for UPDATE … RETURNING (and compiling the ORM
    query costs more than the database call). The returned Job holds the columns a run needs;
    the others are deferred (read on access). Backends without RETURNING fall back to both queries.
    """
    if not connection.features.can_return_rows_from_update:
        if not Job.claim(job_id, worker=worker, stale_before=stale_before):
            return None
        return Job.objects.filter(pk=job_id).only(*_CLAIM_RETURNS).first()
    return claim_runs([job_id], worker=worker, stale_before=stale_before).get(str(uuid.UUID(str(job_id))))


def claim_runs(job_ids: list[uuid.UUID | str], *, worker: str, stale_before: datetime) -> dict[str, Job]:
    """`claim_run` for many jobs in one statement, hence one commit: the claimed rows by id (str).

    A job not among them was not claimed (running elsewhere, finished, cancelled or gone). Ids are
    given once each (the caller answers a second request for one id with "not claimed"). Backends
    without UPDATE … RETURNING claim row by row.
    """
    if not job_ids:
        return {}
    if not connection.features.can_return_rows_from_update:  # claim_run's own fallback, row by row
        one_by_one = (claim_run(job_id, worker=worker, stale_before=stale_before) for job_id in job_ids)
        return {str(job.pk): job for job in one_by_one if job is not None}
    db = _db()
    prep_id = _field("id").get_db_prep_save
    stamp = _prep("started_at", timezone.now(), db)
    rows = _execute(
        _claim_runs_sql(db.vendor, len(job_ids)),
        [JobStatus.RUNNING.value, stamp, stamp, worker, *(prep_id(job_id, db) for job_id in job_ids),
         JobStatus.READY.value, JobStatus.RUNNING.value, _prep("heartbeat_at", stale_before, db)],
        db=db,
    )[1]
    attnames, columns = _claim_attnames(), _claim_converters(db.vendor)
    claimed: dict[str, Job] = {}
    for row in rows:
        values = [_apply(converters, value, db) for converters, value in zip(columns, row, strict=True)]
        job = Job.from_db(db.alias, attnames, values)
        claimed[str(job.pk)] = job
    return claimed


def succeed_run(job_id: uuid.UUID | str, *, attempt: int, result: Any, progress: dict[str, Any]) -> bool:
    """RUNNING → SUCCESSFUL for run `attempt` only, with its result and final progress; False if
    the row has moved on (another run took it over). One raw UPDATE: the worker's hot path."""
    values = {"status": JobStatus.SUCCESSFUL.value, "result": result, "finished_at": timezone.now(), **progress}
    c = _column
    count, _ = _execute(
        f"UPDATE {_table()} SET {', '.join(f'{c(name)} = %s' for name in values)} "  # noqa: S608
        f"WHERE {c('id')} = %s AND {_unindexed('status')} = %s AND {c('attempts')} = %s",
        [*(_prep(name, value) for name, value in values.items()), _prep("id", job_id), JobStatus.RUNNING.value,
         attempt],
    )
    return count == 1

class FinishedRun(NamedTuple):
    """One successful run's finish write, as `succeed_runs` batches them."""

    job_id: uuid.UUID | str
    attempt: int
    result: Any
    progress: dict[str, Any]
    finished_at: datetime


def succeed_runs(runs: list[FinishedRun]) -> set[str]:
    """`succeed_run` for many runs in one statement, hence one commit; returns the ids (as str) of
    the rows it moved to SUCCESSFUL. A run whose row has moved on (another attempt) is not among them.

    PostgreSQL and SQLite ≥ 3.35: `WITH v(...) AS (VALUES ...) UPDATE ... FROM v ... RETURNING id`.
    Other backends: one `succeed_run` per row inside one transaction.
    """
    if not runs:
        return set()
    if not _can_update_from():
        done = set()
        with transaction.atomic():
            for run in runs:
                if succeed_run(run.job_id, attempt=run.attempt, result=run.result, progress=run.progress):
                    done.add(str(uuid.UUID(str(run.job_id))))
        return done
    db = _db()
    params: list[Any] = []
    for run in runs:
        progress = run.progress
        params += [_prep("id", run.job_id, db), run.attempt, _prep("result", run.result, db),
                   _prep("finished_at", run.finished_at, db), _prep("progress_done", progress["progress_done"], db),
                   _prep("progress_total", progress["progress_total"], db),
                   _prep("progress_message", progress["progress_message"], db)]
    rows = _execute(_succeed_runs_sql(db.vendor, len(runs)),
                    [*params, JobStatus.SUCCESSFUL.value, JobStatus.RUNNING.value], db=db)[1]
    # PostgreSQL returns UUIDs, SQLite 32 hex digits: both read back as the canonical string.
    return {str(uuid.UUID(str(returned[0]))) for returned in rows}


@functools.cache
def _succeed_runs_sql(vendor: str, count: int) -> str:
    """The statement of `succeed_runs` for `count` rows (built once per vendor and row count)."""
    names = ("id", "attempts", "result", "finished_at", "progress_done", "progress_total", "progress_message")
    # PostgreSQL types the VALUES columns from their casts; SQLite has no column types to give.
    casts = [f"::{_field(name).cast_db_type(connection)}" if vendor == "postgresql" else "" for name in names]
    row = f"({', '.join(f'%s{cast}' for cast in casts)})"
    c = _column
    assigned = ("result", "finished_at", "progress_done", "progress_total", "progress_message")
    return (
        f"WITH v ({', '.join(f'v_{name}' for name in names)}) AS (VALUES {', '.join([row] * count)}) "  # noqa: S608
        f"UPDATE {_table()} SET {c('status')} = %s, {', '.join(f'{c(name)} = v.v_{name}' for name in assigned)} "
        f"FROM v WHERE {_table()}.{c('id')} = v.v_id AND {_unindexed('status', qualified=True)} = %s "
        f"AND {_table()}.{c('attempts')} = v.v_attempts RETURNING {_table()}.{c('id')}"
    )


@functools.cache
def _claim_runs_sql(vendor: str, count: int) -> str:
    """The statement of `claim_runs` for `count` ids (built once per vendor and id count)."""
    c = _column
    return (
        f"UPDATE {_table()} SET {c('status')} = %s, {c('started_at')} = %s, {c('heartbeat_at')} = %s, "  # noqa: S608
        f"{c('next_attempt_at')} = NULL, {c('attempts')} = {c('attempts')} + 1, {c('worker')} = %s "
        f"WHERE {c('id')} IN ({', '.join(['%s'] * count)}) AND {c('cancel_requested_at')} IS NULL AND "
        f"({_unindexed('status')} = %s OR ({_unindexed('status')} = %s AND {c('heartbeat_at')} < %s)) "
        f"RETURNING {', '.join(c(name) for name in _CLAIM_RETURNS)}"
    )


def _can_update_from() -> bool:
    """UPDATE ... FROM with RETURNING: PostgreSQL, and SQLite from 3.35 (RETURNING; FROM is 3.33)."""
    if connection.vendor == "postgresql":
        return True
    return connection.vendor == "sqlite" and sqlite3.sqlite_version_info >= (3, 35)


def mark_published(job_ids: list[str], *, at: datetime) -> set[str]:
    """Set `enqueued_at` on those of `job_ids` still READY and unpublished, in one statement;
    returns the ids it set (as str). Only those may be sent: the others were published already
    (by the relay) or are no longer READY."""
    if not job_ids:
        return set()
    if not connection.features.can_return_rows_from_update:
        unpublished = Job.objects.filter(pk__in=job_ids, status=JobStatus.READY, enqueued_at__isnull=True)
        if not unpublished.update(enqueued_at=at):
            return set()
        return {str(pk) for pk in Job.objects.filter(pk__in=job_ids, enqueued_at=at).values_list("pk", flat=True)}
    c, db = _column, _db()
    postgresql = connection.vendor == "postgresql"
    if postgresql:
        # One array parameter: one statement text for any batch size (prepared once), and no
        # thousand-placeholder query for the client to parse. The ids go and come back as text:
        # PostgreSQL parses and prints them in C, where building a uuid.UUID for each of them, both
        # ways, was a tenth of a bulk enqueue's CPU in the caller.
        matching, params, returning = "= ANY(%s::uuid[])", [[str(job_id) for job_id in job_ids]], f"{c('id')}::text"
    else:
        prep_id = _field("id").get_db_prep_save
        ids = [prep_id(job_id, db) for job_id in job_ids]
        matching, params, returning = f"IN ({', '.join(['%s'] * len(ids))})", ids, c("id")
    rows = _execute(
        hot=postgresql,
        sql=f"UPDATE {_table()} SET {c('enqueued_at')} = %s "  # noqa: S608
        f"WHERE {c('id')} {matching} "
        f"AND {_unindexed('status')} = %s AND {c('enqueued_at')} IS NULL RETURNING {returning}",
        params=[_prep("enqueued_at", at), *params, JobStatus.READY.value],
    )[1]
    if postgresql:
        return {row[0] for row in rows}  # the canonical form already
    return {str(uuid.UUID(row[0])) for row in rows}  # SQLite stores 32 hex digits

def new_ready(*, task: str, queue: str, params: dict[str, Any], requested_by_id: int | None,
              unique_key: str | None, priority: int | None = None) -> Job:
    """An unsaved READY row built positionally (several times faster than keyword `Job(...)`;
    bulk enqueue builds thousands): every other column takes its declared default."""
    values = dict(_new_row_defaults())
    values.update(id=uuid.uuid4(), task=task, queue=queue, params=params, requested_by_id=requested_by_id,
                  unique_key=unique_key, priority=priority, created_at=timezone.now())
    make: Any = Job  # positional: Model.__init__'s fast path (the plugin types keywords only)
    return make(*values.values())  # type: ignore[no-any-return]

def insert_many(jobs: list[Job], *, ignore_conflicts: bool = False) -> None:
    """INSERT unsaved rows in one statement (COPY on PostgreSQL): what `bulk_create` does, without
    its per-field, per-row compilation (2-4x the time on 10,000 rows, bench/enqueue.py).
    `ignore_conflicts` skips rows that break a unique constraint (ON CONFLICT DO NOTHING / INSERT OR
    IGNORE; an INSERT then on PostgreSQL too)."""
    if not jobs:
        return
    from django.db.models.constants import OnConflict

    fields = Job._meta.concrete_fields
    ops, on_conflict = connection.ops, OnConflict.IGNORE if ignore_conflicts else None
    statement = ops.insert_statement(on_conflict=on_conflict)
    suffix = ops.on_conflict_suffix_sql(fields, on_conflict, None, None) or ""
    head = f"{statement} {_table()} ({_insert_columns(connection.vendor)}) VALUES "
    placeholders = f"({', '.join(['%s'] * len(fields))})"
    db = _db()
    # Column by column: most columns of new rows hold one value throughout (their defaults), prepared
    # once; the rest are prepared per row, repeated str/int values once each.
    prepared: list[list[Any]] = []
    for field in fields:
        values = list(map(operator.attrgetter(field.attname), jobs))
        prep = field.get_db_prep_save
        if values.count(values[0]) == len(values):
            prepared.append([prep(values[0], db)] * len(values))
            continue
        seen: dict[Any, Any] = {}
        column = []
        for value in values:
            if isinstance(value, str | int | bool | NoneType):
                if value not in seen:
                    seen[value] = prep(value, db)
                column.append(seen[value])
            else:
                column.append(prep(value, db))
        prepared.append(column)
    rows = list(zip(*prepared, strict=True))
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql" and not ignore_conflicts:
            # COPY on psycopg's own cursor: the rows stream in one command (the INSERT pipeline
            # took ~1.6x the time, bench/enqueue.py); Django's error translation still applies.
            columns_sql = _insert_columns(connection.vendor)
            with connection.wrap_database_errors, cursor.cursor.copy(
                    f"COPY {_table()} ({columns_sql}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            # One prepared statement: SQLite loops in C, psycopg pipelines the rows (a multi-row
            # VALUES measured 2x slower on PostgreSQL here).
            cursor.executemany(f"{head}{placeholders} {suffix}", rows)
    for job in jobs:
        job._state.adding = False
        job._state.db = connection.alias


def insert_one(job: Job) -> None:
    """INSERT one unsaved row (a single enqueue): one statement whose text is built once per
    database, prepared on PostgreSQL like the claim and finish. `Model.save` compiles it anew for
    every job, which cost more CPU than the database call (~0.4 ms of the caller's ~1.1 ms)."""
    db = _db()
    params = [field.get_db_prep_save(getattr(job, field.attname), db) for field in Job._meta.concrete_fields]
    _execute(_insert_one_sql(db.vendor), params, db=db)
    job._state.adding = False
    job._state.db = db.alias


@functools.cache
def _insert_one_sql(vendor: str) -> str:
    placeholders = ", ".join(["%s"] * len(Job._meta.concrete_fields))
    return f"INSERT INTO {_table()} ({_insert_columns(vendor)}) VALUES ({placeholders})"  # noqa: S608


@functools.cache
def _insert_columns(vendor: str) -> str:
    """Every column of the job table, quoted, in the order of `Job._meta.concrete_fields`."""
    return ", ".join(_column(f.name) for f in Job._meta.concrete_fields)


_CLAIM_RETURNS = ("id", "task", "queue", "params", "status", "attempts", "worker", "created_at", "enqueued_at",
                  "started_at", "heartbeat_at", "finished_at")


@functools.cache
def _new_row_defaults() -> dict[str, Any]:
    """Every concrete column's default, by attname, in the model's field order (computed once: the
    columns `new_ready` sets are the only ones whose defaults vary or could be mutated)."""
    return {field.attname: field.get_default() for field in Job._meta.concrete_fields}


# Raw SQL on the ledger (the worker's hot path): only the model's own quoted table and column names
# are formatted into the statements; every value is a parameter, prepared as the ORM prepares it.
@functools.cache
def _field(name: str) -> models.Field[Any, Any]:
    field = Job._meta.get_field(name)
    assert isinstance(field, models.Field)
    return field


def _table() -> str:
    return _quoted(connection.vendor, Job._meta.db_table)


def _column(name: str) -> str:
    return _quoted(connection.vendor, str(_field(name).column))


@functools.cache
def _quoted(vendor: str, name: str) -> str:
    """Quoted once per database vendor and name: the hot path builds its statements from these."""
    return connection.ops.quote_name(name)


def _unindexed(name: str, *, qualified: bool = False) -> str:
    """The column as an expression no index or partial-index predicate matches (`col || ''`).

    The hot statements find their rows by primary key; their status tests only confirm. Left as
    plain `status = …`, PostgreSQL's planner may AND the primary key with the status and partial
    indexes (job_one_active_per_key, job_status_created, job_running_heartbeat) whenever its
    statistics say few rows are READY or RUNNING — a fresh table or a burst of enqueues — and then
    read every READY entry (and every dead one) for each claim: measured 11-12 ms per claim with
    10,000 jobs queued, against 0.15 ms by primary key.
    """
    column = _column(name)
    return f"({_table()}.{column} || '')" if qualified else f"({column} || '')"


def _db() -> Any:
    """The connection itself: `django.db.connection` is a proxy whose every attribute is a
    thread-local look-up, and the field code the hot path calls reads several per value."""
    return connections[DEFAULT_DB_ALIAS]


def _prep(name: str, value: Any, db: Any = None) -> Any:
    return _field(name).get_db_prep_save(value, db or _db())


def _execute(sql: str, params: list[Any], *, hot: bool = True, db: Any = None) -> tuple[int, list[tuple[Any, ...]]]:
    """Run one statement; its row count and the rows it returned (RETURNING), if any.

    A `hot` statement (a worker's claim or finish: the same few texts for every job) runs on
    PostgreSQL through a server-side-binding psycopg cursor (Django's default client-side one
    quotes every parameter into the text in Python), prepared on first use when
    GREENROOM_LEDGER_PREPARED_STATEMENTS is on. Django's cursor wrapper stays around it (error
    translation, execute wrappers, debug capture).
    """
    db = db or _db()
    if db.vendor != "postgresql" or not hot:
        with db.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.rowcount, (cursor.fetchall() if cursor.description else [])
    import psycopg

    # What `connection.cursor()` does (health check, connect, error translation), with another cursor class.
    db.close_if_health_check_failed()
    db.ensure_connection()
    raw = db.connection
    if raw.prepare_threshold is None and getattr(settings, "GREENROOM_LEDGER_PREPARED_STATEMENTS", True):
        raw.prepare_threshold = 0  # only server-side-binding cursors (these) ever prepare
    with db.wrap_database_errors:
        wrapped = db._prepare_cursor(psycopg.Cursor(raw))
    with wrapped as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount, (cursor.fetchall() if cursor.description else [])


def _apply(converters: tuple[Any, list[Any]], value: Any, db: Any) -> Any:
    """A raw column value as the ORM would give it (e.g. JSON text → dict, SQLite text → datetime)."""
    expression, functions = converters
    for converter in functions:
        value = converter(value, expression, db)
    return value


@functools.cache
def _claim_attnames() -> list[str]:
    return [_field(name).attname for name in _CLAIM_RETURNS]


@functools.cache
def _claim_converters(vendor: str) -> list[tuple[Any, list[Any]]]:
    return [_converters(vendor, name) for name in _CLAIM_RETURNS]


@functools.cache
def _converters(vendor: str, name: str) -> tuple[Any, list[Any]]:
    expression = _field(name).get_col(Job._meta.db_table)
    return expression, connection.ops.get_db_converters(expression) + expression.get_db_converters(connection)
