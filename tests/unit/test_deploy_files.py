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


def test_each_service_logs_in_as_its_own_role() -> None:
    """Before, every service connected as the administrator (POSTGRES_USER), who can disable
    the store's triggers or drop it (tests/integration/test_service_roles.py shows what each
    role may do)."""
    roles = {
        ("ingest", "VALUEVERSE_WAREHOUSE"): "valueverse_loader",
        ("dagster", "VALUEVERSE_WAREHOUSE"): "valueverse_billing",
        ("dagster", "DAGSTER_PG_URL"): "valueverse_dagster",
        ("dashboards", "VALUEVERSE_WAREHOUSE"): "valueverse_reader",
    }
    for (service, variable), role in roles.items():
        url = SERVICES[service]["environment"][variable]
        assert url.startswith(f"postgresql://{role}:"), (service, variable)
        assert "POSTGRES_USER" not in url and "POSTGRES_PASSWORD" not in url
        assert SERVICES[service]["depends_on"]["roles"] == {
            "condition": "service_completed_successfully"
        }
    assert SERVICES["roles"]["command"] == ["roles", "apply"]
    assert "POSTGRES_PASSWORD" in SERVICES["roles"]["environment"]["VALUEVERSE_WAREHOUSE"]


def test_no_password_has_a_default() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    assert "${POSTGRES_PASSWORD:?" in text and "change-me" not in text
    for name in ("POSTGRES_PASSWORD", "VALUEVERSE_UI_PASSWORD", "VALUEVERSE_UI_PASSWORD_HASH",
                 "STRIPE_API_KEY", "VALUEVERSE_ANALYST_PASSWORD", "VALUEVERSE_LOADER_PASSWORD",
                 "VALUEVERSE_BILLING_PASSWORD", "VALUEVERSE_READER_PASSWORD",
                 "VALUEVERSE_DAGSTER_PASSWORD"):  # fmt: skip
        assert re.search(rf"^{name}=$", ENV_EXAMPLE, re.M), name
    assert "change-me" not in ENV_EXAMPLE
