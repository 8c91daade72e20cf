"""The data-quality report as people get it: a real quality run writes GE's Data Docs, the real
Caddy serves them with the project's deploy/Caddyfile behind the login, and Debian's Chromium
(Playwright) reads them with the network cut off.

Why: the Data Docs loaded their scripts and styles from CDNs, so offline the index showed two
links and "Clear Filters" and no results table (bootstrap-table's JavaScript builds it), and
the dashboards linked to a file path. Here every request for another host is recorded and
refused; the test fails if the page even tries one, if any local file is missing, or if the
table the JavaScript builds is not there.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from ingestion.quality import QualityReport, run_quality
from ingestion.quality.offline_docs import VENDOR, external_references
from ingestion.warehouse import resolve
from tests.e2e.test_dashboards_browser import CHROMIUM, FLAGS, TIMEOUT_MS
from tests.integration.caddy_support import CADDY, free_port, get, hash_password, running_caddy
from tests.integration.dashboards_support import AS_OF, session_warehouse

USER, PASSWORD = "finance", "another long passphrase for the test"
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
SUITE = "landed_events.raw_events"  # a validation whose page the browser opens

# On CI (.ci/run installs chromium, make test installs caddy) a missing tool is a failure.
needs_chromium = pytest.mark.skipif(
    not Path(CHROMIUM).exists() and not os.environ.get("CI"),
    reason="Debian chromium missing: apt-get install chromium",
)
needs_caddy = pytest.mark.skipif(
    CADDY is None and not os.environ.get("CI"), reason="caddy missing: apt-get install caddy"
)


@pytest.fixture(scope="module")
def report(run_folder: Path, duckdb_template: Path, tmp_path_factory) -> QualityReport:
    """A real quality run (every suite, GE, Data Docs) on a copy of the dashboards' test
    warehouse (built once per test run; the run appends its results, hence the copy)."""
    source = Path(session_warehouse(run_folder, duckdb_template)[len("duckdb://") :])
    folder = tmp_path_factory.mktemp("quality-report")
    shutil.copy(source, folder / "warehouse.duckdb")
    url = f"duckdb://{folder / 'warehouse.duckdb'}"
    as_of = date.fromisoformat(AS_OF)
    return run_quality(resolve(url), as_of, docs_dir=folder / "quality")


@pytest.fixture(scope="module")
def proxy(report: QualityReport) -> Iterator[str]:
    """Base URL of the real Caddy serving the report beside the dashboards (whose upstream is
    not running: only the report is asked for)."""
    port = free_port()
    env = {
        "VALUEVERSE_UI_USER": USER,
        "VALUEVERSE_UI_PASSWORD_HASH": hash_password(PASSWORD),
        "DAGSTER_PORT": str(free_port()),
        "DASHBOARD_PORT": str(port),
        "DAGSTER_UPSTREAM": f"127.0.0.1:{free_port()}",
        "DASHBOARD_UPSTREAM": f"127.0.0.1:{free_port()}",
        "VALUEVERSE_QUALITY_REPORT_DIR": str(report.docs_index.parent),
    }
    with running_caddy(env, port):
        yield f"http://127.0.0.1:{port}"


def test_the_generated_pages_load_nothing_from_other_hosts(report: QualityReport) -> None:
    site = report.docs_index.parent
    pages = list(site.rglob("*.html"))
    assert len(pages) > 10  # index, suites and validations of every suite
    assert external_references(site) == []
    text = report.docs_index.read_text()
    assert 'src="static/vendor/jquery/dist/jquery.min.js"' in text
    assert "dataContextId" not in text  # GE's logo request that reported each view
    assert (site / VENDOR / "@fortawesome/fontawesome-free/webfonts/fa-solid-900.woff2").exists()


@needs_caddy
def test_the_report_needs_the_login(proxy: str) -> None:
    for path in (
        "/quality-report/index.html",
        f"/quality-report/{VENDOR}/jquery/dist/jquery.min.js",
    ):
        for auth in (None, (USER, "wrong"), ("someone", PASSWORD)):
            status, body = get(proxy + path, auth)
            assert status == 401, (path, auth, status)
            assert "Great Expectations" not in body and "jQuery" not in body
        status, body = get(proxy + path, (USER, PASSWORD))
        assert status == 200, (path, status)
    status, body = get(f"{proxy}/quality-report/", (USER, PASSWORD))
    assert status == 200 and "Validation Results" in body


@needs_caddy
@needs_chromium
def test_the_report_renders_offline_in_chromium(proxy: str, tmp_path: Path) -> None:
    from playwright.sync_api import Route, expect, sync_playwright

    off_machine: list[str] = []  # every request for another host, refused
    broken: list[str] = []  # local requests that failed or were not found

    def only_local(route: Route) -> None:
        parts = urlsplit(route.request.url)
        if parts.scheme in ("http", "https", "ws", "wss") and parts.hostname not in LOCAL_HOSTS:
            off_machine.append(route.request.url)
            route.abort("internetdisconnected")
        else:
            route.continue_()

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        try:
            context = browser.new_context(
                http_credentials={"username": USER, "password": PASSWORD},
                viewport={"width": 1440, "height": 1800},
            )
            context.route("**/*", only_local)
            page = context.new_page()
            page.on("requestfailed", lambda r: broken.append(f"failed {r.url}"))
            page.on("response", lambda r: r.status >= 400 and broken.append(f"{r.status} {r.url}"))

            page.goto(f"{proxy}/quality-report/", wait_until="load")
            # bootstrap-table (a local file now) builds the index's rows from the page's data
            rows = page.locator(
                "table.ge-index-page-validation-results-table tbody tr.clickable-row"
            )
            expect(rows.first).to_be_visible(timeout=TIMEOUT_MS)
            assert rows.count() > 0
            page.screenshot(path=str(tmp_path / "index.png"), full_page=True)

            # its search (13 validations, 10 a page) and its row links are JavaScript too
            search = page.get_by_placeholder("Search").locator("visible=true").first
            search.fill(SUITE)
            search.press("Enter")  # bootstrap-table searches on key events
            expect(rows).to_have_count(1, timeout=TIMEOUT_MS)
            rows.filter(has_text=SUITE).first.click()
            page.wait_for_url("**/validations/**", timeout=TIMEOUT_MS)
            expect(page.get_by_text("Expectation Validation Result").first).to_be_visible(
                timeout=TIMEOUT_MS
            )
            expect(page.get_by_text(f"Expectation Suite: {SUITE}").first).to_be_visible()
            results = page.locator("table.table tbody tr")
            assert results.count() > 0
            expect(results.filter(has_text="values must be unique").first).to_be_visible()
            # Font Awesome's webfont (local, loaded by its CSS) draws the status icons
            page.wait_for_function(
                "() => document.fonts.check('900 16px \"Font Awesome 6 Free\"')",
                timeout=TIMEOUT_MS,
            )
            page.screenshot(path=str(tmp_path / "validation.png"), full_page=True)
        finally:
            browser.close()
    assert off_machine == []
    assert broken == []
    keep = os.environ.get("VALUEVERSE_SCREENSHOT_DIR")
    if keep:  # to look at them after the run
        Path(keep).mkdir(parents=True, exist_ok=True)
        for shot in tmp_path.glob("*.png"):
            shutil.copy(shot, Path(keep) / f"quality-report-{shot.name}")
