"""Fixtures shared by the integration tests that run Dagster."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


@pytest.fixture(scope="module")
def dagster_dbt_target_dir() -> Iterator[None]:
    """dbt target folders of their own for a module's Dagster runs, apart from the CLI tests'
    dbt/target (unless the caller chose a root), for that module's tests only: set at import
    time, the variable would move every later test's dbt state too."""
    with pytest.MonkeyPatch.context() as patch:
        if not os.environ.get("VALUEVERSE_DBT_TARGET_DIR"):
            patch.setenv("VALUEVERSE_DBT_TARGET_DIR", "/tmp/dbt-target-dagster")
        yield
