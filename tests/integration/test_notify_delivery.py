"""Webhook and email delivery of the outbox (ingestion/notifications/) on both backends,
against a real local HTTP receiver and a real SMTP server (tests/integration/notify_support.py):
signatures verify and a tampered or stale request does not; a receiver that fails and recovers
gets every notification under its one id; a rotated secret signs beside the new one for its
grace period only; an endpoint failing past the window is disabled and finance is emailed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ingestion.billing.outbox import notification_id, record
from ingestion.notifications.deliver import deliver
from ingestion.notifications.endpoints import add_endpoint, list_endpoints, rotate_secret, utc_now
from ingestion.notifications.settings import DeliverySettings, SmtpSettings
from ingestion.notifications.store import ensure_notify_store
from ingestion.notifications.verify import WebhookVerificationError, verify
from ingestion.warehouse import WarehouseConfig, resolve, transaction
from tests.conftest import query
from tests.integration.notify_support import (
    SIGNING_KEY,
    receiver,
    self_signed,
    smtp_env,
    smtp_server,
)

FAST = DeliverySettings(timeout_seconds=5)


@pytest.fixture(autouse=True)
def _signing_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VALUEVERSE_WEBHOOK_SIGNING_KEY", SIGNING_KEY)
    for name in ("VALUEVERSE_SMTP_HOST", "VALUEVERSE_FINANCE_EMAIL"):
        monkeypatch.delenv(name, raising=False)


def _record(config: WarehouseConfig, *invoices: str, customer: str = "c1") -> list[str]:
    with transaction(config) as db:
        return [
            record(
                db,
                "invoice.finalized",
                number,
                {"invoice_number": number},
                customer_id=customer,
                subject=number,
            )  # fmt: skip
            for number in invoices
        ]


def _statuses(url: str) -> list[tuple]:
    return query(url, "SELECT status, attempt FROM notify.deliveries ORDER BY logged_at")


def test_deliveries_are_signed_and_a_tampered_or_stale_one_is_refused(warehouse_url: str) -> None:
    config = resolve(warehouse_url)
    ensure_notify_store(config)
    with receiver() as hook:
        _, secret = add_endpoint(config, hook.url, "invoice.finalized", None)
        assert secret is not None
        ids = _record(config, "VV-1", "VV-2", "VV-3")
        assert deliver(config, settings=FAST).summary()["delivered"] == 3
    assert hook.ids() == ids
    payloads = dict(
        query(warehouse_url, "SELECT notification_id, payload FROM billing.notifications")
    )
    for request in hook.requests:
        assert verify(secret, request.headers, request.body) == request.headers["webhook-id"]
        assert request.body == payloads[request.headers["webhook-id"]].encode()
    first = hook.requests[0]
    with pytest.raises(WebhookVerificationError, match="no valid signature"):
        verify(secret, first.headers, first.body.replace(b"VV-1", b"VV-9"))
    stale = int(first.headers["webhook-timestamp"]) + 301
    with pytest.raises(WebhookVerificationError, match="5 minutes"):
        verify(secret, first.headers, first.body, now=stale)
    assert _statuses(warehouse_url) == [("delivered", 1)] * 3
    assert deliver(config, settings=FAST).delivered == 0  # nothing is sent twice


def test_a_change_dated_by_a_clock_in_the_past_still_reaches_an_endpoint_added_before(
    warehouse_url: str,
) -> None:
    """Payments record at the run's clock; a run dated in the past (a re-run, the demo) wrote
    notifications that an endpoint added earlier never got (found by `make demo`: 1,536
    payment notifications recorded, none delivered)."""
    config = resolve(warehouse_url)
    ensure_notify_store(config)
    with receiver() as hook:
        add_endpoint(config, hook.url, "*", None)
        dated = datetime.now(UTC) - timedelta(days=30)
        with transaction(config) as db:
            ident = record(db, "payment.succeeded", "pa_1:succeeded", {"invoice_number": "VV-1"},
                           customer_id="c1", subject="VV-1", at=dated)  # fmt: skip
        assert deliver(config, settings=FAST).delivered == 1
    assert hook.ids() == [ident]
    created = dated.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"
    assert f'"created_at":"{created}"'.encode() in hook.requests[0].body  # the change's own time


def test_a_receiver_that_fails_then_recovers_gets_each_notification_once(
    warehouse_url: str,
) -> None:
    config = resolve(warehouse_url)
    ensure_notify_store(config)
    with receiver(statuses=[500, 503]) as hook:
        add_endpoint(config, hook.url, "*", None)
        ids = _record(config, "VV-1", "VV-2", "VV-3")
        t0 = utc_now()
        assert deliver(config, now=t0, settings=FAST).summary()["failed"] == 1
        assert deliver(config, now=t0 + timedelta(seconds=1), settings=FAST).failed == 0  # not due
        assert deliver(config, now=t0 + timedelta(seconds=6), settings=FAST).failed == 1
        assert deliver(config, now=t0 + timedelta(minutes=6), settings=FAST).delivered == 3
    assert hook.ids() == [ids[0], ids[0], ids[0], ids[1], ids[2]]  # retries reuse the id
    assert hook.ids(answered=200) == ids  # each id answered once, in order
    assert _statuses(warehouse_url) == [("failed", 1), ("failed", 2), ("delivered", 3),
                                        ("delivered", 1), ("delivered", 1)]  # fmt: skip


def test_a_rotated_secret_signs_beside_the_old_one_during_the_grace_only(
    warehouse_url: str,
) -> None:
    config = resolve(warehouse_url)
    ensure_notify_store(config)
    with receiver() as hook:
        endpoint_id, old = add_endpoint(config, hook.url, "*", None)
        new, until = rotate_secret(config, endpoint_id, grace_hours=24)
        assert old and new != old
        _record(config, "VV-1")
        deliver(config, settings=FAST)
        during = hook.requests[-1]
        assert len(during.headers["webhook-signature"].split(" ")) == 2
        for secret in (old, new):
            verify(secret, during.headers, during.body)
        _record(config, "VV-2")
        deliver(config, now=until + timedelta(seconds=1), settings=FAST)
        after = hook.requests[-1]
    assert len(hook.requests) == 2
    verify(new, after.headers, after.body)
    with pytest.raises(WebhookVerificationError):
        verify(old, after.headers, after.body)


def test_an_endpoint_failing_past_the_window_is_disabled_and_finance_is_told(
    warehouse_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = resolve(warehouse_url)
    ensure_notify_store(config)
    with smtp_server() as mailbox, receiver(statuses=[500] * 10) as hook:
        for name, value in smtp_env(mailbox.port).items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("VALUEVERSE_FINANCE_EMAIL", "finance@acme.test")
        endpoint_id, _ = add_endpoint(config, hook.url, "*", None)
        _record(config, "VV-1")
        t0 = utc_now()
        settings = DeliverySettings(timeout_seconds=5, disable_after_hours=120)
        assert deliver(config, now=t0, settings=settings).disabled == []
        later = deliver(config, now=t0 + timedelta(hours=119), settings=settings)
        assert later.disabled == []
        run = deliver(config, now=t0 + timedelta(hours=121), settings=settings)
        assert run.disabled == [endpoint_id]
        assert deliver(config, now=t0 + timedelta(hours=200), settings=settings).failed == 0
    assert [e["enabled"] for e in list_endpoints(config)] == [False]
    assert len(hook.requests) == 3  # nothing sent once it was disabled
    [mail] = mailbox.messages
    assert mail["To"] == "finance@acme.test" and endpoint_id in mail["Subject"]
    assert f"valueverse webhooks enable {endpoint_id}" in mail.get_body().get_content()
    assert "/hooks" not in mail.get_body().get_content()  # the host only, never the path


def test_email_recipients_get_text_and_html_through_an_authenticated_server(
    warehouse_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = resolve(warehouse_url)
    ensure_notify_store(config)
    with smtp_server() as mailbox:
        for name, value in smtp_env(mailbox.port).items():
            monkeypatch.setenv(name, value)
        add_endpoint(config, "mailto:ap@customer-one.test", "invoice.finalized", "c1")
        [mine] = _record(config, "VV-<1>", customer="c1")
        _record(config, "VV-2", customer="c2")  # another customer's: not sent to c1
        assert deliver(config, settings=FAST, smtp=SmtpSettings.from_env()).delivered == 1
    [mail] = mailbox.messages
    assert mailbox.logins == ["mailer@valueverse.test"]
    assert mail["To"] == "ap@customer-one.test" and mail["Message-ID"] == f"<{mine}@valueverse>"
    text = mail.get_body(preferencelist=("plain",)).get_content()
    page = mail.get_body(preferencelist=("html",)).get_content()
    assert "invoice_number: VV-<1>" in text and mine in text
    assert "VV-&lt;1&gt;" in page and "VV-<1>" not in page  # escaped in HTML
    assert mine == notification_id("invoice.finalized:VV-<1>")
    assert _statuses(warehouse_url) == [("delivered", 1)]


def test_email_goes_over_starttls_verified_against_the_configured_ca(
    duckdb_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    config = resolve(duckdb_url)
    ensure_notify_store(config)
    cert, key = self_signed(tmp_path)
    with smtp_server(tls_files=(cert, key)) as mailbox:
        for name, value in smtp_env(mailbox.port).items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("VALUEVERSE_SMTP_STARTTLS", "1")
        add_endpoint(config, "mailto:ap@customer-one.test", "*", None)
        _record(config, "VV-1")
        # the server's certificate is not one the system trusts: refused, and retried later
        assert deliver(config, settings=FAST, smtp=SmtpSettings.from_env()).failed == 1
        assert mailbox.messages == [] and mailbox.logins == []
        monkeypatch.setenv("VALUEVERSE_SMTP_CA_FILE", str(cert))
        later = utc_now() + timedelta(seconds=10)
        run = deliver(config, now=later, settings=FAST, smtp=SmtpSettings.from_env())
        assert run.delivered == 1
    assert mailbox.logins == ["mailer@valueverse.test"] and len(mailbox.messages) == 1
    [(error,)] = query(duckdb_url, "SELECT error FROM notify.deliveries WHERE status = 'failed'")
    assert "CERTIFICATE_VERIFY_FAILED" in error and "smtp-test-password" not in error


def test_email_without_a_mail_server_fails_and_is_retried(duckdb_url: str) -> None:
    config = resolve(duckdb_url)
    ensure_notify_store(config)
    add_endpoint(config, "mailto:ap@customer-one.test", "*", None)
    _record(config, "VV-1")
    run = deliver(config, settings=FAST, smtp=None)
    assert run.failed == 1
    [(error, due)] = query(duckdb_url, "SELECT error, next_attempt_at FROM notify.deliveries")
    assert "VALUEVERSE_SMTP_HOST" in error and due is not None


def test_work_per_run_is_bounded(duckdb_url: str) -> None:
    """An oversized payload is given up at once (it could never succeed) without holding up
    the next; a run out of time stops starting attempts, and the rest stays due."""
    config = resolve(duckdb_url)
    ensure_notify_store(config)
    with receiver() as hook:
        add_endpoint(config, hook.url, "*", None)
        with transaction(config) as db:
            big = record(db, "invoice.finalized", "VV-1", {"note": "x" * 2000})
        small = _record(config, "VV-2")
        assert deliver(config, settings=DeliverySettings(run_seconds=0)).out_of_time
        assert hook.requests == []
        run = deliver(config, settings=DeliverySettings(timeout_seconds=5, max_payload_bytes=1024))
        assert (run.gave_up, run.delivered, run.out_of_time) == (1, 1, False)
    assert hook.ids() == small
    [(error,)] = query(
        duckdb_url, f"SELECT error FROM notify.deliveries WHERE notification_id = '{big}'"
    )
    assert "over the cap" in error
