"""`valueverse docs`: dbt's documentation site (models, columns, tests, lineage).

Generated against the configured warehouse so the catalog shows real column
types; served by `dbt docs serve` or opened as static files.
"""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime

from ingestion.billing.dbt_runner import dbt_args, dbt_env, invoke, target_dir
from ingestion.warehouse import WarehouseConfig


def generate_docs(config: WarehouseConfig) -> int:
    os.environ.update(dbt_env(config))
    args = dbt_args(config, "docs", datetime.now(UTC).date())
    result = invoke([args[0], "generate", *args[1:]])
    if not result.success:
        print("valueverse: dbt docs generate failed (see the log above)", file=sys.stderr)
        return 1
    site = target_dir(config) / "index.html"
    print(f"dbt docs: {site}  (serve: cd dbt && dbt docs serve --target-path {site.parent})")
    return 0
