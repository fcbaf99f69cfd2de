"""A private Django + Redis for a benchmark: its own redis-server, its own SQLite file (or a given
PostgreSQL database), migrated, removed afterwards. Shared by bench/enqueue.py and bench/ledger_writes.py.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent


@contextmanager
def private_stack(prefix: str, database_url: str | None) -> Iterator[Path]:
    """Start a private redis-server, point Django at it and at the database, migrate; yield the temp dir."""
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    sys.path.insert(0, str(BASE_DIR))
    from tests.support.redis_server import RedisServer

    server = RedisServer().start()
    try:
        # Must happen before django.setup().
        os.environ["DJANGO_SETTINGS_MODULE"] = "project.settings"
        os.environ["DATABASE_URL"] = database_url or f"sqlite:///{tmp / 'bench.sqlite3'}"
        os.environ["GREENROOM_VAR_DIR"] = str(tmp / "var")
        os.environ["GREENROOM_BROKER_URL"] = server.url
        os.environ.setdefault("GREENROOM_LOG_LEVEL", "WARNING")
        import django

        django.setup()
        from django.core.management import call_command

        import workers.jobs  # noqa: F401 - the catalogue

        call_command("migrate", verbosity=0)
        yield tmp
        from workers.models import Job

        Job.objects.all().delete()
    finally:
        server.remove()
        shutil.rmtree(tmp, ignore_errors=True)
