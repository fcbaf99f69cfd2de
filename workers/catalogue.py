"""The job catalogue: one decorator declares a job once, and a name-keyed registry holds it.

    @job("diagnostics.sleep", queue="default", params=SleepParams, max_retries=0)
    def sleep(*, seconds: float) -> dict[str, float]: ...

A declaration is checked when its module is imported (bad name, unknown queue, duplicate name or an
unknown option fail at import, not at 3 a.m.). Options resolve job declaration → latency-class
default; Dramatiq's own defaults (20 retries, backoff to 7 days, 10-minute limit) are never used.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import dramatiq
import periodiq
import pydantic
import redis.exceptions
from django.db import InterfaceError, OperationalError

from workers.errors import CatalogueError, PermanentError, TransientError

QUEUES = ("interactive", "default", "batch")
NAME_RE = re.compile(r"[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*")


@dataclass(frozen=True)
class QueueDefaults:
    """Per-latency-class defaults; times in seconds."""

    max_retries: int
    min_backoff: float
    max_backoff: float
    time_limit: float  # soft: raises inside the job
    hard_time_limit: float  # hard: the worker process is replaced
    priority: int  # Dramatiq priority within a worker: lower runs first


# Someone is waiting: fail fast, retry briefly.
INTERACTIVE_DEFAULTS = QueueDefaults(
    max_retries=2, min_backoff=0.5, max_backoff=5, time_limit=30, hard_time_limit=60, priority=0
)
# Ordinary background work.
DEFAULT_DEFAULTS = QueueDefaults(
    max_retries=5, min_backoff=2, max_backoff=300, time_limit=300, hard_time_limit=360, priority=10
)
# Nightly and bulk work: long limits, patient retries.
BATCH_DEFAULTS = QueueDefaults(
    max_retries=5, min_backoff=30, max_backoff=3600, time_limit=3600, hard_time_limit=3900, priority=20
)
QUEUE_DEFAULTS = {"interactive": INTERACTIVE_DEFAULTS, "default": DEFAULT_DEFAULTS, "batch": BATCH_DEFAULTS}

# Errors retried by default: the network, timeouts, the database or the broker being briefly away.
DEFAULT_TRANSIENT: tuple[type[BaseException], ...] = (
    TransientError,
    ConnectionError,
    TimeoutError,
    socket.gaierror,
    OperationalError,
    InterfaceError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
)


class NoParams(pydantic.BaseModel):
    """The params model of a job that takes none."""

    model_config = pydantic.ConfigDict(extra="forbid")


@dataclass(frozen=True)
class JobSpec:
    """An immutable job declaration."""

    name: str
    fn: Callable[..., Any]
    queue: str
    params: type[pydantic.BaseModel]
    max_retries: int
    min_backoff: float
    max_backoff: float
    time_limit: float
    hard_time_limit: float
    priority: int
    transient: tuple[type[BaseException], ...]
    unique_key: Callable[[dict[str, Any]], str] | None = None
    # periodiq-style cron string of a code-defined schedule (fired by schedules/, not periodiq).
    periodic: str | None = None
    periodic_why: str = ""
    actor: dramatiq.Actor[Any, Any] | None = field(default=None, compare=False, repr=False)

    def is_transient(self, exc: BaseException) -> bool:
        """Whether `exc` is worth retrying (PermanentError never is)."""
        return not isinstance(exc, PermanentError) and isinstance(exc, self.transient)


_registry: dict[str, JobSpec] = {}
# Former names of renamed jobs → their current name (see `aliases=` in job()).
_aliases: dict[str, str] = {}

F = TypeVar("F", bound=Callable[..., Any])


def job(
    name: str,
    *,
    queue: str = "default",
    params: type[pydantic.BaseModel] = NoParams,
    max_retries: int | None = None,
    min_backoff: float | None = None,
    max_backoff: float | None = None,
    time_limit: float | None = None,
    hard_time_limit: float | None = None,
    priority: int | None = None,
    transient: tuple[type[BaseException], ...] = (),
    unique_key: Callable[[dict[str, Any]], str] | None = None,
    periodic: periodiq.CronSpec | str | None = None,
    why: str = "",
    aliases: tuple[str, ...] = (),
) -> Callable[[F], F]:
    """Declare `fn` as the job `name` (`<area>.<action>`) in latency class `queue`.

    `params` is a pydantic model that validates the job's parameters at enqueue time; the job
    function is called with them as keyword arguments. `transient` adds exception classes to the
    ones retried by default. `unique_key(params)` returns a key of which at most one job may be
    active. Times are in seconds.

    `periodic=cron("0 2 * * *")` (periodiq's spec, or the same string) runs the job on that
    schedule with no params — `why` says what for. `schedules/periodic.py` collects these into the
    table that `runscheduler` fires; GREENROOM_PERIODIC overrides or turns them off.

    `aliases=("old.name",)` keeps a renamed job's former names working: messages already queued or
    dead-lettered under them still run this job (a Dramatiq actor is declared under each), ledger
    rows written with them resolve to it, and enqueueing by them creates jobs under the new name.
    Keep an alias until no message or row with the old name can still be around (docs/operations.md).
    """
    if not NAME_RE.fullmatch(name):
        raise CatalogueError(f"job name {name!r} must look like '<area>.<action>' (lowercase)")
    if queue not in QUEUES:
        raise CatalogueError(f"job {name!r}: queue {queue!r} is not one of {', '.join(QUEUES)}")
    if name in _registry or name in _aliases:
        raise CatalogueError(f"job {name!r} is declared twice")
    for alias in aliases:
        if not NAME_RE.fullmatch(alias):
            raise CatalogueError(f"job {name!r}: alias {alias!r} must look like '<area>.<action>' (lowercase)")
        if alias == name or alias in _registry or alias in _aliases:
            raise CatalogueError(f"job {name!r}: alias {alias!r} is already a job name or alias")
    if not (isinstance(params, type) and issubclass(params, pydantic.BaseModel)):
        raise CatalogueError(f"job {name!r}: params must be a pydantic model class")
    defaults = QUEUE_DEFAULTS[queue]
    retries = defaults.max_retries if max_retries is None else max_retries
    min_wait = defaults.min_backoff if min_backoff is None else min_backoff
    max_wait = defaults.max_backoff if max_backoff is None else max_backoff
    soft = defaults.time_limit if time_limit is None else time_limit
    # Without an explicit hard limit, the class's margin over its soft limit is kept: the soft limit
    # must get its chance to stop the job cleanly before the watchdog replaces the process.
    margin = defaults.hard_time_limit - defaults.time_limit
    hard = soft + margin if hard_time_limit is None else hard_time_limit
    if retries < 0:
        raise CatalogueError(f"job {name!r}: max_retries ({retries}) is negative")
    if not 0 < min_wait <= max_wait:
        raise CatalogueError(
            f"job {name!r}: backoff must satisfy 0 < min_backoff ({min_wait}) <= max_backoff ({max_wait})"
        )
    if soft <= 0:
        raise CatalogueError(f"job {name!r}: time_limit ({soft}) must be positive")
    if hard < soft:
        raise CatalogueError(f"job {name!r}: hard_time_limit ({hard}) is below time_limit ({soft})")
    if unique_key is not None and not callable(unique_key):
        raise CatalogueError(f"job {name!r}: unique_key must be a function of the params")
    cron_expression = _periodic_expression(name, periodic)

    def decorate(fn: F) -> F:
        # Imported here: execution imports the ledger models, which need the app registry.
        from workers.execution import run_job

        if name in _registry:  # the same declaration applied to a second function
            raise CatalogueError(f"job {name!r} is declared twice")
        spec = JobSpec(
            name=name,
            fn=fn,
            queue=queue,
            params=params,
            max_retries=retries,
            min_backoff=min_wait,
            max_backoff=max_wait,
            time_limit=soft,
            hard_time_limit=hard,
            priority=defaults.priority if priority is None else priority,
            transient=DEFAULT_TRANSIENT + tuple(transient),
            unique_key=unique_key,
            periodic=cron_expression,
            periodic_why=why,
        )

        def run(job_id: str) -> None:
            run_job(spec, job_id)

        run.__name__ = run.__qualname__ = name.replace(".", "_")
        actors = [
            dramatiq.actor(
                actor_name=actor_name,
                queue_name=queue,
                priority=spec.priority,
                # Retries are decided by workers.middleware.LedgerRetries from the spec; these
                # mirror them so that Dramatiq's own tooling shows true values.
                max_retries=spec.max_retries,
                min_backoff=int(spec.min_backoff * 1000),
                max_backoff=int(spec.max_backoff * 1000),
                time_limit=int(spec.time_limit * 1000),
            )(run)
            for actor_name in (name, *aliases)
        ]
        object.__setattr__(spec, "actor", actors[0])
        _registry[name] = spec
        for alias in aliases:
            _aliases[alias] = name
        return fn

    return decorate


def _periodic_expression(name: str, periodic: periodiq.CronSpec | str | None) -> str | None:
    """The cron string of a `periodic=` declaration, checked by periodiq's parser at import."""
    if periodic is None:
        return None
    expression = str(periodic).strip()
    try:
        periodiq.cron(expression)
    except (ValueError, IndexError, KeyError, TypeError) as exc:  # what periodiq raises on bad specs
        raise CatalogueError(f"job {name!r}: periodic {expression!r} is not a valid cron: {exc}") from None
    return expression


def get(name: str) -> JobSpec | None:
    """The declaration of job `name` (or of the job that one of its former names now points to), or None."""
    return _registry.get(name) or _registry.get(_aliases.get(name, ""))


def all_jobs() -> list[JobSpec]:
    """Every declared job, by name."""
    return [_registry[name] for name in sorted(_registry)]
