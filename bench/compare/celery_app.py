"""Celery 5 with the settings the seeds recommend (acks_late, reject on worker lost, prefetch
multiplier 1, results ignored, soft/hard time limits), on the same Redis. Runs in var/bench-venv.

    BENCH_REDIS_URL=redis://127.0.0.1:<port>/<db> celery -A celery_app worker -P prefork -c 2 -Q bench
"""

from __future__ import annotations

import os
import time

import redis
from celery import Celery
from common import STAMPS_KEY

QUEUE = "bench"

app = Celery("bench", broker=os.environ["BENCH_REDIS_URL"])
app.conf.update(
    # Late ack + redelivery when a pool process dies: at-least-once, as the seeds' ADR requires.
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    # Fetch one message per pool slot at a time.
    worker_prefetch_multiplier=1,
    # Fire-and-forget jobs: no result backend writes.
    task_ignore_result=True,
    # The seeds' time limits (30 min soft, 35 min hard): the pool arms a timer for every task.
    task_soft_time_limit=1800,
    task_time_limit=2100,
    task_default_queue=QUEUE,
    broker_connection_retry_on_startup=True,
)

_stamps = redis.Redis.from_url(os.environ["BENCH_REDIS_URL"])


@app.task(name="bench.noop")
def noop() -> None:
    """The trivial job the drain and enqueue figures are about."""


@app.task(name="bench.stamp")
def stamp(token: str) -> None:
    """Record when this job started (enqueue→start latency)."""
    started = time.time()
    _stamps.rpush(STAMPS_KEY, f"{token} {started}")
