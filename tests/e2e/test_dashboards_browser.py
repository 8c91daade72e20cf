"""The dashboards in a real browser: `streamlit run` as a subprocess on a free port against the
test warehouse (tests/integration/dashboards_support.py), Debian's Chromium driven by Playwright
(no browser download: executable_path=/usr/bin/chromium, flags from TOOLCHAIN.md). Every page is
opened, its content awaited, its key figures checked visible, and a screenshot saved.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest

from tests.conftest import ROOT, query
from tests.integration.dashboards_support import session_warehouse

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TIMEOUT_MS = 30_000

# On CI (.ci/run installs chromium) a missing browser is a failure, never a silent skip;
# a developer machine without it is told how to get it.
pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists() and not os.environ.get("CI"),
    reason="Debian chromium missing: apt-get install chromium",
)


@pytest.fixture(scope="module")
def dashboard_warehouse(run_folder: Path, duckdb_template: Path) -> str:
    return session_warehouse(run_folder, duckdb_template)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(dashboard_warehouse: str, tmp_path_factory) -> Iterator[str]:
    """Base URL of a `streamlit run` serving the dashboards on the test warehouse."""
    port = _free_port()
    log = (tmp_path_factory.mktemp("streamlit") / "server.log").open("w")
    env = {**os.environ, "VALUEVERSE_WAREHOUSE": dashboard_warehouse}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            str(ROOT / "dashboards" / "streamlit_app.py"),
            "--server.headless",
            "true",
            "--server.port",
            str(port),
            "--server.address",
            "127.0.0.1",
            "--browser.gatherUsageStats",
            "false",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as response:
                    if response.read().strip() == b"ok":
                        break
            except OSError:
                pass
            assert proc.poll() is None, "streamlit exited early"
            assert time.monotonic() < deadline, "streamlit did not become healthy"
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _fmt(value: Decimal, currency: str) -> str:
    return f"{value.quantize(Decimal('0.01'), rounding=ROUND_HALF_UP):,} {currency}"


def test_every_page_renders_in_chromium(
    server: str, dashboard_warehouse: str, tmp_path: Path
) -> None:
    from playwright.sync_api import expect, sync_playwright

    url = dashboard_warehouse
    (mrr,) = query(
        url, "select mrr from marts.mrr where currency = 'USD' order by month desc limit 1"
    )[0]
    (usage,) = query(url, "select sum(amount) from marts.usage_by_month where currency = 'USD'")[0]
    (eur_open,) = query(
        url, "select sum(open_balance) from marts.accounts_receivable where currency = 'EUR'"
    )[0]
    (newest,) = query(url, "select max(newest_event_at) from marts.landing_batches")[0]
    pages = {
        "revenue": ["Revenue", "MRR 2026-10", _fmt(mrr, "USD"), "Retention by monthly cohort"],
        "receivables": ["Accounts receivable", "Open balance", _fmt(eur_open, "EUR")],
        "usage": ["Usage", "Top 10 customers", _fmt(usage, "USD")],
        "invoices": ["Invoice explorer"],
        "quality": ["Data quality", "Expectations (latest run)", "Critical failures"],
        "pipeline": ["Pipeline", "Last landing batches", str(newest)[:19]],
    }
    shots = tmp_path / "screenshots"
    shots.mkdir()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 2200})
            for name, texts in pages.items():
                # the default page (Revenue) lives at the root
                path = "" if name == "revenue" else name
                page.goto(f"{server}/{path}", wait_until="domcontentloaded")
                for text in texts:
                    expect(page.get_by_text(text, exact=True).first).to_be_visible(
                        timeout=TIMEOUT_MS
                    )
                if name == "invoices":
                    box = page.get_by_label("Search invoice id, number or customer")
                    box.fill("sub_g3")
                    box.press("Enter")
                    expect(page.get_by_text("175.00 USD", exact=True).first).to_be_visible(
                        timeout=TIMEOUT_MS
                    )
                    expect(page.get_by_text("Tier math", exact=False).first).to_be_visible(
                        timeout=TIMEOUT_MS
                    )
                page.wait_for_selector('[data-testid="stDataFrame"]', timeout=TIMEOUT_MS)
                if name in ("revenue", "usage", "receivables"):
                    page.wait_for_selector(".js-plotly-plot .main-svg", timeout=TIMEOUT_MS)
                # the script has finished (no "Running..." status) before the screenshot
                page.wait_for_function(
                    "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')",
                    timeout=TIMEOUT_MS,
                )
                page.wait_for_timeout(500)  # let the canvas tables and charts paint
                assert page.get_by_text("Page not found").count() == 0, name
                page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
                assert (shots / f"{name}.png").stat().st_size > 10_000
        finally:
            browser.close()
    keep = os.environ.get("VALUEVERSE_SCREENSHOT_DIR")
    if keep:  # to look at them after the run
        for shot in shots.iterdir():
            Path(keep).mkdir(parents=True, exist_ok=True)
            (Path(keep) / shot.name).write_bytes(shot.read_bytes())
