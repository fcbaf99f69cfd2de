"""Greenroom side by side with raw Dramatiq and Celery: one run, one machine, one private Redis.

    .venv/bin/python bench/compare/run.py [--jobs 10000] [--runs 3] [--systems a,b] [--quick]

Trivial jobs (no-ops). Systems: Greenroom with its full ledger on PostgreSQL and on SQLite (2 programs of
`manage.py rundramatiq --processes 1 --threads 8`), raw Dramatiq 2.2.1 (stock broker, 2 x 8 and 1 x 8)
and Celery 5 (prefork, concurrency 2, the seeds' settings) from var/bench-venv, which this script
creates from bench/requirements.txt when it is missing or stale. It measures, per system: drain
throughput, enqueue throughput (single and bulk), enqueue→start latency (back to back, 0.1 s gaps, idle
worker), idle CPU and RSS, Redis bytes per queued job and, for Greenroom on PostgreSQL, the ledger's
database writes per job. It prints one table with ratios; see bench/README.md and docs/performance.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
BASE_DIR = HERE.parents[1]
sys.path.insert(0, str(BASE_DIR))

import psycopg  # noqa: E402
import redis  # noqa: E402
from report import render  # noqa: E402
from systems import Celery, Greenroom, RawDramatiq, System, Workers  # noqa: E402

from project.embedded_redis import find_redis_server  # noqa: E402

BENCH_VENV = BASE_DIR / "var" / "bench-venv"
REQUIREMENTS = BASE_DIR / "bench" / "requirements.txt"
WORK_DIR = BASE_DIR / "var" / "bench-compare"
PG_ADMIN_URL = "postgres://postgres@127.0.0.1:5432/postgres"
PG_DB = "greenroom_bench_compare"
ALL_SYSTEMS = "greenroom-pg,greenroom-sqlite,dramatiq-2x8,dramatiq-1x8,celery-prefork-2"


def say(line: str) -> None:
    print(line, flush=True)


# --- set-up ---------------------------------------------------------------------------------------


def ensure_bench_venv() -> Path:
    """var/bench-venv with bench/requirements.txt installed (Celery never enters the project's venv)."""
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()
    stamp = BENCH_VENV / ".requirements-sha256"
    python = BENCH_VENV / "bin" / "python"
    if python.exists() and stamp.exists() and stamp.read_text().strip() == digest:
        return python
    say(f"creating {BENCH_VENV.relative_to(BASE_DIR)} from {REQUIREMENTS.relative_to(BASE_DIR)} …")
    shutil.rmtree(BENCH_VENV, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(BENCH_VENV)], check=True)
    pip = subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r",
                          str(REQUIREMENTS)], capture_output=True, text=True)
    if pip.returncode:
        raise RuntimeError(f"pip install -r {REQUIREMENTS} failed:\n{pip.stdout}{pip.stderr}")
    stamp.write_text(digest + "\n")
    return python


class PrivateRedis:
    """redis-server on a free port of 127.0.0.1, no persistence; never the machine's shared Redis."""

    def __init__(self, directory: Path) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        self.dir = directory
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url_base(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def start(self) -> PrivateRedis:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [find_redis_server(), "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.dir), "--logfile", str(self.dir / "redis.log"), "--databases", "16"],
            stdin=subprocess.DEVNULL, start_new_session=True)
        client = redis.Redis(port=self.port, socket_timeout=5)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if client.ping():
                    return self
            except redis.exceptions.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("private redis-server did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


def default_pg_url() -> str:
    url = os.environ.get("DATABASE_URL", "")
    return url if url.startswith(("postgres://", "postgresql://")) else PG_ADMIN_URL


def create_pg_database(admin_url: str) -> str | None:
    """A fresh, migrated-later database for the bench; None when PostgreSQL does not answer."""
    try:
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {PG_DB} WITH (FORCE)")
            conn.execute(f"CREATE DATABASE {PG_DB}")
    except psycopg.Error as exc:
        say(f"PostgreSQL at {admin_url} not usable ({exc}); Greenroom on PostgreSQL is left out")
        return None
    return admin_url.rsplit("/", 1)[0] + f"/{PG_DB}"


def migrate(systems: list[System]) -> None:
    """`manage.py migrate` for every Greenroom system, side by side."""
    running = []
    for system in systems:
        if isinstance(system, Greenroom):
            log = (system.workdir / f"{system.key}-migrate.log").open("w")
            running.append((system, subprocess.Popen(
                [sys.executable, str(BASE_DIR / "manage.py"), "migrate", "--verbosity", "0"],
                env=system.driver_env(), cwd=BASE_DIR, stdout=log, stderr=subprocess.STDOUT)))
    for system, process in running:
        if process.wait(600) != 0:
            raise RuntimeError(f"migrate failed for {system.key}; see {system.workdir}")


def pg_counters(database_url: str) -> dict[str, int]:
    """This database's commit and row-write counters (pg_stat_database)."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        row = conn.execute(
            "SELECT xact_commit, tup_inserted, tup_updated, tup_deleted FROM pg_stat_database WHERE datname = %s",
            (PG_DB,)).fetchone()
    assert row is not None
    return dict(zip(("commits", "inserted", "updated", "deleted"), (int(v) for v in row), strict=True))


# --- phases ---------------------------------------------------------------------------------------


def wait_drained(system: System, client: redis.Redis, total: int, timeout: float) -> dict[str, Any]:
    """Poll until nothing is pending; time from the first finished job to the last (start-up excluded)."""
    first_at = first_left = None
    deadline = time.monotonic() + timeout
    left = total
    while time.monotonic() < deadline:
        left = system.pending(client)
        now = time.monotonic()
        if first_at is None and left < total:
            first_at, first_left = now, left
        if left == 0:
            break
        time.sleep(0.01)
    if first_at is None or first_left is None or left:
        return {"rate": None, "left": left}
    elapsed = time.monotonic() - first_at
    done = first_left  # jobs finished between the first poll that saw progress and the end
    return {"rate": done / elapsed if elapsed > 0 else None, "elapsed": elapsed, "jobs": done, "left": 0}


def drain_phase(system: System, args: argparse.Namespace, results: dict[str, Any]) -> None:
    client = system.client()
    runs = []
    for run in range(1, args.runs + 1):
        client.flushdb()
        before_memory = int(client.info("memory")["used_memory"])
        database_url = system.database_url if isinstance(system, Greenroom) else ""
        counters_before = pg_counters(database_url) if run == 1 and database_url.startswith("postgres") else None
        queued = system.drive("enqueue", "--bulk", str(args.jobs), "--keep")["bulk"]
        if queued.get("rate") is None:  # no bulk call: the single one
            queued = system.drive("enqueue", "--single", str(args.jobs), "--keep")["single"]
        waiting = system.pending(client)
        if counters_before is not None:
            time.sleep(0.5)
            counters_queued = pg_counters(database_url)
        if run == 1 and waiting:
            results["redis_bytes_per_job"] = (int(client.info("memory")["used_memory"]) - before_memory) / waiting
        workers = Workers(system).start()
        try:
            drained = wait_drained(system, client, waiting, timeout=60 + args.jobs / 50)
        finally:
            workers.stop()
        runs.append(drained)
        rate = drained.get("rate")
        say(f"  {system.key} drain run {run}: {waiting} jobs, "
            + (f"{rate:,.0f} jobs/s over {drained['elapsed']:.2f} s" if rate else f"NOT DRAINED ({drained})")
            + f" (pre-queued at {queued['rate']:,.0f}/s)")
        if counters_before is not None:
            time.sleep(1.5)  # backends flush their statistics at exit; let the collector see them
            after = pg_counters(database_url)
            results["db_writes"] = {
                "enqueue": {key: (counters_queued[key] - counters_before[key]) / waiting for key in after},
                "run": {key: (after[key] - counters_queued[key]) / waiting for key in after},
            }
    rates = [run["rate"] for run in runs if run.get("rate")]
    results["drain"] = {"runs": rates, "median": statistics.median(rates) if rates else None,
                        "complete": len(rates) == len(runs)}
    if isinstance(system, Greenroom):
        ledger = results["ledger_after_drain"] = system.drive("ledger")["by_status"]
        say(f"  {system.key} ledger after the drain runs: {ledger}")


def enqueue_phase(system: System, args: argparse.Namespace, results: dict[str, Any]) -> None:
    client = system.client()
    client.flushdb()
    outcomes = system.drive("enqueue", "--single", str(args.enqueue_jobs), "--bulk", str(args.jobs))
    for how, count in (("single", args.enqueue_jobs), ("bulk", args.jobs)):
        outcome = results[f"enqueue_{how}"] = outcomes[how]
        rate = outcome.get("rate")
        say(f"  {system.key} enqueue {how}: " + (f"{rate:,.0f} jobs/s ({count} jobs, {outcome['call']})"
                                                  if rate else outcome["call"]))
    client.flushdb()


def idle_phase(systems: list[System], args: argparse.Namespace, results: dict[str, dict[str, Any]]) -> None:
    """All systems' workers up together: idle CPU and RSS, then latency (others idle meanwhile)."""
    import psutil

    for system in systems:
        system.client().flushdb()
    running = {system.key: Workers(system).start() for system in systems}
    try:
        for system in systems:  # ready when a job goes through (also warms each path up)
            if system.latency:
                system.drive("latency", "--passes", "warm-up:3:0")
        time.sleep(args.settle)
        say(f"  measuring idle CPU and RSS of every system's workers over {args.idle_seconds:.0f} s …")
        start: dict[str, dict[int, float]] = {}
        procs: dict[str, list[psutil.Process]] = {}
        for key, workers in running.items():
            procs[key] = workers.tree()
            start[key] = {p.pid: sum(p.cpu_times()[:2]) for p in procs[key]}
        time.sleep(args.idle_seconds)
        for key in running:
            cpu, rss = [], []
            for proc in procs[key]:
                try:
                    cpu.append((sum(proc.cpu_times()[:2]) - start[key][proc.pid]) / args.idle_seconds * 100)
                    rss.append(proc.memory_info().rss / 2**20)
                except psutil.NoSuchProcess:
                    continue
            results[key]["idle"] = {"processes": len(cpu), "cpu_total": sum(cpu), "cpu_max": max(cpu, default=0),
                                    "rss_total": sum(rss), "rss_mean": statistics.mean(rss) if rss else None,
                                    "rss_each": [round(r, 1) for r in rss]}
        latency_systems = [system for system in systems if system.latency]
        for system in latency_systems:
            results[system.key]["latency"] = system.drive(
                "latency", "--passes", f"b2b:{args.latency_b2b}:0,gap:{args.latency_gap}:0.1")
            say(f"  {system.key} latency: back to back {fmt_lat(results[system.key]['latency']['b2b'])}, "
                f"0.1 s gaps {fmt_lat(results[system.key]['latency']['gap'])}")
        # Idle workers: every system gets a job every --idle-gap seconds, the systems staggered so that
        # no two jobs run at once, and all of them in the same window of time.
        stagger = args.idle_gap / max(1, len(latency_systems))
        say(f"  idle-worker latency: {args.latency_idle} jobs per system, one every {args.idle_gap} s …")
        drivers = [(system, system.start_driver("latency", "--passes", f"idle:{args.latency_idle}:{args.idle_gap}",
                                                "--offset", str(index * stagger)))
                   for index, system in enumerate(latency_systems)]
        for system, process in drivers:
            out, _ = process.communicate(timeout=args.latency_idle * args.idle_gap + 300)
            line = next(line for line in reversed(out.splitlines()) if line.startswith("BENCH-RESULT "))
            passes = json.loads(line[len("BENCH-RESULT "):])
            results[system.key]["latency"].update(idle=passes["idle"], cold=passes["cold"])
            say(f"  {system.key} idle-worker latency {fmt_lat(results[system.key]['latency']['idle'])}; "
                f"first send of the fresh enqueuing process {passes['cold']['max']:.1f} ms")
    finally:
        for workers in running.values():
            workers.stop()


def fmt_lat(lat: dict[str, Any]) -> str:
    if not lat.get("n"):
        return "n/a"
    return f"p50 {lat['p50']:.1f} / p95 {lat['p95']:.1f} / p99 {lat['p99']:.1f} ms (n={lat['n']})"


# --- main -----------------------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import psutil

    versions = {}
    for module in ("django", "dramatiq", "redis", "psycopg"):
        try:
            versions[module] = __import__(module).__version__
        except (ImportError, AttributeError):
            pass
    redis_version = subprocess.run([find_redis_server(), "--version"], capture_output=True, text=True).stdout.split()
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "nproc": os.cpu_count(), "cpu": model,
        "ram_gb": round(psutil.virtual_memory().total / 2**30, 1), "python": platform.python_version(),
        "load_before": [round(x, 2) for x in os.getloadavg()], "versions": versions,
        "redis_server": next((w.split("=", 1)[1] for w in redis_version if w.startswith("v=")), "?"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=10_000, help="jobs pre-queued per drain run and per bulk enqueue")
    parser.add_argument("--runs", type=int, default=3, help="drain runs per system (median and range)")
    parser.add_argument("--enqueue-jobs", type=int, default=3000, help="jobs of the single-enqueue loop")
    parser.add_argument("--idle-seconds", type=float, default=20.0, help="window of the idle CPU measurement")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds the workers idle before that window")
    parser.add_argument("--latency-b2b", type=int, default=200, help="jobs sent back to back")
    parser.add_argument("--latency-gap", type=int, default=50, help="jobs sent 0.1 s apart")
    parser.add_argument("--latency-idle", type=int, default=10, help="jobs sent to an idle worker")
    parser.add_argument("--idle-gap", type=float, default=2.0, help="seconds between idle-worker jobs")
    parser.add_argument("--systems", default=ALL_SYSTEMS, help=f"comma-separated subset of {ALL_SYSTEMS}")
    parser.add_argument("--database-url", default=default_pg_url(),
                        help=f"a PostgreSQL server (default $DATABASE_URL if PostgreSQL, else {PG_ADMIN_URL}); "
                             f"the bench drops, creates and uses its own database {PG_DB} there")
    parser.add_argument("--quick", action="store_true", help="3,000 jobs per drain run, shorter windows (~3 min)")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    parser.add_argument("--phases", default="enqueue,drain,idle",
                        help="comma-separated subset of enqueue,drain,idle (e.g. drain alone while tuning)")
    args = parser.parse_args()
    if args.quick:
        args.jobs, args.enqueue_jobs, args.idle_seconds, args.latency_idle = 3000, 1000, 10.0, 6
    wanted = args.systems.split(",")
    started = time.monotonic()

    WORK_DIR.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="run-", dir=WORK_DIR))
    celery_python = ensure_bench_venv() if "celery-prefork-2" in wanted else Path()
    info = machine()
    say(f"Greenroom vs raw Dramatiq vs Celery — {info['date']}, {info['nproc']} CPUs ({info['cpu']}), "
        f"{info['ram_gb']} GB, load {info['load_before']}; logs in {workdir.relative_to(BASE_DIR)}")
    server = PrivateRedis(workdir / "redis").start()
    say(f"private redis-server {info['redis_server']} on port {server.port}")
    try:
        pg_url = create_pg_database(args.database_url) if "greenroom-pg" in wanted else None
        sqlite_url = f"sqlite:///{workdir / 'greenroom.sqlite3'}"
        base, work = server.url_base, workdir
        candidates: list[System] = [
            Greenroom(key="greenroom-pg", label="Greenroom, PostgreSQL ledger", processes=2, threads="8",
                      redis_db=1, database_url=pg_url or "", redis_url_base=base, workdir=work),
            Greenroom(key="greenroom-sqlite", label="Greenroom, SQLite ledger", processes=2, threads="8",
                      redis_db=2, database_url=sqlite_url, redis_url_base=base, workdir=work),
            RawDramatiq(key="dramatiq-2x8", label="raw Dramatiq 2.2.1", processes=2, threads="8", redis_db=3,
                        redis_url_base=base, workdir=work),
            RawDramatiq(key="dramatiq-1x8", label="raw Dramatiq 2.2.1", processes=1, threads="8", redis_db=4,
                        latency=False, redis_url_base=base, workdir=work),
            Celery(key="celery-prefork-2", label="Celery (prefork, seeds' settings)", processes=2,
                   threads="1 (prefork)", redis_db=5, python=celery_python, redis_url_base=base, workdir=work),
        ]
        systems = [s for s in candidates if s.key in wanted and not (s.key == "greenroom-pg" and not pg_url)]
        migrate(systems)
        results: dict[str, dict[str, Any]] = {system.key: {} for system in systems}
        phases = args.phases.split(",")
        if "enqueue" in phases:
            say("\n== enqueue throughput")
            for system in systems:
                if system.latency:
                    enqueue_phase(system, args, results[system.key])
        if "drain" in phases:
            say(f"\n== drain: {args.jobs:,} jobs pre-queued, workers started, first to last finished job, "
                f"{args.runs} runs")
            for system in systems:
                drain_phase(system, args, results[system.key])
        if "idle" in phases:
            say("\n== idle workers and enqueue→start latency")
            idle_phase(systems, args, results)
    finally:
        server.stop()
        # Logs and results stay; the SQLite ledger and Redis's directory go.
        shutil.rmtree(workdir / "redis", ignore_errors=True)
        for leftover in workdir.glob("greenroom.sqlite3*"):
            leftover.unlink(missing_ok=True)
    total = time.monotonic() - started
    run = {"machine": info, "args": vars(args) | {"json": str(args.json or "")}, "seconds": total,
           "systems": {s.key: {"label": s.label, "processes": s.processes, "threads": s.threads} for s in systems},
           "results": results}
    (workdir / "results.json").write_text(json.dumps(run, indent=2, default=str))
    if args.json:
        args.json.write_text(json.dumps(run, indent=2, default=str))
    say("")
    say(render(run))
    say(f"\ncomparison took {total:.0f} s; results in {(workdir / 'results.json').relative_to(BASE_DIR)}")


if __name__ == "__main__":
    main()
