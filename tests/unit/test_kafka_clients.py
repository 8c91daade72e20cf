"""Kafka security settings from the environment (ingestion/landing/kafka_clients.py).

What a client built from them does against a real broker (and that the password stays out of
every message) is tested in tests/integration/test_kafka_ingest.py; here: which variables map
to which librdkafka properties, which combinations are refused and how, and that no client
of the platform is built anywhere else.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ingestion.landing.kafka_clients import KafkaSettings
from ingestion.warehouse import ConfigError
from tests.conftest import ROOT

PASSWORD = "pw-Zq8-never-shown"
PREFIX = "VALUEVERSE_KAFKA_"
SECURITY_VARIABLES = ["SECURITY_PROTOCOL", "SASL_MECHANISM", "SASL_USERNAME", "SASL_PASSWORD",
                      "SSL_CA_LOCATION"]  # fmt: skip


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch):
    """Set VALUEVERSE_KAFKA_<name> variables (the others unset) and the brokers."""
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "broker-1:9093,broker-2:9093")
    for name in SECURITY_VARIABLES:
        monkeypatch.delenv(PREFIX + name, raising=False)

    def set_env(**values: str) -> None:
        for name, value in values.items():
            monkeypatch.setenv(PREFIX + name, value)

    return set_env


def test_the_variables_map_to_librdkafka_properties(env, tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    env(SECURITY_PROTOCOL="sasl_ssl", SASL_MECHANISM="SCRAM-SHA-512", SASL_USERNAME="ingest",
        SASL_PASSWORD=PASSWORD, SSL_CA_LOCATION=str(ca))  # fmt: skip
    config = KafkaSettings.from_env().client_config({"group.id": "g"})
    assert {k: v for k, v in config.items() if k != "logger"} == {
        "bootstrap.servers": "broker-1:9093,broker-2:9093",
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "ingest",
        "sasl.password": PASSWORD,
        "ssl.ca.location": str(ca),
        "group.id": "g",
    }


def test_unset_means_plaintext_as_before(env) -> None:
    config = KafkaSettings.from_env().client_config()
    assert config["security.protocol"] == "PLAINTEXT"
    assert not [key for key in config if key.startswith(("sasl.", "ssl."))]


def test_the_password_is_in_no_repr_or_summary(env) -> None:
    env(SECURITY_PROTOCOL="SASL_SSL", SASL_MECHANISM="PLAIN", SASL_USERNAME="ingest",
        SASL_PASSWORD=PASSWORD)  # fmt: skip
    settings = KafkaSettings.from_env()
    shown = [repr(settings), str(settings), repr(settings.security), settings.security.summary()]
    assert all(PASSWORD not in text for text in shown), shown
    assert settings.security.summary() == "SASL_SSL, PLAIN as ingest"


@pytest.mark.parametrize(
    ("values", "named"),
    [
        pytest.param(dict(SECURITY_PROTOCOL="SASL_SSL", SASL_MECHANISM="SCRAM-SHA-256"),
                     "SASL_USERNAME", id="mechanism-without-username"),
        pytest.param(dict(SECURITY_PROTOCOL="SASL_SSL"), "SASL_MECHANISM",
                     id="sasl-without-mechanism"),
        pytest.param(dict(SECURITY_PROTOCOL="SASL_SSL", SASL_MECHANISM="PLAIN", SASL_USERNAME="u"),
                     "SASL_PASSWORD", id="username-without-password"),
        pytest.param(dict(SASL_PASSWORD=PASSWORD), "SASL_MECHANISM", id="password-alone"),
        pytest.param(dict(SASL_MECHANISM="PLAIN", SASL_USERNAME="u", SASL_PASSWORD=PASSWORD),
                     "SECURITY_PROTOCOL", id="sasl-over-plaintext-protocol"),
        pytest.param(dict(SECURITY_PROTOCOL="TLS"), "SECURITY_PROTOCOL", id="unknown-protocol"),
        pytest.param(dict(SECURITY_PROTOCOL="SASL_SSL", SASL_MECHANISM="GSSAPI", SASL_USERNAME="u",
                          SASL_PASSWORD=PASSWORD), "SASL_MECHANISM", id="unsupported-mechanism"),
        pytest.param(dict(SECURITY_PROTOCOL="SSL", SSL_CA_LOCATION="/no/such/ca.pem"),
                     "SSL_CA_LOCATION", id="missing-ca-file"),
        pytest.param(dict(SSL_CA_LOCATION="/"), "SSL_CA_LOCATION", id="ca-without-tls"),
    ],
)  # fmt: skip
def test_combinations_that_cannot_work_are_config_errors_naming_the_variable(
    env, values: dict[str, str], named: str
) -> None:
    env(**values)
    with pytest.raises(ConfigError) as caught:
        KafkaSettings.from_env()
    message = str(caught.value)
    assert message.startswith(PREFIX + named), message
    assert PASSWORD not in message


def test_no_kafka_client_is_built_outside_kafka_clients() -> None:
    """Every producer, consumer and admin client goes through kafka_clients, so none can be
    left without the security settings."""
    built = re.compile(r"\b(?:Producer|Consumer|AdminClient)\(")
    places = [
        f"{path.relative_to(ROOT)}:{number}"
        for package in ("ingestion", "dagster_project", "dashboards")
        for path in sorted((ROOT / package).rglob("*.py"))
        if path.name != "kafka_clients.py"
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if built.search(line)
    ]
    assert places == []
