"""What docker-compose.yml and .env.example promise about exposure and secrets (no Docker
daemon here: the files themselves are checked; tests/integration/test_ui_login.py runs the
login proxy for real).

Before: PostgreSQL, Kafka and Dagster's UI were published on every interface, the UI without
a login, and `.env.example` shipped `change-me` passwords that compose accepted.
"""

from __future__ import annotations

import re

import yaml

from tests.conftest import ROOT

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
ENV_EXAMPLE = (ROOT / ".env.example").read_text()


def test_every_published_port_binds_loopback() -> None:
    published = {name: service.get("ports", []) for name, service in SERVICES.items()}
    assert published["timescaledb"] and published["kafka"] and published["login"]
    for name, ports in published.items():
        for port in ports:
            assert str(port).startswith("127.0.0.1:"), (name, port)


def test_people_reach_dagster_and_the_dashboards_only_through_the_login() -> None:
    assert "ports" not in SERVICES["dagster"] and "ports" not in SERVICES["dashboards"]
    login = SERVICES["login"]
    assert "./deploy/Caddyfile:/etc/caddy/Caddyfile:ro" in login["volumes"]
    env = login["environment"]
    assert env["DAGSTER_UPSTREAM"] == "dagster:3000"
    assert env["DASHBOARD_UPSTREAM"] == "dashboards:8501"
    for required in ("VALUEVERSE_UI_USER", "VALUEVERSE_UI_PASSWORD_HASH"):
        assert ":?" in env[required], required  # compose refuses to start without it


def test_the_dashboards_never_read_with_the_owners_url() -> None:
    url = SERVICES["dashboards"]["environment"]["VALUEVERSE_WAREHOUSE"]
    assert url.startswith("${VALUEVERSE_DASHBOARD_WAREHOUSE:?")
    assert "POSTGRES_PASSWORD" not in url


def test_no_password_has_a_default() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    assert "${POSTGRES_PASSWORD:?" in text and "change-me" not in text
    for name in ("POSTGRES_PASSWORD", "VALUEVERSE_UI_PASSWORD", "VALUEVERSE_UI_PASSWORD_HASH",
                 "STRIPE_API_KEY", "VALUEVERSE_ANALYST_PASSWORD"):  # fmt: skip
        assert re.search(rf"^{name}=$", ENV_EXAMPLE, re.M), name
    assert "change-me" not in ENV_EXAMPLE
