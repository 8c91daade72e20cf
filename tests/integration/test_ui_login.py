"""The login in front of Dagster's UI and the dashboards: the real Caddy with the project's
deploy/Caddyfile (what `make up` and docker-compose run), proxying to a stand-in service.

Dagster's UI had no login at all, so anyone who reached it could launch payment runs; the
dashboards showed revenue to anyone. Through the proxy, nothing reaches a service without the
right name and password, and the proxy listens on loopback unless told otherwise.
"""

from __future__ import annotations

import base64
import http.server
import json
import os
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT

CADDYFILE = ROOT / "deploy" / "Caddyfile"
CADDY = shutil.which("caddy")
USER, PASSWORD = "finance", "a long passphrase for the test"

# `make test` installs Debian's caddy (CI too); a developer machine without it is told how.
pytestmark = pytest.mark.skipif(
    CADDY is None and not os.environ.get("CI"), reason="caddy missing: apt-get install caddy"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/tmp"),
        "VALUEVERSE_UI_USER": USER,
        "VALUEVERSE_UI_PASSWORD_HASH": password_hash,
        "DAGSTER_PORT": str(ports["dagster"]),
        "DASHBOARD_PORT": str(ports["dashboards"]),
        "DAGSTER_UPSTREAM": f"127.0.0.1:{upstream}",
        "DASHBOARD_UPSTREAM": f"127.0.0.1:{upstream}",
    }


@pytest.fixture(scope="module")
def proxy() -> Iterator[dict[str, int]]:
    assert CADDY, "caddy is not installed"
    service = http.server.HTTPServer(("127.0.0.1", 0), _Service)
    threading.Thread(target=service.serve_forever, daemon=True).start()
    hashed = subprocess.run([CADDY, "hash-password"], input=PASSWORD + "\n", capture_output=True,
                            text=True, check=True).stdout.strip()  # fmt: skip
    ports = {"dagster": _free_port(), "dashboards": _free_port()}
    env = _env(ports, service.server_port, hashed)
    proc = subprocess.Popen(
        [CADDY, "run", "--config", str(CADDYFILE), "--adapter", "caddyfile"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", ports["dashboards"]), 0.2).close()
                break
            except OSError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                time.sleep(0.1)
        yield ports
    finally:
        proc.terminate()
        proc.wait(10)
        service.shutdown()


def _get(port: int, auth: tuple[str, str] | None) -> tuple[int, str]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/runs")
    if auth:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


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
    env = _env({"dagster": 3000, "dashboards": 8501}, 3001, "$2a$14$x")
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
