"""The real Caddy with the project's deploy/Caddyfile, for the tests of the login proxy
(test_ui_login) and of the report it serves (tests/e2e/test_quality_report_browser.py).

The password is hashed by `caddy hash-password` through stdin, as `make up` does, so no test
writes a password or a hash to a file or a command line.
"""

from __future__ import annotations

import base64
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

from tests.conftest import ROOT

CADDYFILE = ROOT / "deploy" / "Caddyfile"
CADDY = shutil.which("caddy")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def hash_password(password: str) -> str:
    assert CADDY, "caddy is not installed"
    return subprocess.run([CADDY, "hash-password"], input=password + "\n", capture_output=True,
                          text=True, check=True).stdout.strip()  # fmt: skip


@contextmanager
def running_caddy(env: dict[str, str], port: int) -> Iterator[None]:
    """`caddy run` on the Caddyfile with exactly `env` (plus PATH and HOME), until `port`
    accepts connections; stopped on exit."""
    assert CADDY, "caddy is not installed"
    full = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/tmp"), **env}
    proc = subprocess.Popen(
        [CADDY, "run", "--config", str(CADDYFILE), "--adapter", "caddyfile"],
        env=full, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                assert time.monotonic() < deadline, "caddy did not start listening"
                time.sleep(0.1)
        yield
    finally:
        proc.terminate()
        proc.wait(10)


def get(url: str, auth: tuple[str, str] | None) -> tuple[int, str]:
    """Status and body of a GET, with HTTP basic credentials when given."""
    request = urllib.request.Request(url)
    if auth:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")
