"""Benchmark: how long each dashboard page takes to render, on a warehouse built beforehand.

Builds nothing: point it at a warehouse (e.g. the demo's, `make demo` then
`python tests/bench/bench_dashboards.py --warehouse duckdb:///abs/.data/valueverse.duckdb`).
Each page runs through streamlit.testing.v1.AppTest (the whole script: queries, dataframes,
plotly figures) after one warm-up run of the app (imports), twice per repetition:
  cold: cache cleared first, so every query reads the warehouse;
  warm: the same page again, served by st.cache_data (what a user sees within the ttl).
With --browser it also serves the app with `streamlit run` and times, in Debian's Chromium,
a click on the page's link in the sidebar until its title and first metric are shown and its
script has finished: first visit (server cache cold for that page) and later visits.
Prints figures; asserts nothing (timings depend on the machine).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

APP = ROOT / "dashboards" / "streamlit_app.py"
PAGES = ["revenue", "receivables", "usage", "invoices", "quality", "pipeline"]
TITLES = {
    "revenue": "Revenue",
    "receivables": "Accounts receivable",
    "usage": "Usage",
    "invoices": "Invoice explorer",
    "quality": "Data quality",
    "pipeline": "Pipeline",
}


def bench_apptest(repeat: int) -> None:
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(APP), default_timeout=120)
    started = time.perf_counter()
    at.run()
    print(f"warm-up (imports + first page): {time.perf_counter() - started:.2f} s")
    print(f"{'page':<12} {'cold median':>12} {'cold max':>9} {'warm median':>12}  (seconds)")
    for page in PAGES:
        cold, warm = [], []
        for _ in range(repeat):
            st.cache_data.clear()
            at.switch_page(f"app_pages/{page}.py")
            t0 = time.perf_counter()
            at.run()
            cold.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            at.run()
            warm.append(time.perf_counter() - t0)
            if at.exception:
                raise SystemExit(f"{page}: {at.exception[0].value}")
        print(
            f"{page:<12} {statistics.median(cold):>12.3f} {max(cold):>9.3f}"
            f" {statistics.median(warm):>12.3f}"
        )


def bench_browser(repeat: int) -> None:
    import subprocess
    import urllib.request

    from playwright.sync_api import sync_playwright

    from tests.e2e.test_dashboards_browser import CHROMIUM, FLAGS, _free_port

    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(APP), "--server.headless", "true",
         "--server.port", str(port), "--server.address", "127.0.0.1",
         "--browser.gatherUsageStats", "false"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                with urllib.request.urlopen(f"{base}/_stcore/health", timeout=1):
                    break
            except OSError:
                time.sleep(0.1)
        done = "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            page.goto(f"{base}/pipeline")  # warm-up: the server imports the pages' modules
            page.wait_for_selector('[data-testid="stMetricValue"]', timeout=60_000)
            print(
                f"{'page':<12} {'first visit':>12} {'later median':>13}  (seconds, click to drawn)"
            )
            visits: dict[str, list[float]] = {name: [] for name in PAGES}
            for _ in range(repeat):
                for name in PAGES:
                    t0 = time.perf_counter()
                    page.get_by_role("link", name=TITLES[name], exact=True).click()
                    page.wait_for_selector(f"h1:has-text('{TITLES[name]}')", timeout=60_000)
                    page.wait_for_selector('[data-testid="stMetricValue"]', timeout=60_000)
                    page.wait_for_function(done, timeout=60_000)
                    visits[name].append(time.perf_counter() - t0)
            for name, times in visits.items():
                later = statistics.median(times[1:]) if len(times) > 1 else float("nan")
                print(f"{name:<12} {times[0]:>12.3f} {later:>13.3f}")
            browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warehouse", default=os.environ.get("VALUEVERSE_WAREHOUSE"),
                        help="warehouse URL (default: $VALUEVERSE_WAREHOUSE)")  # fmt: skip
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--browser", action="store_true", help="also time loads in Chromium")
    args = parser.parse_args()
    if not args.warehouse:
        parser.error("--warehouse (or VALUEVERSE_WAREHOUSE) is required")
    os.environ["VALUEVERSE_WAREHOUSE"] = args.warehouse
    print(f"warehouse: {args.warehouse}")
    bench_apptest(args.repeat)
    if args.browser:
        bench_browser(args.repeat)


if __name__ == "__main__":
    main()
