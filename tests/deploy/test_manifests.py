"""Offline checks of docker-compose.yml and the Kubernetes manifests in deploy/."""

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DEPLOY_DIR = ROOT / "deploy"
APP_SERVICES = ("profiles", "matching", "sessions", "feedback", "gateway")
# A version whose schemas kubernetes-validate bundles, pinned so results do not drift
# when the validator is upgraded.
KUBERNETES_VERSION = "1.33.0"


def _run_tool(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    # The console scripts sit next to the interpreter running the tests (the venv's bin/).
    tool = Path(sys.executable).parent / name
    assert tool.exists(), f"{name} is not installed next to {sys.executable}"
    return subprocess.run(
        [str(tool), *args], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )


def _compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return data


def _manifest_files() -> list[Path]:
    return sorted(DEPLOY_DIR.glob("*.yaml"))


def _resources() -> list[dict[str, Any]]:
    return [
        doc for path in _manifest_files() for doc in yaml.safe_load_all(path.read_text()) if doc
    ]


def _find(kind: str, name: str) -> dict[str, Any]:
    matches = [r for r in _resources() if r["kind"] == kind and r["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind} {name!r}, found {len(matches)}"
    return matches[0]


def test_compose_file_matches_compose_spec() -> None:
    result = _run_tool(
        "check-jsonschema", "--builtin-schema", "vendor.compose-spec", str(COMPOSE_FILE)
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_manifests_match_kubernetes_schemas() -> None:
    files = [str(path) for path in _manifest_files()]
    assert files, "deploy/ holds no manifests"
    result = _run_tool(
        "kubernetes-validate", "--strict", "--quiet", "-k", KUBERNETES_VERSION, *files
    )
    # An unknown kind or apiVersion is only a WARN with exit code 0: treat it as a failure.
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


def test_compose_has_exactly_the_expected_services() -> None:
    assert set(_compose()["services"]) == {"kafka", "postgres", *APP_SERVICES}


def test_compose_publishes_only_the_gateway() -> None:
    publishing = {name for name, svc in _compose()["services"].items() if svc.get("ports")}
    assert publishing == {"gateway"}


@pytest.mark.parametrize("name", APP_SERVICES)
def test_compose_service_is_configured(name: str) -> None:
    service = _compose()["services"][name]
    env = service["environment"]
    assert env["MENTORBUS_SERVICE"] == name
    assert env["MENTORBUS_KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
    assert env["MENTORBUS_DATABASE_URL"].endswith(f"@postgres:5432/mentorbus_{name}")
    assert service["depends_on"] == {
        "kafka": {"condition": "service_healthy"},
        "postgres": {"condition": "service_healthy"},
    }
    assert "/readyz" in " ".join(service["healthcheck"]["test"])


@pytest.mark.parametrize("name", APP_SERVICES)
def test_deploy_has_deployment_service_and_autoscaler(name: str) -> None:
    deployment = _find("Deployment", name)
    service = _find("Service", name)
    autoscaler = _find("HorizontalPodAutoscaler", name)

    pod = deployment["spec"]["template"]
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    assert service["spec"]["ports"][0]["port"] == 80
    assert autoscaler["apiVersion"] == "autoscaling/v2"
    assert autoscaler["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": name,
    }
    assert autoscaler["spec"]["minReplicas"] >= 2

    (container,) = pod["spec"]["containers"]
    env = {item["name"]: item for item in container["env"]}
    assert env["MENTORBUS_SERVICE"]["value"] == name
    assert env["MENTORBUS_DATABASE_URL"]["value"].endswith(f"/mentorbus_{name}")
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True


@pytest.mark.parametrize("name", APP_SERVICES)
def test_deployment_probes_hit_health_endpoints(name: str) -> None:
    (container,) = _find("Deployment", name)["spec"]["template"]["spec"]["containers"]
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": 8000}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": 8000}
