"""Greenroom settings: the only module that reads the environment.

Every setting below can be set from an environment variable of the same name; `docs/settings.md`
lists them all with their defaults. Nothing else in the code base calls `os.environ`.
"""

from __future__ import annotations

import ipaddress
import os
import sys
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

# var/ holds everything a local run writes: the SQLite database, the embedded Redis, logs, media.
VAR_DIR = Path(env.str("GREENROOM_VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

SECRET_KEY = env.str("SECRET_KEY", default="greenroom-insecure-development-key-change-me")
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_dramatiq",
    "workers",
    "workers.pdf",
    "workers.documents",
    "workers.sources",
    "workers.llm",
    "schedules",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "project.urls"
WSGI_APPLICATION = "project.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------------------------
# DATABASE_URL, e.g. postgres://user@127.0.0.1:5432/greenroom; default: SQLite in var/.
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'greenroom.sqlite3'}"),
}
# Workers keep their connection between messages (reconnecting per message costs ~4x throughput on
# PostgreSQL); django_dramatiq's DbConnectionsMiddleware drops connections that are too old or broken.
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several worker processes write at once: WAL lets readers run beside the writer, IMMEDIATE takes
    # the write lock at BEGIN (so no deadlock on lock upgrade) and the timeout (seconds) makes writers
    # queue instead of failing with "database is locked". Django's backend, except that a writer waits
    # for the lock in steps of 0.1-2 ms rather than SQLite's 1-100 ms (project/sqlite_backend).
    DATABASES["default"]["ENGINE"] = "project.sqlite_backend"
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": env.int("GREENROOM_SQLITE_TIMEOUT", default=30),
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # The test database must be a file: worker processes started by the tests open it too. One per
    # test run (by pid), so that two runs side by side do not share it.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-greenroom-{os.getpid()}.sqlite3")}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-gb"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(VAR_DIR / "static")))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # WhiteNoise warns about a missing one (before collectstatic)
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(VAR_DIR / "media")))

# End users log in at /accounts/login/ (any active user); staff pages use the admin's form.
LOGIN_URL = "login"

# Request bodies larger than this are refused with 413 by the API (Django's own check, reused).
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("GREENROOM_MAX_BODY_BYTES", default=256 * 1024)

# --- Broker -------------------------------------------------------------------------------------
# GREENROOM_BROKER_URL: redis://host:port/db or unix:///path/redis.sock. Empty means "embedded":
# `manage.py runstack` starts a private redis-server listening on this unix socket under var/.
GREENROOM_EMBEDDED_REDIS_SOCKET = VAR_DIR / "redis" / "redis.sock"
if len(str(GREENROOM_EMBEDDED_REDIS_SOCKET)) > 100:  # unix socket paths are limited to ~107 bytes
    import hashlib

    _digest = hashlib.sha256(str(VAR_DIR).encode()).hexdigest()[:12]
    GREENROOM_EMBEDDED_REDIS_SOCKET = Path("/tmp") / f"greenroom-{_digest}" / "redis.sock"  # noqa: S108
GREENROOM_BROKER_URL = env.str("GREENROOM_BROKER_URL", default="")
GREENROOM_BROKER_EMBEDDED = not GREENROOM_BROKER_URL
if GREENROOM_BROKER_EMBEDDED:
    GREENROOM_BROKER_URL = f"unix://{GREENROOM_EMBEDDED_REDIS_SOCKET}"

# GREENROOM_CACHE_URL: a Redis for Django's cache (may evict: allkeys-lru). Empty: per-process memory.
# Never the broker's Redis, which must not evict (system check workers.E001).
GREENROOM_CACHE_URL = env.str("GREENROOM_CACHE_URL", default="")
if GREENROOM_CACHE_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": GREENROOM_CACHE_URL}}

# Redis broker tuning (see docs/settings.md): a SIGKILLed worker's messages come back after the
# heartbeat timeout plus the wait for a maintenance run; Dramatiq's defaults (60 s, 0.1 %) measured
# 84-297 s here, these measure under 30 s.
GREENROOM_REDIS_HEARTBEAT_TIMEOUT_MS = env.int("GREENROOM_REDIS_HEARTBEAT_TIMEOUT_MS", default=15_000)
GREENROOM_REDIS_MAINTENANCE_CHANCE = env.int("GREENROOM_REDIS_MAINTENANCE_CHANCE", default=100_000)

# GREENROOM_NAMESPACE: the prefix of every broker key (Dramatiq's Redis namespace). Sites sharing one
# Redis each set their own and never see each other's queues, dead letters or scheduler lease.
GREENROOM_NAMESPACE = env.str("GREENROOM_NAMESPACE", default="dramatiq")

DRAMATIQ_BROKER = {
    "BROKER": "project.broker.GreenroomRedisBroker",
    "OPTIONS": {
        "url": GREENROOM_BROKER_URL,
        "namespace": GREENROOM_NAMESPACE,
        "heartbeat_timeout": GREENROOM_REDIS_HEARTBEAT_TIMEOUT_MS,
        "maintenance_chance": GREENROOM_REDIS_MAINTENANCE_CHANCE,
    },
    "MIDDLEWARE": [
        "dramatiq.middleware.AgeLimit",
        "dramatiq.middleware.TimeLimit",
        "dramatiq.middleware.ShutdownNotifications",
        "dramatiq.middleware.CurrentMessage",
        "django_dramatiq.middleware.DbConnectionsMiddleware",
        "workers.middleware.LedgerRetries",
        "workers.middleware.WorkerHousekeeping",
        "workers.middleware.MemoryCap",
    ],
}
# GREENROOM_BROKER_URL=amqp://user:password@host:5672/vhost (or amqps://) selects RabbitMQ instead
# (project/rabbitmq.py): the same middleware; the vhost is the namespace. Queues get `x-max-priority`
# GREENROOM_RABBITMQ_MAX_PRIORITY (0: none); changing it means re-creating the queues (docs/operations.md).
GREENROOM_RABBITMQ_MAX_PRIORITY = env.int("GREENROOM_RABBITMQ_MAX_PRIORITY", default=10)
if GREENROOM_BROKER_URL.split("://", 1)[0].lower() in ("amqp", "amqps"):
    DRAMATIQ_BROKER["BROKER"] = "project.rabbitmq.GreenroomRabbitmqBroker"
    DRAMATIQ_BROKER["OPTIONS"] = {
        "url": GREENROOM_BROKER_URL,
        "namespace": GREENROOM_NAMESPACE,
        "max_priority": GREENROOM_RABBITMQ_MAX_PRIORITY,
    }
# rundramatiq imports `<app>.jobs` of every installed app: the catalogue lives in workers/jobs/.
DRAMATIQ_AUTODISCOVER_MODULES = ["jobs"]

# --- Greenroom ----------------------------------------------------------------------------------
# Run jobs inline, through the same ledger, instead of publishing them (for tests and demos).
GREENROOM_EAGER = env.bool("GREENROOM_EAGER", default=False)
# Seconds between two progress writes of one job (progress() calls in between only count).
GREENROOM_PROGRESS_INTERVAL = env.float("GREENROOM_PROGRESS_INTERVAL", default=0.5)
# Seconds between heartbeats of running jobs; a RUNNING row whose heartbeat is older than
# GREENROOM_STALE_AFTER is taken back by the reconciler (and may be restarted by a redelivery).
GREENROOM_HEARTBEAT_INTERVAL = env.float("GREENROOM_HEARTBEAT_INTERVAL", default=3.0)
GREENROOM_STALE_AFTER = env.float("GREENROOM_STALE_AFTER", default=12.0)
# Seconds between two runs of the outbox relay / reconciler in each worker process.
GREENROOM_RELAY_INTERVAL = env.float("GREENROOM_RELAY_INTERVAL", default=5.0)
# Seconds a new row is left to the request that wrote it (it publishes after commit) before the
# relay publishes it instead.
GREENROOM_RELAY_GRACE = env.float("GREENROOM_RELAY_GRACE", default=2.0)
# Seconds after which a published, due, never-started READY job whose queue is empty is presumed to
# have lost its message (e.g. Redis restarted without persistence) and is published again.
GREENROOM_REPUBLISH_AFTER = env.float("GREENROOM_REPUBLISH_AFTER", default=600.0)
# Resident memory (MiB) after which a worker process finishes its jobs and is replaced; 0 = no cap.
GREENROOM_WORKER_MEMORY_CAP_MB = env.int("GREENROOM_WORKER_MEMORY_CAP_MB", default=400)
# Worker slots started by `runstack`: space-separated "queue,queue:threads" (one process each).
GREENROOM_WORKERS = env.str("GREENROOM_WORKERS", default="interactive,default:4 batch,default:2")
# `runstack` creates demo data (reports, a docs/ source, documents) on start-up (idempotent).
GREENROOM_SEED_DEMO = env.bool("GREENROOM_SEED_DEMO", default=True)
# Page size of GET /api/jobs/.
GREENROOM_PAGE_SIZE = env.int("GREENROOM_PAGE_SIZE", default=50)
# Worker processes write many jobs' claims, and many jobs' SUCCESSFUL writes, in one statement each
# (one writer thread per process); each message is still acked only after its own row is durable.
GREENROOM_LEDGER_GROUP_COMMIT = env.bool("GREENROOM_LEDGER_GROUP_COMMIT", default=True)
# PostgreSQL: the worker's claim and finish statements are prepared on each connection. Turn off
# behind a pooler that cannot keep prepared statements (PgBouncer before 1.21 in transaction mode).
GREENROOM_LEDGER_PREPARED_STATEMENTS = env.bool("GREENROOM_LEDGER_PREPARED_STATEMENTS", default=True)

# --- PDF reports (workers.pdf) ------------------------------------------------------------------
# Days a built PDF is kept; pdf_delete_expired() (the nightly clean-up) deletes older ones, and their
# status URL then answers 410 Gone.
GREENROOM_PDF_RETENTION_DAYS = env.int("GREENROOM_PDF_RETENTION_DAYS", default=7)
# How /pdf/files/ hands the file over: "" (Django streams it), "x-accel-redirect" (nginx) or
# "x-sendfile" (Apache mod_xsendfile, lighttpd): the web server sends it, Django only checks access.
GREENROOM_PDF_SENDFILE = env.str("GREENROOM_PDF_SENDFILE", default="")
# The internal nginx location that maps to MEDIA_ROOT/pdf/ (with "x-accel-redirect").
GREENROOM_PDF_ACCEL_PREFIX = env.str("GREENROOM_PDF_ACCEL_PREFIX", default="/protected/pdf/")

# --- Documents and embeddings (workers.documents) -----------------------------------------------
# Embedding backend: "wordllama" (local, offline, 256 dimensions) or "openai" (any OpenAI-compatible
# POST {URL}/v1/embeddings server). The key is sent as a Bearer token and never logged.
GREENROOM_EMBEDDING_BACKEND = env.str("GREENROOM_EMBEDDING_BACKEND", default="wordllama")
GREENROOM_EMBEDDING_URL = env.str("GREENROOM_EMBEDDING_URL", default="")
GREENROOM_EMBEDDING_API_KEY = env.str("GREENROOM_EMBEDDING_API_KEY", default="")
GREENROOM_EMBEDDING_MODEL = env.str("GREENROOM_EMBEDDING_MODEL", default="text-embedding-3-small")
# Expected vector size of the "openai" backend; 0 accepts whatever the server answers.
GREENROOM_EMBEDDING_DIM = env.int("GREENROOM_EMBEDDING_DIM", default=0)
# Chunks embedded per call to the backend (one progress update per batch).
GREENROOM_EMBEDDING_BATCH = env.int("GREENROOM_EMBEDDING_BATCH", default=64)
# Chunk size and overlap of document texts, in characters (cuts snap to word boundaries).
GREENROOM_CHUNK_SIZE = env.int("GREENROOM_CHUNK_SIZE", default=1000)
GREENROOM_CHUNK_OVERLAP = env.int("GREENROOM_CHUNK_OVERLAP", default=200)
# Enqueue documents.embed_document whenever a document's text is created or changed.
GREENROOM_EMBED_ON_SAVE = env.bool("GREENROOM_EMBED_ON_SAVE", default=True)

# --- Documentation sources (workers.sources) ----------------------------------------------------
# Where git sources given by URL are mirrored (one bare repository per source: <dir>/<id>.git).
GREENROOM_SOURCES_DIR = Path(env.str("GREENROOM_SOURCES_DIR", default=str(MEDIA_ROOT / "sources")))
# Files larger than this (bytes) are counted as failed by a sync instead of being read.
GREENROOM_SOURCE_MAX_FILE_BYTES = env.int("GREENROOM_SOURCE_MAX_FILE_BYTES", default=2 * 1024 * 1024)

# --- LLM APIs (workers.llm) ---------------------------------------------------------------------

# --- Maintenance jobs (workers.jobs.maintenance) ------------------------------------------------
# Finished jobs (SUCCESSFUL, FAILED, CANCELLED) older than this many days are deleted by
# maintenance.prune_jobs; 0 keeps them for ever.
GREENROOM_JOB_RETENTION_DAYS = env.int("GREENROOM_JOB_RETENTION_DAYS", default=30)

# --- Schedules (schedules) ----------------------------------------------------------------------
# Overrides of the code table in schedules/periodic.py, as JSON: {"<name>": "<cron>" or "off"}.
GREENROOM_PERIODIC = env.json("GREENROOM_PERIODIC", default={})
# Time zone of the code table's crons (database schedules carry their own); default TIME_ZONE.
GREENROOM_SCHEDULER_TIMEZONE = env.str("GREENROOM_SCHEDULER_TIMEZONE", default=TIME_ZONE)
# Seconds the active runscheduler's Redis lease lasts unless renewed (renewed every third of it).
GREENROOM_SCHEDULER_LEASE_TTL = env.float("GREENROOM_SCHEDULER_LEASE_TTL", default=10.0)
# A slot older than this many seconds when the scheduler sees it was missed: its misfire policy applies.
GREENROOM_SCHEDULER_GRACE = env.float("GREENROOM_SCHEDULER_GRACE", default=60.0)

# --- Metrics (docs/metrics.md) ---------------------------------------------------------------------
# GREENROOM_METRICS_DIR: where every process keeps its counters for GET /metrics (prometheus-client's
# multiprocess mode); empty: each process serves only its own (worker processes' metrics are lost).
# `runstack` sets it to var/metrics for its children. prometheus_client picks its mode when first
# imported, so the variable it reads is exported here, before anything imports it.
GREENROOM_METRICS_DIR = env.str("GREENROOM_METRICS_DIR", default=env.str("PROMETHEUS_MULTIPROC_DIR", default=""))
if GREENROOM_METRICS_DIR:
    Path(GREENROOM_METRICS_DIR).mkdir(parents=True, exist_ok=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = GREENROOM_METRICS_DIR
# GREENROOM_WORKER_METRICS_PORT: each worker process also serves its own counters on this port (for
# workers that share no metrics directory with the web, e.g. Kubernetes pods); 0 = off.
GREENROOM_WORKER_METRICS_PORT = env.int("GREENROOM_WORKER_METRICS_PORT", default=0)
# A scrape must send `Authorization: Bearer <GREENROOM_METRICS_TOKEN>` when it is set.
GREENROOM_METRICS_TOKEN = env.str("GREENROOM_METRICS_TOKEN", default="")
# Comma-separated CIDRs a scrape may come from (REMOTE_ADDR); empty: any network, if a token is set.
GREENROOM_METRICS_ALLOW = [
    cidr.strip() for cidr in env.str("GREENROOM_METRICS_ALLOW", default="127.0.0.1/32,::1/128").split(",")
    if cidr.strip()
]
for _cidr in GREENROOM_METRICS_ALLOW:
    ipaddress.ip_network(_cidr, strict=False)  # a typo fails at start-up, not as a 403 at scrape time

# --- Logging ------------------------------------------------------------------------------------
# GREENROOM_LOG_FORMAT=json writes one JSON object per line (for log shippers); "text" for people.
# Lines written while a job runs carry its job_id, task, queue and attempt (JSON fields, or a text
# suffix), and secrets are redacted from every line (project/logging.py).
GREENROOM_LOG_FORMAT = env.str("GREENROOM_LOG_FORMAT", default="text")
if GREENROOM_LOG_FORMAT not in ("text", "json"):
    raise ValueError(f"GREENROOM_LOG_FORMAT must be 'text' or 'json', not {GREENROOM_LOG_FORMAT!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "job_context": {"()": "project.logging.JobContextFilter"},
        "redact": {"()": "project.logging.RedactingFilter"},
    },
    "formatters": {
        "text": {"()": "project.logging.TextFormatter", "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "project.logging.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "stream": sys.stderr,
            "formatter": GREENROOM_LOG_FORMAT,
            "filters": ["job_context", "redact"],
        },
    },
    "root": {"handlers": ["console"], "level": env.str("GREENROOM_LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# --- Dashboard (workers.dashboard, workers.events) ----------------------------------------------
# Seconds an event stream (/api/jobs/<id>/events/, /dashboard/events/) stays open before it ends
# itself; the browser reconnects at once. Bounds how long one stream holds a web server thread.
GREENROOM_SSE_MAX_SECONDS = env.float("GREENROOM_SSE_MAX_SECONDS", default=60.0)
# Open event streams per web process; one more answers 503 with Retry-After and the page polls the
# JSON API instead. Keep it below the server's threads (gunicorn --threads) so pages still load.
GREENROOM_SSE_MAX_STREAMS = env.int("GREENROOM_SSE_MAX_STREAMS", default=16)
