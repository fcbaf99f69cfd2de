"""The code cron table is collected from `periodic=cron(...)` declarations next to the jobs."""

from __future__ import annotations

import pytest

from schedules.periodic import declared, periodic_jobs
from workers.catalogue import job
from workers.errors import CatalogueError


def test_the_table_holds_the_default_periodic_jobs_declared_beside_them():
    table = {entry.name: (entry.cron, entry.task, entry.params) for entry in declared()}

    assert table == {
        "llm.validate_all": ("0 * * * *", "llm.validate_all", {}),
        "maintenance.cleanup_files": ("45 3 * * *", "maintenance.cleanup_files", {}),
        "maintenance.prune_jobs": ("30 3 * * *", "maintenance.prune_jobs", {}),
        "maintenance.reconcile": ("* * * * *", "maintenance.reconcile", {}),
        "sources.sync_all": ("0 2 * * *", "sources.sync_all", {}),
    }
    assert all(entry.why for entry in declared())


def test_the_setting_overrides_an_entry_by_its_job_name(settings):
    settings.GREENROOM_PERIODIC = {"maintenance.reconcile": "*/5 * * * *", "llm.validate_all": "off"}

    table = {entry.name: entry.cron for entry in periodic_jobs()}

    assert table["maintenance.reconcile"] == "*/5 * * * *"
    assert "llm.validate_all" not in table


def test_a_periodic_declaration_that_is_not_a_cron_fails_at_import():
    with pytest.raises(CatalogueError, match="not a valid cron"):
        job("tests.bad_periodic", periodic="every day")
