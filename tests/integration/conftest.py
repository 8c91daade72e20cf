"""Fixtures shared by the integration tests that run Dagster."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from dagster_project.defs.payments.resources import PaymentGatewayResource
from dagster_project.lib.warehouse import WarehouseResource
from ingestion.payments.gateway import PaymentGateway
from ingestion.warehouse import WarehouseConfig, resolve


class WarehouseAt(WarehouseResource):
    """The warehouse resource pointed at a test's warehouse (the deployment's has no field:
    it reads VALUEVERSE_WAREHOUSE, so that no launch can change it)."""

    url: str

    def config(self) -> WarehouseConfig:
        return resolve(self.url)


class StripeAt(PaymentGatewayResource):
    """The Stripe resource pointed at a test's server and key (the deployment's reads them
    from the environment only)."""

    api_key: str
    api_base: str

    def gateway(self) -> PaymentGateway:
        from ingestion.payments.stripe_gateway import StripeGateway

        return StripeGateway(self.api_key, self.api_base, 10.0)


@pytest.fixture(scope="module")
def dagster_dbt_target_dir() -> Iterator[None]:
    """dbt target folders of their own for a module's Dagster runs, apart from the CLI tests'
    dbt/target (unless the caller chose a root), for that module's tests only: set at import
    time, the variable would move every later test's dbt state too."""
    with pytest.MonkeyPatch.context() as patch:
        if not os.environ.get("VALUEVERSE_DBT_TARGET_DIR"):
            patch.setenv("VALUEVERSE_DBT_TARGET_DIR", "/tmp/dbt-target-dagster")
        yield
