"""Read-only SQL access for analysts: a PostgreSQL role that can read the marts and nothing else.

Why default privileges: dbt rebuilds mart tables on every run (a new table
replaces the old one), so grants on today's tables would vanish at the next
build. `ALTER DEFAULT PRIVILEGES` makes every table the warehouse owner creates
in the marts schema readable by the role, now and after each rebuild. Nothing
is granted on `raw` (events, rejects, catalog history) or on the staging and
intermediate schemas, so the role cannot see them.
"""

from __future__ import annotations

import re

from psycopg import sql

from ingestion.warehouse import UsageError, WarehouseConfig, connect_postgres

MARTS_SCHEMA = "marts"
_ROLE_RE = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def grant_analyst_role(config: WarehouseConfig, role: str, password: str | None) -> list[str]:
    """Create (or update) `role` with read access to the marts only; returns what was done.

    Idempotent: running it again re-applies the same grants.
    """
    if config.kind != "postgres":
        raise UsageError(
            "analyst roles are a PostgreSQL feature; on DuckDB share a read-only copy "
            "of the file (duckdb -readonly) instead"
        )
    if not _ROLE_RE.fullmatch(role):
        raise UsageError(f"role name {role!r} must match [a-z_][a-z0-9_]{{0,62}}")
    ident = sql.Identifier(role)
    schema = sql.Identifier(MARTS_SCHEMA)
    done = []
    with connect_postgres(config) as conn, conn.transaction():
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(ident))
            done.append(f"created role {role}")
        if password:
            conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(ident, sql.Literal(password)))
            done.append("set its password from VALUEVERSE_ANALYST_PASSWORD")
        db = conn.execute("SELECT current_database(), current_user").fetchone()
        assert db is not None
        conn.execute(
            sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(db[0]), ident)
        )
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(schema))
        conn.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(schema, ident))
        conn.execute(sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA {} TO {}").format(schema, ident))
        conn.execute(
            sql.SQL(
                "ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA {} GRANT SELECT ON TABLES TO {}"
            ).format(sql.Identifier(db[1]), schema, ident)
        )
        if _has_schema(conn, "raw"):  # nothing on landing data, even if granted by hand before
            conn.execute(sql.SQL("REVOKE ALL ON SCHEMA raw FROM {}").format(ident))
            conn.execute(sql.SQL("REVOKE ALL ON ALL TABLES IN SCHEMA raw FROM {}").format(ident))
        done.append(f"granted read on schema {MARTS_SCHEMA} (now and after every dbt build)")
    return done


def _has_schema(conn, name: str) -> bool:
    row = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (name,)).fetchone()
    return row is not None
