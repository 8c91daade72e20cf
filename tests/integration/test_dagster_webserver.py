"""`make up` smoke test with real processes: the launcher (`python -m dagster_project.serve`,
what `make up` runs) starts dagster-webserver and dagster-daemon on a free port with a
temporary DAGSTER_HOME; the GraphQL API must list the dbt marts among the asset nodes, and a
SIGTERM to the launcher must stop everything cleanly.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from ingestion.demo.broker import free_port
from tests.conftest import ROOT, query, scratch_pg

ASSET_QUERY = "{ assetNodes { assetKey { path } } }"


def _graphql(port: int, query: str) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def _asset_keys(port: int) -> set[str]:
    nodes = _graphql(port, ASSET_QUERY)["data"]["assetNodes"]
    return {"/".join(node["assetKey"]["path"]) for node in nodes}


@pytest.mark.parametrize("storage", ["sqlite", "postgres"])
def test_make_up_serves_the_asset_graph_and_stops_cleanly(tmp_path: Path, storage: str) -> None:
    if storage == "postgres":
        with scratch_pg() as url:
            _serve_and_stop(tmp_path, url)
            runs_table = query(url, "SELECT count(*) FROM information_schema.tables"
                               " WHERE table_name = 'runs'")[0][0]  # fmt: skip
            assert runs_table == 1  # Dagster's run storage was created in PostgreSQL
    else:
        _serve_and_stop(tmp_path, None)


def _serve_and_stop(tmp_path: Path, pg_url: str | None) -> None:
    port = free_port()
    home = tmp_path / "dagster_home"
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "DAGSTER_PORT": str(port),
        "DAGSTER_HOST": "127.0.0.1",
        "VALUEVERSE_DBT_TARGET_DIR": os.environ.get(
            "VALUEVERSE_DBT_TARGET_DIR", "/tmp/dbt-target-dagster"
        ),
        "VALUEVERSE_WAREHOUSE": f"duckdb:///{tmp_path}/warehouse.duckdb",
    }
    env.pop("DAGSTER_PG_URL", None)
    if pg_url:
        env["DAGSTER_PG_URL"] = pg_url
    log = (tmp_path / "serve.log").open("wb")
    started = time.perf_counter()
    launcher = subprocess.Popen(
        [sys.executable, "-m", "dagster_project.serve"],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    keys: set[str] = set()
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and launcher.poll() is None:
            try:
                keys = _asset_keys(port)
            except (OSError, KeyError, TypeError):
                keys = set()
            if keys:
                break
            time.sleep(0.5)
        ready = time.perf_counter() - started
        print(f"webserver answered with the asset graph after {ready:.1f} s")
        assert launcher.poll() is None, (tmp_path / "serve.log").read_text()[-3000:]
        assert {"marts/invoices", "marts/invoice_lines", "marts/unbilled_usage"} <= keys
        assert {"catalog", "landed_events", "data_quality", "finalized_invoices"} <= keys
        instance = (home / "dagster.yaml").read_text()
        assert ("env: DAGSTER_PG_STORAGE_URL" in instance) == bool(pg_url)
        assert ("sqlite" in instance) != bool(pg_url)
    finally:
        launcher.send_signal(signal.SIGTERM)
        try:
            status = launcher.wait(timeout=60)
        except subprocess.TimeoutExpired:
            launcher.kill()
            raise
        log.close()
    assert status == 0
    # nothing listens on the port any more: the webserver really stopped
    try:
        _graphql(port, ASSET_QUERY)
        answered = True
    except OSError:
        answered = False
    assert not answered
    output = (tmp_path / "serve.log").read_text()
    assert "Error while importing code" not in output
    assert "Daemon threads shut down" in output
