"""The Dagster payment jobs: registered in the project's definitions, their schedules pass
the tick as the clock, and the collection job charges through the gateway resource against a
real localstripe server."""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg

from dagster_project.defs.payments.jobs import (
    dunning_daily,
    payment_collection_daily,
    payment_collection_job,
)
from ingestion.demo.localstripe import LocalStripe
from ingestion.warehouse import resolve
from tests.integration.conftest import StripeAt, WarehouseAt
from tests.integration.payments_support import (
    TEST_KEY,
    add_finalized_invoice,
    intents_for,
    localstripe_server_fixture,  # noqa: F401 (fixture)
    rows,
    stripe_server_fixture,  # noqa: F401 (fixture)
    unique,
)


def test_jobs_and_schedules_are_registered() -> None:
    from dagster_project.definitions import defs

    repo = defs.get_repository_def()
    assert {"payment_collection_job", "dunning_job"} <= {job.name for job in repo.get_all_jobs()}
    assert {s.name: s.job_name for s in repo.schedule_defs}.items() >= {
        "payment_collection_daily": "payment_collection_job",
        "dunning_daily": "dunning_job",
    }.items()
    assert "payments" in (defs.resources or {})


def test_schedules_use_the_tick_as_the_clock() -> None:
    tick = datetime(2026, 3, 2, 7, 0, tzinfo=UTC)
    context = dg.build_schedule_context(scheduled_execution_time=tick)
    request = payment_collection_daily(context)
    assert request.run_config == {
        "ops": {"collect_payments": {"config": {"now": "2026-03-02T07:00:00+00:00"}}}
    }
    assert dunning_daily(context).run_config["ops"]["run_dunning"]["config"]["now"]


def test_collection_job_charges_through_the_resource(
    duckdb_url: str, stripe_server: LocalStripe
) -> None:
    config = resolve(duckdb_url)
    invoice_id = add_finalized_invoice(config, unique("cus"), "30.00", "EUR", 2)
    result = payment_collection_job.execute_in_process(
        run_config={"ops": {"collect_payments": {"config": {"now": "2026-02-05T07:00:00Z"}}}},
        resources={
            "warehouse": WarehouseAt(url=duckdb_url),
            "payments": StripeAt(api_key=TEST_KEY, api_base=stripe_server.base),
        },
    )
    assert result.success
    assert result.output_for_node("collect_payments")["paid"] == 1
    assert [i["amount"] for i in intents_for(stripe_server, invoice_id)] == [3000]
    assert rows(config, "SELECT status, recorded_at FROM billing.payment_attempts"
                " ORDER BY state_no")[-1] == ("succeeded", datetime(2026, 2, 5, 7, 0))  # fmt: skip
