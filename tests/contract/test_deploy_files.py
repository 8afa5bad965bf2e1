"""The production deployment files agree with the code, so they cannot rot: topics, departments and their ACLs,
``CIVREG_*`` settings, ports, probe and metrics paths, Grafana provisioning. ``docker compose config`` (or
``docker-compose config``) validates the compose file where a compose client exists."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from civreg.metrics import HEALTH_PATH, METRICS_PATH, READY_PATH
from civreg.settings import Settings
from consumers.departments import DEPARTMENTS
from deploy.topics import DEFAULT_DEPARTMENTS, desired_topics
from tests.support.environment import REPO

DEPLOY = REPO / "deploy"
PREFIX = "civreg"
METRICS_PORT = 9400
SCRAPE_JOB = "civreg-departments"
SETTINGS_ENV = {f"CIVREG_{name.upper()}" for name in Settings.model_fields}


def load_all(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def k8s(kind: str) -> list[dict[str, Any]]:
    return [doc for path in sorted((DEPLOY / "k8s").glob("*.yaml")) for doc in load_all(path) if doc["kind"] == kind]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return loaded


def consume_department(command: list[str]) -> str | None:
    """The department a ``civreg consume --department X`` command runs (None for any other command)."""
    if command[:1] == ["consume"] and "--department" in command:
        return command[command.index("--department") + 1]
    return None


def test_the_code_deploys_every_department_and_nothing_else() -> None:
    assert set(DEFAULT_DEPARTMENTS) == set(DEPARTMENTS), "deploy/topics.py and consumers/departments.py disagree"


# Compose ---------------------------------------------------------------------------------------------------


def test_compose_runs_one_consumer_per_department_with_metrics_and_readiness(compose: dict[str, Any]) -> None:
    services = compose["services"]
    running = {consume_department(service.get("command", [])): name for name, service in services.items()}
    running.pop(None, None)
    assert set(running) == set(DEPARTMENTS)
    for department, name in running.items():
        service = services[name]
        env = service["environment"]
        assert env["CIVREG_METRICS_PORT"] == str(METRICS_PORT)
        assert env["CIVREG_METRICS_HOST"] == "0.0.0.0"
        probe = " ".join(service["healthcheck"]["test"])
        assert f"127.0.0.1:{METRICS_PORT}{READY_PATH}" in probe, f"{department} healthcheck must use {READY_PATH}"


def test_compose_creates_topics_with_the_production_profile(compose: dict[str, Any]) -> None:
    setup = " ".join(compose["services"]["setup"]["command"])
    assert "civreg topics apply --profile production" in setup
    assert set(DEFAULT_DEPARTMENTS) == set(DEPARTMENTS)  # apply's default departments are the deployed ones


def test_compose_sets_only_real_settings(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for variable in service.get("environment", {}):
            if variable.startswith("CIVREG_"):
                assert variable in SETTINGS_ENV, f"{name} sets {variable}, which civreg.settings.Settings lacks"


def test_compose_mounts_the_prometheus_and_grafana_files(compose: dict[str, Any]) -> None:
    for service in ("prometheus", "grafana"):
        for volume in compose["services"][service]["volumes"]:
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{service} mounts {source}, which does not exist"
    grafana_mounts = dict(volume.split(":")[:2] for volume in compose["services"]["grafana"]["volumes"])
    provider = yaml.safe_load((DEPLOY / "grafana/provisioning/dashboards/civreg.yaml").read_text())
    assert grafana_mounts["./grafana/dashboards"] == provider["providers"][0]["options"]["path"]
    home = compose["services"]["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert (DEPLOY / "grafana/dashboards" / Path(home).name).exists()


def test_prometheus_scrapes_every_department_on_its_metrics_port(compose: dict[str, Any]) -> None:
    config = yaml.safe_load((DEPLOY / "prometheus/prometheus.yml").read_text())
    (job,) = [job for job in config["scrape_configs"] if job["job_name"] == SCRAPE_JOB]
    assert job.get("metrics_path", METRICS_PATH) == METRICS_PATH
    targets = {target for static in job["static_configs"] for target in static["targets"]}
    services = {name for name, service in compose["services"].items() if consume_department(service.get("command", []))}
    assert targets == {f"{service}:{METRICS_PORT}" for service in services}
    rules = (DEPLOY / "prometheus/civreg-rules.yml").read_text()
    assert f'job="{SCRAPE_JOB}"' in rules


def test_dockerfile_exposes_the_metrics_port_and_runs_the_cli() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert f"EXPOSE {METRICS_PORT}" in dockerfile
    assert 'ENTRYPOINT ["civreg"]' in dockerfile
    for variable in re.findall(r"\b(CIVREG_[A-Z_]+)=", dockerfile):
        assert variable in SETTINGS_ENV


def _compose_client() -> list[str] | None:
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True, check=False).returncode == 0:
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


def test_compose_file_is_valid() -> None:
    client = _compose_client()
    if client is None:
        pytest.skip("no compose client (docker compose plugin or docker-compose) to validate with")
    env = {"PATH": "/usr/bin:/bin", "POSTGRES_PASSWORD": "example", "GRAFANA_ADMIN_PASSWORD": "example"}
    checked = subprocess.run(
        [*client, "-f", str(DEPLOY / "compose.yaml"), "config", "--quiet"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stderr


# Kubernetes ------------------------------------------------------------------------------------------------


def test_k8s_topics_match_the_topic_definitions() -> None:
    declared = {doc["spec"]["topicName"]: doc["spec"] for doc in k8s("KafkaTopic")}
    wanted = desired_topics(PREFIX, DEFAULT_DEPARTMENTS, profile="production")
    assert set(declared) == {spec.name for spec in wanted}
    for spec in wanted:
        topic = declared[spec.name]
        assert topic["partitions"] == spec.partitions, spec.name
        assert topic["replicas"] == spec.replication_factor, spec.name
        assert {key: str(value) for key, value in topic["config"].items()} == dict(spec.config), spec.name


def _acls(user: dict[str, Any]) -> dict[tuple[str, str], set[str]]:
    return {
        (acl["resource"]["type"], acl["resource"].get("name", "")): set(acl["operations"])
        for acl in user["spec"]["authorization"]["acls"]
    }


def test_k8s_users_exist_for_every_deployed_department() -> None:
    # What each KafkaUser may do is generated and checked in tests/unit/test_acls.py (deploy/acls.py).
    users = {doc["metadata"]["name"] for doc in k8s("KafkaUser")}
    assert {f"civreg-{name}" for name in DEPARTMENTS} | {"civreg-register-office", "civreg-router"} <= users


def test_k8s_department_statefulsets_probe_expose_metrics_and_are_static_members() -> None:
    deployments = {doc["metadata"]["name"]: doc for doc in k8s("StatefulSet")}
    users = {doc["metadata"]["name"] for doc in k8s("KafkaUser")}
    for name in DEPARTMENTS:
        pod = deployments[f"civreg-{name}"]["spec"]["template"]
        (container,) = pod["spec"]["containers"]
        assert consume_department(container["args"]) == name
        env = {item["name"]: item for item in container["env"]}
        assert set(env) <= SETTINGS_ENV, set(env) - SETTINGS_ENV
        assert env["CIVREG_METRICS_PORT"]["value"] == str(METRICS_PORT)
        assert env["CIVREG_METRICS_HOST"]["value"] == "0.0.0.0"
        # Static group membership: the pod's stable name is its instance id (a restart keeps its partitions).
        assert env["CIVREG_GROUP_INSTANCE_ID"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
        assert deployments[f"civreg-{name}"]["spec"]["serviceName"] in {
            doc["metadata"]["name"] for doc in k8s("Service")
        }
        assert env["CIVREG_SASL_USERNAME"]["value"] in users
        assert env["CIVREG_SASL_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == env["CIVREG_SASL_USERNAME"]["value"]
        ports = {port["name"]: port["containerPort"] for port in container["ports"]}
        assert ports == {"metrics": METRICS_PORT}
        assert container["readinessProbe"]["httpGet"] == {"path": READY_PATH, "port": "metrics"}
        assert container["livenessProbe"]["httpGet"] == {"path": HEALTH_PATH, "port": "metrics"}
        assert pod["metadata"]["labels"]["civreg/scrape-job"] == SCRAPE_JOB


def test_k8s_workloads_set_only_real_settings() -> None:
    for workload in [*k8s("Deployment"), *k8s("StatefulSet"), *k8s("Job")]:
        for container in workload["spec"]["template"]["spec"]["containers"]:
            for item in container.get("env", []):
                if item["name"].startswith("CIVREG_"):
                    assert item["name"] in SETTINGS_ENV, f"{workload['metadata']['name']} sets {item['name']}"


def test_k8s_pod_monitor_scrapes_the_departments_as_the_job_the_rules_name() -> None:
    (monitor,) = k8s("PodMonitor")
    spec = monitor["spec"]
    assert spec["jobLabel"] == "civreg/scrape-job"
    (endpoint,) = spec["podMetricsEndpoints"]
    assert endpoint == {"port": "metrics", "path": METRICS_PATH, "interval": "15s"}
    for deployment in [*k8s("Deployment"), *k8s("StatefulSet")]:
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        selected = all(labels.get(key) == value for key, value in spec["selector"]["matchLabels"].items())
        assert selected == (labels.get("app.kubernetes.io/component") == "department"), deployment["metadata"]["name"]


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((DEPLOY / "k8s/kustomization.yaml").read_text())
    manifests = {path.name for path in (DEPLOY / "k8s").glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == manifests


def test_grafana_datasource_is_the_dashboards_default() -> None:
    provisioned = yaml.safe_load((DEPLOY / "grafana/provisioning/datasources/civreg.yaml").read_text())
    (source,) = provisioned["datasources"]
    for path in (DEPLOY / "grafana/dashboards").glob("*.json"):
        variables = {var["name"]: var for var in yaml.safe_load(path.read_text())["templating"]["list"]}
        assert variables["datasource"]["current"]["value"] == source["uid"], path.name


def test_pyproject_licence_is_an_spdx_string_that_its_setuptools_accepts() -> None:
    """A licence table makes setuptools print three deprecation blocks on a newcomer's first `make demo` (PEP 639)."""
    import tomllib

    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    assert pyproject["project"]["license"] == "OGL-UK-3.0 OR MIT"
    (setuptools,) = [r for r in pyproject["build-system"]["requires"] if r.startswith("setuptools")]
    minimum = re.fullmatch(r"setuptools>=(\d+)(?:\.\d+)*", setuptools)
    assert minimum is not None and int(minimum.group(1)) >= 77, "SPDX licence strings need setuptools>=77"
