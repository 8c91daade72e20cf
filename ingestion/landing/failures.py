"""Which failures of a batch's write the Kafka consumer retries, and which it never will.

Why two lists: the consumer retries a batch until it lands, because its offsets are
committed only afterwards. That is right for a warehouse or broker that is down, busy or
restarting (it comes back), and wrong for an error that no retry can fix: the database
refusing this data (a conversion, a constraint, a trigger). Retried, such a batch would hold
its partition forever, and a restart would replay it into the same error. Those batches are
dead-lettered instead (consumer.py), where a person sees them and can produce them again once
the cause is fixed.

What is in neither list stops the service, with the reason: a bug in our own code, and a
warehouse this service cannot write at all (a missing table, a revoked privilege: the
deployment, not the batch, is wrong). Replaying after a fix loses nothing, while
dead-lettering every batch would empty the whole stream into the dead-letter topic.
"""

from __future__ import annotations

import duckdb
import psycopg

from ingestion.landing.dlq import DeadLetterError
from ingestion.warehouse import WarehouseError, redact_url

# Down, busy or restarting: a lost connection, a serialization failure or deadlock, a lock or
# statement timeout, an administrator's shutdown (psycopg's OperationalError covers them all),
# a locked DuckDB file, an unacknowledged dead letter.
TRANSIENT: tuple[type[BaseException], ...] = (
    WarehouseError,
    DeadLetterError,
    OSError,
    psycopg.OperationalError,
    psycopg.InterfaceError,
    duckdb.IOException,
)

# The database refused the statement for what it holds (the DB-API classes of both drivers:
# conversions, constraints and triggers), except _DEPLOYMENT below.
_REFUSALS: tuple[type[BaseException], ...] = (
    psycopg.DataError,
    psycopg.IntegrityError,
    psycopg.ProgrammingError,
    psycopg.NotSupportedError,
    duckdb.DataError,
    duckdb.IntegrityError,
    duckdb.ProgrammingError,
    duckdb.NotSupportedError,
    duckdb.PermissionException,
)

# Every batch would fail the same way: the service stops and says why (module docstring).
_DEPLOYMENT: tuple[type[BaseException], ...] = (
    psycopg.errors.InsufficientPrivilege,
    psycopg.errors.UndefinedTable,
    psycopg.errors.UndefinedColumn,
    psycopg.errors.UndefinedFunction,
    psycopg.errors.InvalidSchemaName,
    duckdb.PermissionException,
    duckdb.CatalogException,
)

_MAX_MESSAGE_CHARS = 300


def is_permanent(exc: BaseException) -> bool:
    """Whether no retry of the same batch can fix `exc`. From PostgreSQL only what the server
    answered counts (it has a SQLSTATE): psycopg raises the same classes for a misuse of the
    driver, which is a bug in our code."""
    if not isinstance(exc, _REFUSALS) or isinstance(exc, _DEPLOYMENT):
        return False
    return not isinstance(exc, psycopg.Error) or exc.sqlstate is not None


def describe(exc: BaseException) -> str:
    """The error's class (and SQLSTATE) and the first line of its message, for a dead letter's
    detail and the log: a URL's password is masked and the length is bounded."""
    name = type(exc).__name__
    sqlstate = getattr(exc, "sqlstate", None)
    if sqlstate:
        name += f" (SQLSTATE {sqlstate})"
    lines = str(exc).strip().splitlines()
    message = redact_url(lines[0]) if lines else ""
    if len(message) > _MAX_MESSAGE_CHARS:
        message = message[: _MAX_MESSAGE_CHARS - 3] + "..."
    return f"{name}: {message}" if message else name
