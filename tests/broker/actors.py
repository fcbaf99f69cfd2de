"""A plain Dramatiq actor for the broker tests: it records each delivery in Redis, nothing else.

Test workers import this module beside the catalogue (see `broker_worker`). Without the ledger in
the way, a message delivered twice is recorded twice.
"""

from __future__ import annotations

import time

import dramatiq

# The Redis list each delivery is appended to, as "<tag> <start time>".
RUNS_KEY = "broker-tests:runs"
ACTOR_NAME = "broker_tests_record"


@dramatiq.actor(actor_name=ACTOR_NAME, queue_name="default", max_retries=0)
def record(tag: str) -> None:
    """Append this delivery's tag and start time (epoch seconds) to RUNS_KEY."""
    dramatiq.get_broker().client.rpush(RUNS_KEY, f"{tag} {time.time():.6f}")
