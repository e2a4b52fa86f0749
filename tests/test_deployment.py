"""Deployment files agree with the code: every variable they set is read, every path exists."""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from pathlib import Path

import httpx
import yaml

from service.app import create_app
from service.settings import Settings
from tests.conftest import ROOT, Server

PREFIX = Settings.model_config["env_prefix"]
KNOWN = {PREFIX + name.upper() for name in Settings.model_fields}
K8S = ROOT / "docker" / "k8s"


def dockerfile_env() -> dict[str, str]:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    pairs: dict[str, str] = {}
    for line in text.splitlines():
        if line.strip().startswith("ENV "):
            pairs.update(re.findall(r"(\w+)=(\S+)", line))
    return pairs


def manifests() -> list[dict]:
    return [doc for path in sorted(K8S.glob("*.yaml")) for doc in yaml.safe_load_all(path.read_text())]


def test_dockerfile_sets_only_variables_the_service_reads() -> None:
    ours = {k for k in dockerfile_env() if k.startswith(PREFIX)}
    assert ours, "the image configures the service through RNNSERVE_* variables"
    assert ours <= KNOWN, f"unknown: {ours - KNOWN}"


def test_compose_and_kubernetes_set_only_known_variables() -> None:
    compose = yaml.safe_load((ROOT / "docker" / "compose.yaml").read_text())
    names = set()
    for service in compose["services"].values():
        names |= {k for k in service.get("environment", {}) if k.startswith(PREFIX)}
    for doc in manifests():
        if doc.get("kind") == "Deployment":
            for container in doc["spec"]["template"]["spec"]["containers"]:
                names |= {e["name"] for e in container.get("env", [])}
    assert names and names <= KNOWN, f"unknown: {names - KNOWN}"


def test_dockerfile_copies_what_exists_and_dockerignore_lets_it_through() -> None:
    text = (ROOT / "Dockerfile").read_text()
    sources = [s for line in re.findall(r"^COPY (?!--from)(?:--\S+ )*(.+)$", text, re.M) for s in line.split()[:-1]]
    allowed = {
        line[1:].rstrip("/") for line in (ROOT / ".dockerignore").read_text().splitlines() if line.startswith("!")
    }
    for source in sources:
        assert (ROOT / source).exists(), source
        assert source.rstrip("/") in allowed, f"{source} is excluded by .dockerignore"
    assert 'CMD ["python3", "-m", "service.healthcheck"]' in text
    assert (ROOT / "service" / "healthcheck.py").is_file()


def test_probe_and_scrape_paths_are_served(server: Server) -> None:
    paths = {"/metrics"}
    for doc in manifests():
        if doc.get("kind") == "Deployment":
            template = doc["spec"]["template"]
            paths.add(template["metadata"]["annotations"]["prometheus.io/path"])
            for container in template["spec"]["containers"]:
                for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                    paths.add(container[probe]["httpGet"]["path"])
    prometheus = yaml.safe_load((ROOT / "docker" / "prometheus" / "prometheus.yml").read_text())
    paths |= {job["metrics_path"] for job in prometheus["scrape_configs"]}
    for path in paths:
        assert httpx.get(server.url + path, timeout=10).status_code == 200, path


def test_healthcheck_module_against_a_running_server(server: Server) -> None:
    env = {"RNNSERVE_PORT": str(server.port), "RNNSERVE_HOST": "0.0.0.0", "PATH": "/usr/bin:/bin"}
    ok = subprocess.run([sys.executable, "-m", "service.healthcheck"], cwd=ROOT, env=env, timeout=30)
    assert ok.returncode == 0
    env["RNNSERVE_PORT"] = "1"  # nothing listens there
    down = subprocess.run([sys.executable, "-m", "service.healthcheck"], cwd=ROOT, env=env, timeout=30)
    assert down.returncode == 1


def test_dashboard_queries_use_exported_metric_names() -> None:
    import json

    dashboard = json.loads((ROOT / "docker" / "grafana" / "dashboards" / "rnnserve.json").read_text())
    exprs = " ".join(t["expr"] for p in dashboard["panels"] for t in p["targets"])
    used = set(re.findall(r"rnnserve_[a-z_]+", exprs))
    exported = set()
    for metric in create_app(Settings()).state.metrics.registry.collect():
        exported |= {sample.name for sample in metric.samples} | {metric.name}
        if metric.type == "counter":
            exported.add(metric.name + "_total")
    histogram_parts = {name + suffix for name in exported for suffix in ("_bucket", "_sum", "_count")}
    assert used <= exported | histogram_parts, f"unknown metrics: {used - exported - histogram_parts}"


def test_image_holds_every_package_the_service_imports() -> None:
    """The image copies packages one by one: each first-party package `service/` imports must be
    among them (and in .dockerignore's allow list), or the container fails at start."""
    first_party = {"service", "rnnserve_bundle", "training", "rnnserve_client"}
    imported = set()
    for source in (ROOT / "service").rglob("*.py"):
        imported |= set(re.findall(r"^\s*(?:from|import) (\w+)", source.read_text(), flags=re.MULTILINE))
    needed = imported & first_party
    assert needed == {"service", "rnnserve_bundle"}, "the service must not import training code"
    dockerfile = (ROOT / "Dockerfile").read_text()
    allowed = (ROOT / ".dockerignore").read_text().splitlines()
    for package in needed | {"rnnserve_cli"}:  # and the `rnnserve` console script's
        assert f"COPY {package} ./{package}" in dockerfile
        assert f"!{package}/" in allowed


def test_every_deployment_exposes_http_and_grpc() -> None:
    env = dockerfile_env()
    ports = {env["RNNSERVE_PORT"], env["RNNSERVE_GRPC_PORT"]}
    (exposed,) = re.findall(r"^EXPOSE (.+)$", (ROOT / "Dockerfile").read_text(), re.M)
    assert set(exposed.split()) == ports
    compose = yaml.safe_load((ROOT / "docker" / "compose.yaml").read_text())
    for service in compose["services"].values():
        if str(service.get("image", "")).startswith("rnnserve"):
            assert {p.split(":")[-1] for p in service["ports"]} == ports
    for doc in manifests():
        if doc.get("kind") == "Deployment":
            (container,) = doc["spec"]["template"]["spec"]["containers"]
            named = {p["name"]: str(p["containerPort"]) for p in container["ports"]}
            assert named == {"http": env["RNNSERVE_PORT"], "grpc": env["RNNSERVE_GRPC_PORT"]}
        if doc.get("kind") == "Service":
            assert {p["targetPort"] for p in doc["spec"]["ports"]} == {"http", "grpc"}


def test_wheel_carries_the_files_the_service_reads(tmp_path: Path) -> None:
    """The image installs the package (not the source tree): data files must be in the wheel."""
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), "."],
        cwd=ROOT,
        check=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("rnnserve-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    needed = [p for p in (ROOT / "service").rglob("*") if p.is_file() and p.suffix not in (".py", ".pyc")]
    needed = [p.relative_to(ROOT).as_posix() for p in needed if "__pycache__" not in p.parts]
    assert needed and set(needed) <= names, set(needed) - names
