"""The notify schema under `valueverse roles apply`: the billing role adds endpoints and
delivers (appending to the log), but cannot rewrite the log; the reader (dashboards) reads
endpoints, deliveries and the outbox, and changes nothing."""

from __future__ import annotations

import psycopg
import pytest

from ingestion.billing.outbox import record
from ingestion.warehouse import resolve, transaction
from tests.conftest import run_cli
from tests.integration.notify_support import SIGNING_KEY, receiver
from tests.integration.test_service_roles import _apply, _as, roles_db  # noqa: F401 (fixture)

pytestmark = pytest.mark.postgres


def test_billing_delivers_and_appends_the_reader_reads(roles_db, monkeypatch) -> None:  # noqa: F811
    url, prefix = roles_db
    applied = _apply(url, prefix)
    assert applied.returncode == 0, applied.stderr
    billing, reader = _as(url, f"{prefix}_billing"), _as(url, f"{prefix}_reader")
    monkeypatch.setenv("VALUEVERSE_WEBHOOK_SIGNING_KEY", SIGNING_KEY)
    with receiver() as hook:
        added = run_cli(billing, "webhooks", "add", "--url", hook.url, "--events", "*")
        assert added.returncode == 0, added.stderr
        with transaction(resolve(billing)) as db:
            ident = record(db, "invoice.finalized", "VV-1", {"invoice_number": "VV-1"})
        delivered = run_cli(billing, "webhooks", "deliver")
        assert delivered.returncode == 0, delivered.stderr
        assert delivered.last_json["delivered"] == 1
    assert hook.ids() == [ident]
    with psycopg.connect(billing, autocommit=True) as conn:
        for statement in (
            "UPDATE notify.deliveries SET status = 'delivered'",
            "DELETE FROM notify.deliveries",
            "DROP TABLE notify.deliveries",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
    with psycopg.connect(reader, autocommit=True) as conn:
        for table in ("notify.endpoints", "notify.deliveries", "billing.notifications"):
            assert conn.execute(f"SELECT count(*) FROM {table}").fetchone() == (1,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("UPDATE notify.endpoints SET enabled = FALSE")
