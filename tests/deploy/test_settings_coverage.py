"""Every setting a service reads is set by docker-compose.yml and by the manifests in
deploy/, or is named below as left at its default on purpose, with the reason; and every
`MENTORBUS_*` name they set is a setting some service reads (a typo sets nothing)."""

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import AliasChoices
from pydantic_settings import BaseSettings

from services.feedback.settings import FeedbackSettings
from services.gateway.settings import GatewaySettings
from services.gateway.webhooks.settings import WebhookSettings
from services.matching.settings import MatchingSettings
from services.profiles.settings import ProfilesSettings
from services.sessions.settings import SessionsSettings

ROOT = Path(__file__).resolve().parents[2]
SETTINGS: dict[str, tuple[type[BaseSettings], ...]] = {
    "profiles": (ProfilesSettings,),
    "matching": (MatchingSettings,),
    "sessions": (SessionsSettings,),
    "feedback": (FeedbackSettings,),
    "gateway": (GatewaySettings, WebhookSettings),
}
# Read by the image's command (which app uvicorn serves), not by a settings class.
IMAGE_VARIABLES = {"MENTORBUS_SERVICE"}

_TUNING = "a tuning knob whose default suits production; set it to tune"
_KAFKA_TIMING = "Kafka client timing: the defaults suit Apache Kafka (the tests lower them)"
_TLS_FILES = "client certificates are per platform: mount them and set the path when used"
DEFAULTED: dict[str, str] = {
    "MENTORBUS_SERVICE_NAME": "fixed by each service's settings class",
    "MENTORBUS_DATABASE_POOL_SIZE": _TUNING,
    "MENTORBUS_KAFKA_TOPIC_PARTITIONS": "used only when a service creates a missing topic",
    "MENTORBUS_KAFKA_SESSION_TIMEOUT_MS": _KAFKA_TIMING,
    "MENTORBUS_KAFKA_HEARTBEAT_INTERVAL_MS": _KAFKA_TIMING,
    "MENTORBUS_KAFKA_REQUEST_TIMEOUT_MS": _KAFKA_TIMING,
    "MENTORBUS_KAFKA_FETCH_MAX_WAIT_MS": _KAFKA_TIMING,
    "MENTORBUS_KAFKA_DELIVERY_TIMEOUT_MS": _KAFKA_TIMING,
    "MENTORBUS_KAFKA_SSL_CERTFILE": _TLS_FILES,
    "MENTORBUS_KAFKA_SSL_KEYFILE": _TLS_FILES,
    "MENTORBUS_RELAY_BATCH_SIZE": _TUNING,
    "MENTORBUS_RELAY_IDLE_POLL_SECONDS": _TUNING,
    "MENTORBUS_MESSAGE_RETENTION_HOURS": _TUNING,
    "MENTORBUS_CONSUMER_MAX_ATTEMPTS": _TUNING,
    "MENTORBUS_PROJECTION_WAIT_SECONDS": _TUNING,
    "MENTORBUS_IDENTITY_TTL_SECONDS": "covers clock skew; pods share NTP time",
    # gateway
    "MENTORBUS_UPSTREAM_TIMEOUT_SECONDS": _TUNING,
    "MENTORBUS_UPSTREAM_CONNECT_TIMEOUT_SECONDS": _TUNING,
    "MENTORBUS_UPSTREAM_MAX_CONNECTIONS": _TUNING,
    "MENTORBUS_MAX_BODY_BYTES": "request size budgets: the defaults are the documented limits",
    "MENTORBUS_MAX_BODY_BYTES_BULK": "request size budgets: the defaults are the documented limits",
    "MENTORBUS_MAX_BODY_BYTES_SCIM": "advertised to identity providers: keep the documented one",
    "MENTORBUS_MAX_BODY_BYTES_RUNS": "request size budgets: the defaults are the documented limits",
    "MENTORBUS_RATE_LIMIT_WINDOW_SECONDS": "rate limits: the documented defaults (README)",
    "MENTORBUS_RATE_LIMIT_REQUESTS": "rate limits: the documented defaults (README)",
    "MENTORBUS_RATE_LIMIT_BULK": "rate limits: the documented defaults (README)",
    "MENTORBUS_RATE_LIMIT_SCIM": "rate limits: the documented defaults (README)",
    "MENTORBUS_RATE_LIMIT_RUNS": "rate limits: the documented defaults (README)",
    "MENTORBUS_IDEMPOTENCY_TTL_HOURS": "the documented 24 h replay window",
    "MENTORBUS_API_KEY_CACHE_SECONDS": _TUNING,
    "MENTORBUS_API_KEY_CACHE_SIZE": _TUNING,
    "MENTORBUS_JWT_ALGORITHMS": "RS256 and ES256 cover the identity providers we know",
    "MENTORBUS_JWT_LEEWAY_SECONDS": _TUNING,
    "MENTORBUS_WEBHOOK_ALLOW_PRIVATE_TARGETS": "must stay false outside development (SSRF)",
    "MENTORBUS_WEBHOOK_ALLOW_HTTP": "must stay false outside development",
    "MENTORBUS_WEBHOOK_ROTATION_GRACE_SECONDS": _TUNING,
    "MENTORBUS_WEBHOOK_CONNECT_TIMEOUT_SECONDS": _TUNING,
    "MENTORBUS_WEBHOOK_TIMEOUT_SECONDS": _TUNING,
    "MENTORBUS_WEBHOOK_MAX_RESPONSE_BYTES": _TUNING,
    "MENTORBUS_WEBHOOK_RETRY_BASE_SECONDS": "retries spread over a day, as documented",
    "MENTORBUS_WEBHOOK_RETRY_MAX_DELAY_SECONDS": "retries spread over a day, as documented",
    "MENTORBUS_WEBHOOK_MAX_ATTEMPTS": "retries spread over a day, as documented",
    "MENTORBUS_WEBHOOK_LOG_RETENTION_DAYS": _TUNING,
    "MENTORBUS_WEBHOOK_DISABLE_AFTER_FAILURES": "retries spread over a day, as documented",
    "MENTORBUS_WEBHOOK_DISABLE_AFTER_SECONDS": "retries spread over a day, as documented",
    "MENTORBUS_WEBHOOK_CONCURRENCY": _TUNING,
    "MENTORBUS_WEBHOOK_LEASE_SECONDS": _TUNING,
    "MENTORBUS_WEBHOOK_IDLE_POLL_SECONDS": _TUNING,
    # matching, sessions, feedback: product rules and worker timing
    "MENTORBUS_MATCHING_RUN_POLL_SECONDS": _TUNING,
    "MENTORBUS_MATCHING_RUN_STALE_SECONDS": _TUNING,
    "MENTORBUS_MATCHING_MAX_OPEN_RUNS_PER_PROGRAM": "a product rule, documented in the README",
    "MENTORBUS_SLOT_MAX_RANGE_DAYS": "a product rule, documented in the README",
    "MENTORBUS_SERIES_HORIZON_DAYS": "a product rule, documented in the README",
    "MENTORBUS_SERIES_MAX_OCCURRENCES": "a product rule, documented in the README",
    "MENTORBUS_REMINDER_LEAD_MINUTES": "a product rule (24 h and 1 h before), in the README",
    "MENTORBUS_REMINDER_POLL_SECONDS": _TUNING,
    "MENTORBUS_REMINDER_BATCH_SIZE": _TUNING,
    "MENTORBUS_FEEDBACK_REQUEST_EXPIRY_HOURS": "a product rule, documented in the README",
    "MENTORBUS_FEEDBACK_EDIT_WINDOW_HOURS": "a product rule, documented in the README",
    "MENTORBUS_AT_RISK_NO_SESSION_DAYS": "a product rule, documented in the README",
    "MENTORBUS_AT_RISK_LOW_CHECKIN_RATING": "a product rule, documented in the README",
    "MENTORBUS_AT_RISK_LOW_FEEDBACK_RATING": "a product rule, documented in the README",
    "MENTORBUS_AT_RISK_AGREEMENT_UNSIGNED_DAYS": "a product rule, documented in the README",
}
# Set in the manifests by the optional `mentorbus-kafka` Secret (envFrom), whose keys the
# repository cannot see: the platform creates it when its Kafka needs SASL.
FROM_OPTIONAL_KAFKA_SECRET = {"MENTORBUS_KAFKA_SASL_USERNAME", "MENTORBUS_KAFKA_SASL_PASSWORD"}


def _env_names(settings: type[BaseSettings]) -> set[str]:
    prefix = str(settings.model_config.get("env_prefix", ""))
    names: set[str] = set()
    for name, field in settings.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names.update(str(choice) for choice in alias.choices)
        else:
            names.add(f"{prefix}{name}".upper())
    return names


def read_by(service: str) -> set[str]:
    """The `MENTORBUS_*` variables a service's settings classes read."""
    return set().union(*(_env_names(cls) for cls in SETTINGS[service]))


def compose_env(service: str) -> set[str]:
    """The variables docker-compose.yml gives a service (anchors merged)."""
    compose: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return set(compose["services"][service]["environment"])


def _resources() -> list[dict[str, Any]]:
    return [
        doc
        for path in sorted((ROOT / "deploy").glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if doc
    ]


def _container_env(container: dict[str, Any], config_maps: dict[str, set[str]]) -> set[str]:
    names = {item["name"] for item in container.get("env", [])}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            names |= config_maps[source["configMapRef"]["name"]]
    return names


def manifest_env(service: str) -> tuple[set[str], set[str]]:
    """The variables the service's Deployment and its migration Job give their containers."""
    resources = _resources()
    config_maps = {
        r["metadata"]["name"]: set(r["data"]) for r in resources if r["kind"] == "ConfigMap"
    }

    def env_of(kind: str, name: str) -> set[str]:
        (resource,) = [r for r in resources if r["kind"] == kind and r["metadata"]["name"] == name]
        spec = resource["spec"]["template"]["spec"]
        (container,) = spec["containers"]
        return _container_env(container, config_maps)

    return env_of("Deployment", service), env_of("Job", f"{service}-migrate")


def test_defaulted_names_are_real_settings() -> None:
    every = set().union(*(read_by(service) for service in SETTINGS))
    assert set(DEFAULTED) <= every, set(DEFAULTED) - every


@pytest.mark.parametrize("service", SETTINGS)
def test_compose_sets_every_setting_or_says_why_not(service: str) -> None:
    missing = read_by(service) - compose_env(service) - set(DEFAULTED)
    assert not missing, f"{service}: set in docker-compose.yml or list in DEFAULTED: {missing}"


@pytest.mark.parametrize("service", SETTINGS)
def test_manifests_set_every_setting_or_say_why_not(service: str) -> None:
    deployment, _ = manifest_env(service)
    missing = read_by(service) - deployment - set(DEFAULTED) - FROM_OPTIONAL_KAFKA_SECRET
    assert not missing, f"{service}: set in deploy/ or list in DEFAULTED: {missing}"


@pytest.mark.parametrize("service", SETTINGS)
def test_nothing_set_is_a_typo(service: str) -> None:
    deployment, job = manifest_env(service)
    known = read_by(service) | IMAGE_VARIABLES
    # The shared ConfigMap reaches every pod: a name in it need only be read by some service.
    every = set().union(*(read_by(other) for other in SETTINGS)) | IMAGE_VARIABLES
    for where, names, reads in (
        ("compose", compose_env(service), known),
        ("deploy", deployment | job, every),
    ):
        unknown = {n for n in names if n.startswith("MENTORBUS_")} - reads
        assert not unknown, f"{service} ({where}) sets what it never reads: {unknown}"


@pytest.mark.parametrize("service", SETTINGS)
def test_pods_leave_migrations_to_the_job(service: str) -> None:
    deployment, job = manifest_env(service)
    assert "MENTORBUS_MIGRATE_ON_START" in deployment
    # The Job migrates the same database the pods use, with the same production checks.
    assert {"MENTORBUS_DATABASE_URL", "MENTORBUS_ENVIRONMENT"} <= job
