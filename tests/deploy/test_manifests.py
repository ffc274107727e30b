"""Offline checks of docker-compose.yml and the Kubernetes manifests in deploy/."""

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.gateway.settings import GatewaySettings

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


def test_compose_requires_its_secrets() -> None:
    text = COMPOSE_FILE.read_text()
    # No default password: compose refuses to start when POSTGRES_PASSWORD is unset.
    assert "${POSTGRES_PASSWORD:-" not in text and "${POSTGRES_PASSWORD:?" in text
    for name in APP_SERVICES:
        secret = _compose()["services"][name]["environment"]["MENTORBUS_IDENTITY_SECRET"]
        assert secret.startswith("${MENTORBUS_IDENTITY_SECRET:?")


def test_compose_keeps_everything_but_the_gateway_internal() -> None:
    compose = _compose()
    assert compose["networks"]["internal"]["internal"] is True
    for name, service in compose["services"].items():
        expected = ["edge", "internal"] if name == "gateway" else ["internal"]
        assert sorted(service["networks"]) == expected, name


@pytest.mark.parametrize("name", APP_SERVICES)
def test_deployments_read_the_identity_secret_from_the_secret(name: str) -> None:
    (container,) = _find("Deployment", name)["spec"]["template"]["spec"]["containers"]
    env = {item["name"]: item for item in container["env"]}
    assert env["MENTORBUS_IDENTITY_SECRET"]["valueFrom"]["secretKeyRef"] == {
        "name": "mentorbus-secrets",
        "key": "MENTORBUS_IDENTITY_SECRET",
    }


def test_network_policies_admit_only_the_gateway_from_outside() -> None:
    gateway = _find("NetworkPolicy", "gateway-ingress")
    assert gateway["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/name"] == "gateway"
    public = [rule for rule in gateway["spec"]["ingress"] if "from" not in rule]
    assert public == [{"ports": [{"protocol": "TCP", "port": 8000}]}]
    services = _find("NetworkPolicy", "services-from-gateway-only")
    (selected,) = services["spec"]["podSelector"]["matchExpressions"]
    assert sorted(selected["values"]) == sorted(set(APP_SERVICES) - {"gateway"})
    for rule in services["spec"]["ingress"]:
        assert rule["from"], "every service rule names its sources"
    from_gateway = services["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"]
    assert from_gateway["app.kubernetes.io/name"] == "gateway"


def test_gateway_metrics_are_on_the_operator_port() -> None:
    pod = _find("Deployment", "gateway")["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    env = {item["name"]: item for item in container["env"]}
    assert env["MENTORBUS_METRICS_PORT"]["value"] == "9100"
    assert pod["metadata"]["annotations"]["prometheus.io/port"] == "9100"


def test_production_refuses_the_shipped_placeholders() -> None:
    secret = _find("Secret", "mentorbus-secrets")["stringData"]
    strong = "9f2c" + "a1b7e3d05c68f4" * 4
    with pytest.raises(ValueError, match="ADMIN_TOKEN"):
        GatewaySettings(
            environment="production", admin_token=secret["MENTORBUS_ADMIN_TOKEN"],
            identity_secret=strong,
        )  # fmt: skip
    with pytest.raises(ValueError, match="IDENTITY_SECRET"):
        GatewaySettings(
            environment="production", admin_token=strong,
            identity_secret=secret["MENTORBUS_IDENTITY_SECRET"],
        )  # fmt: skip
    with pytest.raises(ValueError, match="ADMIN_TOKEN"):
        GatewaySettings(environment="production", admin_token="a" * 64, identity_secret=strong)
    GatewaySettings(environment="production", admin_token=strong[::-1], identity_secret=strong)


@pytest.mark.parametrize("name", APP_SERVICES)
def test_pods_are_locked_down_limited_and_kept_through_drains(name: str) -> None:
    budget = _find("PodDisruptionBudget", name)
    pod = _find("Deployment", name)["spec"]["template"]
    assert budget["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    assert budget["spec"]["minAvailable"] == 1  # below the autoscaler's minimum of 2
    job_pod = _find("Job", f"{name}-migrate")["spec"]["template"]
    for spec in (pod["spec"], job_pod["spec"]):
        assert spec["securityContext"]["runAsNonRoot"] is True
        (container,) = spec["containers"]
        assert set(container["resources"]) == {"requests", "limits"}
        assert container["securityContext"] == {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        }
        # The read-only root leaves /tmp writable for what needs scratch space.
        assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    (migrate,) = job_pod["spec"]["containers"]
    assert migrate["command"] == ["python", "-m", "shared.migrate", name]


def test_pods_migrate_only_through_the_jobs() -> None:
    config = _find("ConfigMap", "mentorbus-config")["data"]
    assert config["MENTORBUS_MIGRATE_ON_START"] == "false"
    assert _compose()["x-service-env"]["MENTORBUS_MIGRATE_ON_START"] == "true"
