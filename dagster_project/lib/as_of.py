"""The billing date a run works to, as a resource, so dbt, quality and finalization agree.

Empty (the default, or VALUEVERSE_AS_OF unset): today in UTC, what a scheduled run wants.
Set it to replay a past date, as `valueverse build --as-of` does.
"""

from __future__ import annotations

import os
from datetime import date

import dagster as dg

from dagster_project.lib.settings import parse_as_of


class AsOfResource(dg.ConfigurableResource):
    """`as_of` as YYYY-MM-DD; empty means today (UTC) at the moment the step runs."""

    as_of: str = ""

    def date(self) -> date:
        return parse_as_of(self.as_of)


def as_of_resource_from_env() -> AsOfResource:
    if os.environ.get("VALUEVERSE_AS_OF"):
        return AsOfResource(as_of=dg.EnvVar("VALUEVERSE_AS_OF"))
    return AsOfResource()
