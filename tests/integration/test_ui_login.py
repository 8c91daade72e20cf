"""The login in front of Dagster's UI and the dashboards: the real Caddy with the project's
deploy/Caddyfile (what `make up` and docker-compose run), proxying to a stand-in service.

Dagster's UI had no login at all, so anyone who reached it could launch payment runs; the
dashboards showed revenue to anyone. Through the proxy, nothing reaches a service without the
right name and password, and the proxy listens on loopback unless told otherwise.
"""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.caddy_support import (
    CADDY,
    CADDYFILE,
    free_port,
    get,
    hash_password,
    running_caddy,
)

USER, PASSWORD = "finance", "a long passphrase for the test"

# `make test` installs Debian's caddy (CI too); a developer machine without it is told how.
pytestmark = pytest.mark.skipif(
    CADDY is None and not os.environ.get("CI"), reason="caddy missing: apt-get install caddy"
)


class _Service(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        body = f"service behind the proxy: {self.path}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def _env(ports: dict[str, int], upstream: int, password_hash: str) -> dict[str, str]:
    return {
        "VALUEVERSE_UI_USER": USER,
        "VALUEVERSE_UI_PASSWORD_HASH": password_hash,
        "DAGSTER_PORT": str(ports["dagster"]),
        "DASHBOARD_PORT": str(ports["dashboards"]),
        "DAGSTER_UPSTREAM": f"127.0.0.1:{upstream}",
        "DASHBOARD_UPSTREAM": f"127.0.0.1:{upstream}",
    }


@pytest.fixture(scope="module")
def proxy() -> Iterator[dict[str, int]]:
    service = http.server.HTTPServer(("127.0.0.1", 0), _Service)
    threading.Thread(target=service.serve_forever, daemon=True).start()
    ports = {"dagster": free_port(), "dashboards": free_port()}
    env = _env(ports, service.server_port, hash_password(PASSWORD))
    try:
        with running_caddy(env, ports["dashboards"]):
            yield ports
    finally:
        service.shutdown()


def _get(port: int, auth: tuple[str, str] | None) -> tuple[int, str]:
    return get(f"http://127.0.0.1:{port}/runs", auth)


@pytest.mark.parametrize("surface", ["dagster", "dashboards"])
def test_nothing_reaches_a_service_without_the_login(surface: str, proxy: dict[str, int]) -> None:
    port = proxy[surface]
    for auth in (None, (USER, "wrong"), ("someone", PASSWORD)):
        status, body = _get(port, auth)
        assert status == 401, (auth, status)
        assert "service behind the proxy" not in body
    status, body = _get(port, (USER, PASSWORD))
    assert (status, body) == (200, "service behind the proxy: /runs")


def test_the_proxy_listens_on_loopback_by_default() -> None:
    assert CADDY, "caddy is not installed"
    env = {
        "PATH": os.environ["PATH"],
        **_env({"dagster": 3000, "dashboards": 8501}, 3001, "$2a$14$x"),
    }
    adapted = subprocess.run(
        [CADDY, "adapt", "--config", str(CADDYFILE), "--adapter", "caddyfile"],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    servers = json.loads(adapted.stdout)["apps"]["http"]["servers"]
    listens = sorted(address for server in servers.values() for address in server["listen"])
    assert listens == ["127.0.0.1:3000", "127.0.0.1:8501"]
    routes = json.dumps(servers)
    assert routes.count('"authentication"') == 2  # a login on each surface
    assert Path(CADDYFILE).read_text().count("import login") == 2
    for server in servers.values():  # the login runs before anything answers, the report too
        assert server["routes"][0]["handle"][0]["handler"] == "authentication"
    assert "/quality-report/*" in routes
