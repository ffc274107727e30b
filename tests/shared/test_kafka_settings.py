"""Kafka security settings reach every client, and the deployment files show where they go."""

from pathlib import Path

import yaml
from kafka.errors import InvalidSessionTimeoutError, KafkaConnectionError

from shared.kafka import client_security, fatal_broker_error
from shared.settings import ServiceSettings

ROOT = Path(__file__).resolve().parents[2]
SECURITY_SETTINGS = (
    "MENTORBUS_KAFKA_SECURITY_PROTOCOL",
    "MENTORBUS_KAFKA_SASL_MECHANISM",
    "MENTORBUS_KAFKA_SASL_USERNAME",
    "MENTORBUS_KAFKA_SASL_PASSWORD",
    "MENTORBUS_KAFKA_SSL_CAFILE",
)


def test_sasl_and_tls_settings_pass_through_to_the_client() -> None:
    plain = client_security(ServiceSettings())
    assert plain == {"security_protocol": "PLAINTEXT"}
    secured = client_security(
        ServiceSettings(
            kafka_security_protocol="SASL_SSL",
            kafka_sasl_mechanism="SCRAM-SHA-512",
            kafka_sasl_username="mentorbus",
            kafka_sasl_password="s3cret",
            kafka_ssl_cafile="/etc/kafka/ca.pem",
        )
    )
    assert secured == {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "mentorbus",
        "sasl_plain_password": "s3cret",
        "ssl_cafile": "/etc/kafka/ca.pem",
    }


def test_only_refusals_that_retrying_cannot_fix_are_fatal() -> None:
    hint = fatal_broker_error(InvalidSessionTimeoutError())
    assert hint and "MENTORBUS_KAFKA_SESSION_TIMEOUT_MS" in hint
    assert fatal_broker_error(KafkaConnectionError()) is None


def test_compose_and_manifests_show_where_kafka_security_goes() -> None:
    compose = (ROOT / "docker-compose.yml").read_text()
    for name in SECURITY_SETTINGS:
        assert f"{name}:" in compose
    config = next(
        doc
        for doc in yaml.safe_load_all((ROOT / "deploy/config.yaml").read_text())
        if doc and doc["kind"] == "ConfigMap"
    )
    assert "MENTORBUS_KAFKA_SECURITY_PROTOCOL" in config["data"]
    for service in ("profiles", "matching", "sessions", "feedback", "gateway"):
        assert "name: mentorbus-kafka" in (ROOT / f"deploy/{service}.yaml").read_text()
