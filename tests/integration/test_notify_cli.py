"""`valueverse webhooks` as a user runs it: the secret printed once and never stored or listed,
clear refusals (bad URL, no master key), replays, the failed-deliveries listing, and a delivery
process killed between sending and logging that sends again after a restart under the same
id, never another."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from ingestion.billing.outbox import record
from ingestion.notifications.store import ensure_notify_store
from ingestion.warehouse import resolve, transaction
from tests.conftest import ROOT, query, run_cli, run_step
from tests.integration.notify_support import SIGNING_KEY, receiver


@pytest.fixture(autouse=True)
def _signing_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VALUEVERSE_WEBHOOK_SIGNING_KEY", SIGNING_KEY)


def _record(url: str, *invoices: str) -> list[str]:
    with transaction(resolve(url)) as db:
        return [record(db, "invoice.finalized", n, {"invoice_number": n}, customer_id="c1",
                       subject=n) for n in invoices]  # fmt: skip


def test_add_prints_the_secret_once_and_nothing_stores_or_lists_it(duckdb_url: str) -> None:
    events = "invoice.finalized,payment.failed"
    added = run_step(duckdb_url, "webhooks", "add", "--url", "https://hooks.acme.test/vv",
                     "--events", events, "--customer", "c1")  # fmt: skip
    assert added.returncode == 0, added.stderr
    secret = added.stdout.strip()
    assert secret.startswith("whsec_") and "shown only this once" in added.stderr
    listed = run_step(duckdb_url, "webhooks", "list")
    [endpoint] = [line for line in listed.stdout.splitlines() if line]
    assert '"events": ["invoice.finalized", "payment.failed"]' in endpoint
    assert secret[6:] not in listed.stdout
    dump = query(duckdb_url, "SELECT * FROM notify.endpoints")
    assert secret[6:] not in repr(dump) and secret not in repr(dump)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--url", "ftp://x.test/", "--events", "*"], "only http:// and https://"),
        (["--url", "https://user:pw@x.test/", "--events", "*"], "user or password"),
        (["--url", "mailto:nobody", "--events", "*"], "one email address"),
        (["--url", "https://x.test/", "--events", "invoice.paid"], "unknown event type"),
    ],
)
def test_bad_endpoints_are_refused_with_a_clear_message(duckdb_url: str, args, message) -> None:
    result = run_step(duckdb_url, "webhooks", "add", *args)
    assert result.returncode == 1 and message in result.stderr, result.stderr


def test_no_or_a_short_master_key_is_refused(duckdb_url: str, monkeypatch) -> None:
    monkeypatch.delenv("VALUEVERSE_WEBHOOK_SIGNING_KEY")
    result = run_step(duckdb_url, "webhooks", "add", "--url", "https://x.test/", "--events", "*")
    assert result.returncode == 1 and "VALUEVERSE_WEBHOOK_SIGNING_KEY is not set" in result.stderr
    monkeypatch.setenv("VALUEVERSE_WEBHOOK_SIGNING_KEY", "short-key")
    result = run_step(duckdb_url, "webhooks", "add", "--url", "https://x.test/", "--events", "*")
    assert result.returncode == 1 and "too short" in result.stderr
    assert "short-key" not in result.stderr  # never echoed


def test_failed_deliveries_are_listed_and_a_replay_sends_again_under_the_same_id(
    warehouse_url: str,
) -> None:
    ensure_notify_store(resolve(warehouse_url))
    with receiver(statuses=[500]) as hook:
        assert run_step(warehouse_url, "webhooks", "add", "--url", hook.url, "--events", "*"
                        ).returncode == 0  # fmt: skip
        [ident] = _record(warehouse_url, "VV-1")
        run_step(warehouse_url, "webhooks", "deliver")
        failed = run_step(warehouse_url, "webhooks", "deliveries", "--failed")
        assert f'"notification_id": "{ident}"' in failed.stdout and "HTTP 500" in failed.stdout
        replay = run_step(warehouse_url, "webhooks", "replay", ident)
        assert replay.stdout.startswith("1 deliveries due again"), replay.stderr
        assert run_step(warehouse_url, "webhooks", "deliver").last_json["delivered"] == 1
        # delivered, then replayed by date: sent a third time, same id
        assert (
            run_step(warehouse_url, "webhooks", "replay", "--since", "2000-01-01").returncode == 0
        )
        assert run_step(warehouse_url, "webhooks", "deliver").last_json["delivered"] == 1
    assert hook.ids() == [ident] * 3
    both = run_step(warehouse_url, "webhooks", "replay", ident, "--since", "2000-01-01")
    assert both.returncode == 1 and "not both" in both.stderr


def test_a_delivery_killed_between_sending_and_logging_resends_the_same_id(
    warehouse_url: str,
) -> None:
    ensure_notify_store(resolve(warehouse_url))
    with receiver() as hook:
        assert run_cli(warehouse_url, "webhooks", "add", "--url", hook.url, "--events", "*"
                       ).returncode == 0  # fmt: skip
        ids = _record(warehouse_url, "VV-1", "VV-2")
        env = {**os.environ, "VALUEVERSE_WAREHOUSE": warehouse_url}
        killed = subprocess.run(
            [sys.executable, "-m", "tests.integration.notify_killed", "webhooks", "deliver"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert killed.returncode == -signal.SIGKILL, killed.stderr
        assert hook.ids() == [ids[0]]  # the receiver answered; the log never heard of it
        assert query(warehouse_url, "SELECT count(*) FROM notify.deliveries") == [(0,)]
        restarted = run_cli(warehouse_url, "webhooks", "deliver")
        assert restarted.returncode == 0, restarted.stderr
    assert hook.ids() == [ids[0], ids[0], ids[1]]  # sent again, under the same id
    assert set(hook.ids()) == set(ids)
    delivered = query(warehouse_url, "SELECT notification_id FROM notify.deliveries"
                      " WHERE status = 'delivered' ORDER BY notification_id")  # fmt: skip
    assert delivered == sorted((i,) for i in ids)
