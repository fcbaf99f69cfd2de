"""Correctness of the comparison's own arithmetic and counting (no timing is asserted).

    .venv/bin/python -m pytest -q bench/compare/test_compare.py
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import RESULT_PREFIX, Driver, measure_latency, percentile, summary_ms
from report import render
from systems import Celery, RawDramatiq, dramatiq_pending

from tests.support.redis_server import RedisServer


@pytest.fixture
def private_redis() -> Iterator[RedisServer]:
    server = RedisServer().start()
    yield server
    server.remove()


def test_percentile_is_nearest_rank() -> None:
    values = [float(n) for n in range(1, 101)]
    assert percentile(values, 50) == 50
    assert percentile(values, 99) == 99
    assert percentile(values, 100) == 100
    assert percentile([7.0], 99) == 7
    assert percentile([], 50) is None


def test_summary_is_in_milliseconds() -> None:
    assert summary_ms([0.001, 0.002, 0.003]) == {"n": 3, "p50": 2.0, "p95": 3.0, "p99": 3.0, "max": 3.0}


def test_latency_is_start_minus_send_time_and_unstarted_jobs_are_counted_missing(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a fake system whose jobs start 5 ms after being sent, except the third, which never starts
    sent: list[str] = []

    def send() -> str:
        sent.append(str(len(sent)))
        return sent[-1]

    def started(tokens: list[str]) -> dict[str, float]:
        return {token: time.time() + 0.005 for token in tokens if token != "2"}

    monkeypatch.setattr("common.START_DEADLINE", 0.2)
    # When four jobs are measured back to back
    result = measure_latency(send, started, count=4, gap=0)
    # Then three latencies of about 5 ms are reported and one job is missing
    assert result["n"] == 3
    assert result["missing"] == 1
    assert 4 < result["p50"] < 50


def test_a_latency_command_times_the_first_send_apart_from_its_passes(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    # Given a fake system whose first job starts 30 ms after it is sent (a cold process), the rest 1 ms
    class Fake(Driver):
        def __init__(self) -> None:
            self.delays: dict[str, float] = {}

        def send(self) -> str:
            token = str(len(self.delays))
            self.delays[token] = 0.030 if token == "0" else 0.001
            return token

        def started(self, tokens: list[str]) -> dict[str, float]:
            return {token: time.time() + self.delays[token] for token in tokens}

    monkeypatch.setattr(sys, "argv", ["driver", "latency", "--passes", "b2b:3:0"])
    # When the driver runs one latency pass of three jobs
    Fake().main()
    result = json.loads(capsys.readouterr().out.strip().removeprefix(RESULT_PREFIX))
    # Then the cold first send is reported on its own and the pass holds only the three warm sends
    assert result["cold"]["n"] == 1 and result["cold"]["max"] >= 30
    assert result["b2b"]["n"] == 3 and result["b2b"]["max"] < 30


def test_dramatiq_pending_counts_queued_and_unacked_messages_but_not_dead_letters(
        private_redis: RedisServer) -> None:
    client = private_redis.client()
    client.hset("dramatiq:bench.msgs", mapping={"a": "1", "b": "2"})  # queued or fetched, not acked
    client.hset("dramatiq:bench.DQ.msgs", mapping={"c": "3"})  # waiting for a delay
    client.hset("dramatiq:bench.XQ.msgs", mapping={"d": "4"})  # dead letter: not pending
    assert dramatiq_pending(client) == 3


def test_celery_pending_counts_waiting_lists_and_unacked_deliveries(private_redis: RedisServer) -> None:
    client: redis.Redis = private_redis.client()
    client.rpush("bench", "m1", "m2")
    client.rpush("bench\x06\x163", "m3")  # kombu's list for a priority step
    client.hset("unacked", mapping={"tag": "m4"})
    client.set("bench-unrelated-string", "x")
    system = Celery(key="celery", label="", processes=2, threads="1", redis_url_base="", redis_db=0,
                    workdir=Path())
    assert system.pending(client) == 4


def test_table_has_one_row_per_system_with_ratios_against_celery_and_dramatiq() -> None:
    run = {
        "machine": {"date": "d", "nproc": 2, "cpu": "cpu", "ram_gb": 4, "load_before": [0], "python": "3.12",
                    "redis_server": "7", "versions": {}},
        "args": {"jobs": 100, "runs": 3},
        "systems": {
            "greenroom-pg": {"label": "Greenroom", "processes": 2, "threads": "8"},
            "dramatiq-2x8": {"label": "raw", "processes": 2, "threads": "8"},
            "celery-prefork-2": {"label": "Celery", "processes": 2, "threads": "1"},
        },
        "results": {
            "greenroom-pg": {"drain": {"runs": [900, 1000, 1100], "median": 1000, "complete": True},
                             "enqueue_bulk": {"rate": None, "call": "n/a: none"},
                             "latency": {"idle": {"n": 10, "p50": 5.0, "p95": 8.0, "p99": 9.5, "max": 9.5},
                                         "cold": {"n": 1, "p50": 14.3, "p95": 14.3, "p99": 14.3, "max": 14.3}}},
            "dramatiq-2x8": {"drain": {"runs": [4000], "median": 4000, "complete": True}},
            "celery-prefork-2": {"drain": {"runs": [500], "median": 500, "complete": True}},
        },
    }
    table = render(run)
    rows = [line for line in table.splitlines() if line.startswith("| ") and "system" not in line]
    assert len(rows) == 3
    assert "1,000 (900-1,100)" in rows[0]
    assert "2.00x C; 0.25x D" in rows[0]
    assert "n/a: none" in rows[0]
    assert "| 5.0 / 8.0 / 9.5 | 14.3 |" in rows[0]  # idle worker, then the cold first send
    assert rows[1].count("| — |") >= 4  # no latency measured: dashes, not zeros


def test_raw_dramatiq_workers_run_stock_dramatiq_with_the_compared_counts() -> None:
    system = RawDramatiq(key="d", label="", processes=1, threads="8", redis_url_base="redis://h:1", redis_db=4,
                         workdir=Path())
    (program,) = system.programs()
    assert program.argv[program.argv.index("--processes") + 1] == "1"
    assert program.argv[program.argv.index("--threads") + 1] == "8"
    assert program.env["BENCH_REDIS_URL"] == "redis://h:1/4"
