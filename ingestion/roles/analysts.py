"""Read-only SQL access for analysts: a PostgreSQL role that can read the marts and nothing else.

Why default privileges: dbt rebuilds mart tables on every run (a new table
replaces the old one), so grants on today's tables would vanish at the next
build. `ALTER DEFAULT PRIVILEGES` makes every table the warehouse owner creates
in the marts schema readable by the role, now and after each rebuild. Nothing
is granted on `raw` (events, rejects, catalog history) or on the staging and
intermediate schemas, so the role cannot see them.

What one analyst session can cost is bounded (a statement timeout, a connection limit, no
temporary tables), the password reaches the server only as a SCRAM-SHA-256 verifier (never as
text a statement log could keep), and an existing role is taken over only if this command made
it: naming any other role (the owner, a role in pg_read_all_data) is refused, because setting
its password would hand out everything else it can do.
"""

from __future__ import annotations

from psycopg import sql

from ingestion.roles.pg_roles import LOCKED_DOWN, check_name, has_schema, make_role, set_password
from ingestion.warehouse import UsageError, WarehouseConfig, connect_postgres

MARTS_SCHEMA = "marts"
ROLE_MARK = "valueverse analyst (read-only marts)"  # the role's COMMENT: made by this command
STATEMENT_TIMEOUT = "120s"
CONNECTION_LIMIT = 10


def grant_analyst_role(config: WarehouseConfig, role: str, password: str | None) -> list[str]:
    """Create (or update one made here) `role` with read access to the marts only; returns
    what was done. Idempotent: running it again re-applies the same grants and limits."""
    if config.kind != "postgres":
        raise UsageError(
            "analyst roles are a PostgreSQL feature; on DuckDB share a read-only copy "
            "of the file (duckdb -readonly) instead"
        )
    check_name(role)
    ident = sql.Identifier(role)
    schema = sql.Identifier(MARTS_SCHEMA)
    done = []
    with connect_postgres(config) as conn, conn.transaction():
        db = conn.execute("SELECT current_database(), current_user").fetchone()
        assert db is not None
        if make_role(conn, role, ROLE_MARK, "valueverse analysts grant"):
            done.append(f"created role {role}")
        conn.execute(
            sql.SQL(
                f"ALTER ROLE {{}} {LOCKED_DOWN} LOGIN CONNECTION LIMIT {CONNECTION_LIMIT}"
            ).format(ident)
        )
        conn.execute(
            sql.SQL("ALTER ROLE {} SET statement_timeout = {}").format(
                ident, sql.Literal(STATEMENT_TIMEOUT)
            )
        )
        if password:
            set_password(conn, role, password)
            done.append("set its password from VALUEVERSE_ANALYST_PASSWORD (as a SCRAM verifier)")
        database = sql.Identifier(db[0])
        conn.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(database, ident))
        # no temporary tables: TEMP is granted to PUBLIC by default, so it is taken from PUBLIC
        # (the owner keeps it; `valueverse roles apply` grants it to the services that need it)
        conn.execute(sql.SQL("REVOKE TEMPORARY ON DATABASE {} FROM PUBLIC").format(database))
        conn.execute(sql.SQL("REVOKE TEMPORARY ON DATABASE {} FROM {}").format(database, ident))
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(schema))
        conn.execute(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(schema, ident))
        conn.execute(sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA {} TO {}").format(schema, ident))
        # every table dbt creates there later: dbt runs as the schema's owner (`roles apply`
        # gives it to the billing role; without service roles, whoever created it)
        builder = conn.execute(
            "SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = %s",
            (MARTS_SCHEMA,),
        ).fetchone()[0]
        conn.execute(
            sql.SQL(
                "ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA {} GRANT SELECT ON TABLES TO {}"
            ).format(sql.Identifier(builder), schema, ident)
        )
        if has_schema(conn, "raw"):  # nothing on landing data, even if granted by hand before
            conn.execute(sql.SQL("REVOKE ALL ON SCHEMA raw FROM {}").format(ident))
            conn.execute(sql.SQL("REVOKE ALL ON ALL TABLES IN SCHEMA raw FROM {}").format(ident))
        done.append(f"granted read on schema {MARTS_SCHEMA} (now and after every dbt build)")
        done.append(
            f"limits: statement_timeout {STATEMENT_TIMEOUT}, {CONNECTION_LIMIT} connections,"
            " no temporary tables"
        )
    return done
