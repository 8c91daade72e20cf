"""One error type per kind of problem, so each caller can react to the kind it cares about.

Every one is reported to a person as one line, never a traceback (the CLI prints
`valueverse: <message>` and exits 1 for all of them), but they mean different things to code:

- `ConfigError`: a setting cannot be used (a bad VALUEVERSE_WAREHOUSE URL, a missing
  variable). Retrying changes nothing; someone has to fix the configuration.
- `UsageError`: a request that cannot be done as asked (a bad argument, a feature the chosen
  backend does not have, a date the marts were not built for). Retrying changes nothing either.
- `WarehouseError`: the warehouse is unreachable, busy or failing. This one alone is worth
  retrying: the Dagster sensors skip a tick on it and the Kafka consumer retries the batch, so
  a configuration or usage problem must never be one (it would be hidden as "busy" forever).
"""

from __future__ import annotations


class ValueVerseError(Exception):
    """A problem reported as one line, without a traceback."""


class ConfigError(ValueVerseError):
    """A setting (environment variable, URL) that cannot be used; the message names it."""


class UsageError(ValueVerseError):
    """A request that cannot be done as asked; the message says what to do instead."""


class StoreDamaged(ValueVerseError):
    """A table of the append-only billing store is missing while the rest of it exists: it is
    never re-created empty (that would silently lose issued invoices or payments); someone
    has to restore it."""


class WarehouseError(ValueVerseError):
    """The warehouse is unreachable, busy or failing: worth trying again later."""


class WarehouseBusy(WarehouseError):
    """The DuckDB file is being written by another process (a landing or a dbt build)."""


class WarehouseMissing(WarehouseError):
    """A DuckDB file opened read-only does not exist yet: nothing was landed or built."""
