"""Every Kafka client of the platform, configured in one place from the environment.

Why one place: the consumer, the dead-letter producer, `events produce` and the admin client
that creates topics must reach the same brokers the same way. In production the brokers
require SASL/SCRAM over TLS, and a client built without those settings does not say so: it
reconnects over and over, and a consumer just sees no messages. So every client is made here
(`producer`, `consumer`, `admin`), from `KafkaSettings.client_config`, and the first thing
each command does, `ensure_topics`, fails within CONNECT_TIMEOUT_S with the reason when no
broker accepts the connection.

Security settings (librdkafka properties), all optional; PLAINTEXT when none is set:

    VALUEVERSE_KAFKA_SECURITY_PROTOCOL  security.protocol  PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL
    VALUEVERSE_KAFKA_SASL_MECHANISM     sasl.mechanism     PLAIN, SCRAM-SHA-256, SCRAM-SHA-512
    VALUEVERSE_KAFKA_SASL_USERNAME      sasl.username
    VALUEVERSE_KAFKA_SASL_PASSWORD      sasl.password
    VALUEVERSE_KAFKA_SSL_CA_LOCATION    ssl.ca.location    CA certificate file or folder (PEM)

The password goes to librdkafka and nowhere else: it is in no repr, log line or message.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from ingestion.warehouse import ConfigError, ValueVerseError, env_int

log = logging.getLogger("valueverse.ingest")
# librdkafka's own log lines go through this logger (JSON, not raw stderr lines)
kafka_log = logging.getLogger("valueverse.kafka")

CONNECT_TIMEOUT_S = 10
SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
_PROTOCOL = "VALUEVERSE_KAFKA_SECURITY_PROTOCOL"
_MECHANISM = "VALUEVERSE_KAFKA_SASL_MECHANISM"
_USERNAME = "VALUEVERSE_KAFKA_SASL_USERNAME"
# bandit: the name of the variable that holds the password, not a password
_PASSWORD = "VALUEVERSE_KAFKA_SASL_PASSWORD"  # nosec B105
_CA_LOCATION = "VALUEVERSE_KAFKA_SSL_CA_LOCATION"


class KafkaUnavailable(ValueVerseError):
    """No broker accepted a connection in time; the message says why, when librdkafka said."""


@dataclass(frozen=True)
class KafkaSecurity:
    """How clients authenticate to the brokers and check them (see the module's docstring)."""

    protocol: str = "PLAINTEXT"
    mechanism: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_location: str | None = None

    @classmethod
    def from_env(cls) -> KafkaSecurity:
        """The VALUEVERSE_KAFKA_* security settings; ConfigError naming the variable when they
        cannot work together (never showing the password)."""
        protocol = _choice(_PROTOCOL, SECURITY_PROTOCOLS) or "PLAINTEXT"
        mechanism = _choice(_MECHANISM, SASL_MECHANISMS)
        username, password = _env(_USERNAME), _env(_PASSWORD)
        ca_location = _env(_CA_LOCATION)
        if protocol.startswith("SASL_") or mechanism or username or password:
            why = "SASL needs a mechanism, a username and a password"
            for name, value in ((_MECHANISM, mechanism), (_USERNAME, username),
                                (_PASSWORD, password)):  # fmt: skip
                if not value:
                    raise ConfigError(f"{name} is not set ({why}; {_PROTOCOL}={protocol})")
            if not protocol.startswith("SASL_"):
                raise ConfigError(
                    f"{_PROTOCOL} must be SASL_SSL (or SASL_PLAINTEXT) when {_MECHANISM} and"
                    f" the SASL username and password are set, got {protocol}"
                )
        if ca_location:
            if protocol not in ("SSL", "SASL_SSL"):
                raise ConfigError(f"{_CA_LOCATION} is set but {_PROTOCOL}={protocol} uses no TLS")
            if not Path(ca_location).exists():
                raise ConfigError(f"{_CA_LOCATION}: no such file or folder {ca_location!r}")
        return cls(protocol, mechanism, username, password, ca_location)

    def config(self) -> dict[str, str]:
        """The librdkafka properties."""
        conf = {"security.protocol": self.protocol}
        if self.mechanism:
            conf["sasl.mechanism"] = self.mechanism
        if self.username:
            conf["sasl.username"] = self.username
        if self.password:
            conf["sasl.password"] = self.password
        if self.ca_location:
            conf["ssl.ca.location"] = self.ca_location
        return conf

    def summary(self) -> str:
        """For messages: the protocol, mechanism and user (never the password)."""
        parts = [self.protocol]
        if self.mechanism:
            parts.append(f"{self.mechanism} as {self.username}")
        if self.ca_location:
            parts.append(f"CA {self.ca_location}")
        return ", ".join(parts)


@dataclass(frozen=True)
class KafkaSettings:
    """Where to read and write, and how; from the environment (see .env.example)."""

    bootstrap: str
    topic: str = "usage-events"
    dlq_topic: str = "usage-events-dlq"
    group: str = "valueverse-ingest"
    partitions: int = 6  # for topics this service creates itself
    extra: dict[str, Any] = field(default_factory=dict)  # librdkafka overrides (the consumer's)
    security: KafkaSecurity = field(default_factory=KafkaSecurity)

    @classmethod
    def from_env(cls, bootstrap: str | None = None, **overrides: Any) -> KafkaSettings:
        servers = bootstrap or os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "")
        if not servers:
            raise ConfigError("KAFKA_BOOTSTRAP_SERVERS is not set (host:port of the brokers)")
        extra: dict[str, Any] = {}
        for key in ("session.timeout.ms", "heartbeat.interval.ms"):
            env = "VALUEVERSE_KAFKA_" + key.replace(".", "_").upper()
            if os.environ.get(env):
                extra[key] = env_int(env, 0, minimum=1)
        values: dict[str, Any] = {
            "bootstrap": servers,
            "topic": os.environ.get("VALUEVERSE_TOPIC") or "usage-events",
            "dlq_topic": os.environ.get("VALUEVERSE_DLQ_TOPIC") or "usage-events-dlq",
            "group": os.environ.get("VALUEVERSE_GROUP") or "valueverse-ingest",
            "partitions": env_int("VALUEVERSE_TOPIC_PARTITIONS", 6, minimum=1, maximum=10_000),
            "extra": extra,
            "security": KafkaSecurity.from_env(),
        }
        values.update(overrides)
        return cls(**values)

    def client_config(self, conf: dict[str, Any] | None = None) -> dict[str, Any]:
        """A client's librdkafka configuration: the brokers, the security settings, the log
        routing, then the client's own properties (`conf`)."""
        return {
            "bootstrap.servers": self.bootstrap,
            **self.security.config(),
            "logger": kafka_log,
            **(conf or {}),
        }


# The only places where the platform makes Kafka clients (tests/unit/test_kafka_clients.py
# checks): `conf` holds the client's own properties.
def producer(settings: KafkaSettings, conf: dict[str, Any] | None = None) -> Producer:
    return Producer(settings.client_config(conf))


def consumer(settings: KafkaSettings, conf: dict[str, Any] | None = None) -> Consumer:
    return Consumer(settings.client_config(conf))


def admin(settings: KafkaSettings, conf: dict[str, Any] | None = None) -> AdminClient:
    return AdminClient(settings.client_config(conf))


def ensure_topics(settings: KafkaSettings, topics: list[str]) -> None:
    """Create missing topics (`settings.partitions` partitions); existing ones are kept.

    The first call of every command: when no broker answers within CONNECT_TIMEOUT_S (down,
    or refusing this client's security settings), KafkaUnavailable says why.
    """
    errors: list[KafkaError] = []
    client = admin(settings, {"error_cb": errors.append})
    try:
        existing = client.list_topics(timeout=CONNECT_TIMEOUT_S).topics
    except KafkaException as exc:
        client.poll(0.5)  # serves the error callbacks: why no broker answered
        raise KafkaUnavailable(_unavailable(settings, exc, errors)) from None
    missing = [NewTopic(t, settings.partitions, 1) for t in topics if t not in existing]
    if not missing:
        return
    for topic, future in client.create_topics(missing, operation_timeout=10).items():
        try:
            future.result()
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
        log.info("created topic", extra={"topic": topic, "partitions": settings.partitions})


def _unavailable(settings: KafkaSettings, exc: KafkaException, errors: list[KafkaError]) -> str:
    refusals = (KafkaError._AUTHENTICATION, KafkaError._SSL)
    refused = [e for e in errors if e.code() in refusals]
    reason = (refused[0] if refused else exc.args[0]).str()
    message = (
        f"Kafka {settings.bootstrap}: no connection within {CONNECT_TIMEOUT_S} s"
        f" (security: {settings.security.summary()}): {reason}"
    )
    if refused:
        message += f"; check {_PROTOCOL} and the VALUEVERSE_KAFKA_SASL_* / _SSL_* settings"
    return message


def _env(name: str) -> str | None:
    return os.environ.get(name, "").strip() or None


def _choice(name: str, allowed: tuple[str, ...]) -> str | None:
    value = _env(name)
    if value is None:
        return None
    if value.upper() not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
    return value.upper()
