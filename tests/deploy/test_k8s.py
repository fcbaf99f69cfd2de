"""The Kubernetes manifests in deploy/k8s/ hold together with the project they deploy.

No cluster here: the manifests are parsed and every command, setting, port, probe path, queue and
reference they use is checked against the project itself.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.core.management import get_commands
from django.urls import Resolver404, resolve

from workers import catalogue

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"


def _settings_env_names() -> set[str]:
    """The environment variables project/settings.py reads (it is the only module that reads any)."""
    source = (ROOT / "project" / "settings.py").read_text()
    return set(re.findall(r'env(?:\.\w+)?\(\s*"([A-Z_][A-Z0-9_]*)"', source))


def _documents() -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    docs = []
    for name in kustomization["resources"]:
        docs += [doc for doc in yaml.safe_load_all((K8S / name).read_text()) if doc]
    return docs


DOCS = _documents()


def _of(kind: str) -> list[dict[str, Any]]:
    return [doc for doc in DOCS if doc["kind"] == kind]


def _named(kind: str, name: str) -> dict[str, Any]:
    [doc] = [doc for doc in _of(kind) if doc["metadata"]["name"] == name]
    return doc


def _pod_specs() -> list[tuple[str, dict[str, Any]]]:
    specs = [(d["metadata"]["name"], d["spec"]["template"]["spec"]) for d in _of("Deployment")]
    return specs + [(j["metadata"]["name"], j["spec"]["template"]["spec"]) for j in _of("Job")]


def _containers() -> list[tuple[str, dict[str, Any]]]:
    return [(name, c) for name, spec in _pod_specs() for c in spec["containers"]]


def _commands(container: dict[str, Any]) -> list[list[str]]:
    commands = [container["command"]]
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        exec_ = container.get(probe, {}).get("exec")
        if exec_:
            commands.append(exec_["command"])
    return commands


def test_every_file_of_the_kustomization_exists_and_parses():
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"} == set(kustomization["resources"])
    assert {d["kind"] for d in DOCS} >= {"Deployment", "Service", "ConfigMap", "Secret", "Job", "ScaledObject"}


@pytest.mark.parametrize(("owner", "container"), _containers(), ids=lambda v: v if isinstance(v, str) else "")
def test_every_command_is_a_real_program_of_the_image(owner, container):
    known = set(get_commands())
    for argv in _commands(container):
        if argv[:2] == ["python", "manage.py"]:
            assert argv[2] in known, f"{owner}: no management command {argv[2]!r}"
        else:
            assert argv[0] == "gunicorn" and argv[1] == "project.wsgi:application", f"{owner}: {shlex.join(argv)}"
        if argv[2:3] == ["rundramatiq"]:
            queues = argv[argv.index("--queues") + 1:]
            assert queues and set(queues) <= set(catalogue.QUEUES), f"{owner}: {queues}"
            assert argv[argv.index("--processes") + 1] == "1"  # one process per pod: see docs/operations.md


def test_every_setting_in_the_config_and_secrets_is_read_by_the_settings():
    read = _settings_env_names()
    for name in ("greenroom-config", "greenroom-secrets"):
        doc = _named("ConfigMap", name) if name.endswith("config") else _named("Secret", name)
        keys = set(doc.get("data") or {}) | set(doc.get("stringData") or {})
        assert keys and keys <= read, f"{name}: {sorted(keys - read)} are not settings"
    for _, container in _containers():
        refs = {ref.get("configMapRef", ref.get("secretRef", {})).get("name") for ref in container["envFrom"]}
        assert refs == {"greenroom-config", "greenroom-secrets"}


def test_ports_and_http_probes_point_at_the_web_and_its_health_views():
    service = _named("Service", "greenroom-web")
    web = _named("Deployment", "greenroom-web")
    assert service["spec"]["selector"] == web["spec"]["template"]["metadata"]["labels"]
    [container] = web["spec"]["template"]["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= set(ports)
    bind = container["command"][container["command"].index("--bind") + 1]
    assert int(bind.rsplit(":", 1)[1]) == ports["http"]
    for probe in ("livenessProbe", "readinessProbe"):
        path = container[probe]["httpGet"]["path"]
        try:
            resolve(path)
        except Resolver404:
            pytest.fail(f"{probe} path {path} is not a URL of the project")
    assert {container[p]["httpGet"]["path"] for p in ("livenessProbe", "readinessProbe")} == {"/healthz", "/readyz"}


@pytest.mark.parametrize("queue", catalogue.QUEUES)
def test_each_class_has_a_worker_deployment_that_drains_its_longest_job_before_it_is_killed(queue):
    deployment = _named("Deployment", f"greenroom-worker-{queue}")
    spec = deployment["spec"]["template"]["spec"]
    [container] = spec["containers"]
    argv = container["command"]
    queues = argv[argv.index("--queues") + 1:]
    longest = max(job.hard_time_limit for job in catalogue.all_jobs() if job.queue in queues)
    shutdown_s = int(argv[argv.index("--worker-shutdown-timeout") + 1]) / 1000
    assert shutdown_s >= longest, f"{queue}: running jobs get {shutdown_s} s, the longest may run {longest} s"
    assert spec["terminationGracePeriodSeconds"] > shutdown_s
    assert container["livenessProbe"]["exec"]["command"][-2:] == ["probe", "worker"]


@pytest.mark.parametrize("queue", catalogue.QUEUES)
def test_each_worker_deployment_scales_on_its_own_queue_depth(queue):
    scaled = _named("ScaledObject", f"greenroom-worker-{queue}")
    target = scaled["spec"]["scaleTargetRef"]["name"]
    deployment = _named("Deployment", target)
    argv = deployment["spec"]["template"]["spec"]["containers"][0]["command"]
    [trigger] = scaled["spec"]["triggers"]
    assert trigger["type"] == "redis"
    # Dramatiq's Redis broker keeps a queue's waiting message ids in the list <namespace>:<queue>.
    assert trigger["metadata"]["listName"] == f"dramatiq:{queue}"
    assert queue in argv[argv.index("--queues") + 1:]
    assert scaled["spec"]["minReplicaCount"] >= 1  # retries wait in <queue>.DQ, which the trigger does not see
    auth = _named("TriggerAuthentication", trigger["authenticationRef"]["name"])
    secret_ref = auth["spec"]["secretTargetRef"][0]
    assert secret_ref["key"] in _named("Secret", secret_ref["name"])["stringData"]


def test_pods_run_as_non_root_and_the_scheduler_runs_two_replicas():
    for name, spec in _pod_specs():
        assert spec["securityContext"]["runAsNonRoot"] is True, name
    assert _named("Deployment", "greenroom-scheduler")["spec"]["replicas"] == 2


@pytest.mark.parametrize("queue", catalogue.QUEUES)
def test_each_worker_pod_exposes_its_own_metrics_port(queue):
    template = _named("Deployment", f"greenroom-worker-{queue}")["spec"]["template"]
    [container] = template["spec"]["containers"]
    env = {item["name"]: item["value"] for item in container.get("env", [])}
    assert set(env) <= _settings_env_names()
    port = int(env["GREENROOM_WORKER_METRICS_PORT"])
    assert {p["name"]: p["containerPort"] for p in container["ports"]}["metrics"] == port
    assert template["metadata"]["annotations"]["prometheus.io/port"] == str(port)
