"""The Notifications dashboard page through AppTest: the counts shown equal the warehouse's,
failed deliveries come first with the exact replay command (which works), and a warehouse
without the notify tables says what to run."""

from __future__ import annotations

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from ingestion.billing.invoice_store import ensure_store
from ingestion.billing.outbox import record
from ingestion.notifications.deliver import deliver
from ingestion.notifications.endpoints import add_endpoint
from ingestion.notifications.settings import DeliverySettings
from ingestion.notifications.store import ensure_notify_store
from ingestion.warehouse import resolve, transaction
from tests.conftest import ROOT, run_step
from tests.integration.notify_support import SIGNING_KEY, receiver

APP = str(ROOT / "dashboards" / "streamlit_app.py")


@pytest.fixture(autouse=True)
def _fresh(monkeypatch: pytest.MonkeyPatch) -> None:
    import streamlit as st

    st.cache_data.clear()
    monkeypatch.setenv("VALUEVERSE_WEBHOOK_SIGNING_KEY", SIGNING_KEY)


def _page(url: str, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("VALUEVERSE_WAREHOUSE", url)
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    at.switch_page("app_pages/notifications.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _table(at: AppTest, name: str) -> pd.DataFrame:
    buttons = [b.key for b in at.download_button]
    return at.dataframe[buttons.index(f"csv-{name}")].value.reset_index(drop=True)


def test_failed_deliveries_come_first_with_the_replay_command(duckdb_url: str, monkeypatch) -> None:
    config = resolve(duckdb_url)
    ensure_notify_store(config)
    with receiver(statuses=[500]) as down, receiver() as up:
        broken, _ = add_endpoint(config, down.url, "*", None)
        add_endpoint(config, up.url, "*", None)
        with transaction(config) as db:
            ident = record(db, "invoice.finalized", "VV-1", {"invoice_number": "VV-1"})
            record(db, "payment.failed", "a1/2", {"attempt_id": "a1"})
        deliver(config, settings=DeliverySettings(timeout_seconds=5))
    at = _page(duckdb_url, monkeypatch)
    assert {m.label: m.value for m in at.metric} == {
        "Notifications recorded": "2", "Delivered": "2", "Failing deliveries": "1",
        "Enabled endpoints": "2",
    }  # fmt: skip
    assert [h.value for h in at.subheader][0] == "Failed deliveries"
    failed = _table(at, "failed_deliveries")
    assert failed[["notification_id", "endpoint_id", "status"]].values.tolist() == [
        [ident, broken, "failed"]
    ]
    command = failed["replay"][0]
    assert command == f"valueverse webhooks replay {ident} --endpoint {broken}"
    replayed = run_step(duckdb_url, *command.split()[1:])
    assert replayed.returncode == 0 and replayed.stdout.startswith("1 deliveries"), replayed.stderr


def test_without_the_notify_tables_the_page_says_what_to_run(duckdb_url: str, monkeypatch) -> None:
    ensure_store(resolve(duckdb_url))
    at = _page(duckdb_url, monkeypatch)
    assert "valueverse webhooks add" in at.info[0].value
