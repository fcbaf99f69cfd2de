"""Multiprocess mode: settings export PROMETHEUS_MULTIPROC_DIR before prometheus_client is imported."""

from __future__ import annotations

import os
import subprocess
import sys

from django.conf import settings

from workers.metrics import multiprocess_env

# What a process reports about its prometheus_client mode once it has loaded the way it does in production.
REPORT = (
    "import os, prometheus_client.values as v; "
    "print(v.ValueClass is not v.MutexValue, os.environ.get('PROMETHEUS_MULTIPROC_DIR'))"
)


def run(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "project.settings", **env}
    environment.pop("PROMETHEUS_MULTIPROC_DIR", None)
    return subprocess.run([sys.executable, "-c", code], env=environment, cwd=settings.BASE_DIR, capture_output=True,
                          text=True, timeout=120, check=False)


def test_web_process_loads_in_multiprocess_mode_when_the_dir_is_set(tmp_path):
    # When gunicorn's entry point loads (settings, apps, urls, then workers.metrics) with GREENROOM_METRICS_DIR
    directory = tmp_path / "metrics"
    done = run(f"import project.wsgi, django.urls; django.urls.resolve('/metrics'); {REPORT}",
               GREENROOM_METRICS_DIR=str(directory))
    # Then prometheus_client chose multiprocess mode, on that directory (which settings created)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", str(directory)]
    assert directory.is_dir()


def test_without_the_dir_processes_stay_single_process(tmp_path):
    done = run(f"import project.wsgi, django.urls; django.urls.resolve('/metrics'); {REPORT}", GREENROOM_METRICS_DIR="")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "None"]


def test_prometheus_imported_before_settings_is_refused_loudly(tmp_path):
    # Given a process that imports prometheus_client before Django's settings exported the variable
    code = "import prometheus_client, django; django.setup(); import workers.metrics"
    done = run(code, GREENROOM_METRICS_DIR=str(tmp_path / "metrics"))
    # Then loading the metrics fails instead of silently losing this process's counts
    assert done.returncode != 0
    assert "ImproperlyConfigured" in done.stderr
    assert "imported before project.settings" in done.stderr


def test_multiprocess_env_empties_the_directory_of_metric_files(tmp_path):
    # Given files left by processes of an earlier run, and a file that is not a metric file
    directory = tmp_path / "metrics"
    directory.mkdir()
    (directory / "counter_4242.db").write_bytes(b"stale")
    (directory / "histogram_4243.db").write_bytes(b"stale")
    (directory / "README").write_text("keep me")
    # When runstack prepares the directory for its children
    env = multiprocess_env(directory)
    # Then the metric files are gone, the rest stays, and the children are pointed at it
    assert sorted(os.listdir(directory)) == ["README"]
    assert env == {"GREENROOM_METRICS_DIR": str(directory), "PROMETHEUS_MULTIPROC_DIR": str(directory)}
