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

import base64
import hashlib
import hmac
import os
import re
import unicodedata

from psycopg import sql

from ingestion.warehouse import UsageError, WarehouseConfig, connect_postgres

MARTS_SCHEMA = "marts"
_ROLE_RE = re.compile(r"[a-z_][a-z0-9_]{0,62}")
ROLE_MARK = "valueverse analyst (read-only marts)"  # the role's COMMENT: made by this command
STATEMENT_TIMEOUT = "120s"
CONNECTION_LIMIT = 10
_LIMITS = (
    "NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS NOINHERIT LOGIN"
    f" CONNECTION LIMIT {CONNECTION_LIMIT}"
)


def grant_analyst_role(config: WarehouseConfig, role: str, password: str | None) -> list[str]:
    """Create (or update one made here) `role` with read access to the marts only; returns
    what was done. Idempotent: running it again re-applies the same grants and limits."""
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
        db = conn.execute("SELECT current_database(), current_user").fetchone()
        assert db is not None
        if _role_exists(conn, role):
            _refuse_unless_ours(conn, role)
        else:
            conn.execute(sql.SQL("CREATE ROLE {}").format(ident))
            conn.execute(sql.SQL("COMMENT ON ROLE {} IS {}").format(ident, sql.Literal(ROLE_MARK)))
            done.append(f"created role {role}")
        conn.execute(sql.SQL(f"ALTER ROLE {{}} {_LIMITS}").format(ident))
        conn.execute(
            sql.SQL("ALTER ROLE {} SET statement_timeout = {}").format(
                ident, sql.Literal(STATEMENT_TIMEOUT)
            )
        )
        if password:
            verifier = sql.Literal(scram_verifier(password))
            conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(ident, verifier))
            done.append("set its password from VALUEVERSE_ANALYST_PASSWORD (as a SCRAM verifier)")
        database = sql.Identifier(db[0])
        conn.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(database, ident))
        # no temporary tables: TEMP is granted to PUBLIC by default, so it is taken from PUBLIC
        # (the owner keeps it; the services connect as the owner)
        conn.execute(sql.SQL("REVOKE TEMPORARY ON DATABASE {} FROM PUBLIC").format(database))
        conn.execute(sql.SQL("REVOKE TEMPORARY ON DATABASE {} FROM {}").format(database, ident))
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
        done.append(
            f"limits: statement_timeout {STATEMENT_TIMEOUT}, {CONNECTION_LIMIT} connections,"
            " no temporary tables"
        )
    return done


def scram_verifier(password: str, iterations: int = 4096) -> str:
    """The SCRAM-SHA-256 verifier PostgreSQL stores for `password` (RFC 5802 / 7677, in
    PostgreSQL's `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>` form), computed
    here so that the password itself never travels in a statement."""
    salt = os.urandom(16)
    normalized = unicodedata.normalize("NFKC", password).encode()  # SASLprep's core step
    salted = hashlib.pbkdf2_hmac("sha256", normalized, salt, iterations)
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    server_key = hmac.new(salted, b"Server Key", "sha256").digest()
    stored_key = hashlib.sha256(client_key).digest()
    b64 = [base64.b64encode(part).decode() for part in (salt, stored_key, server_key)]
    return f"SCRAM-SHA-256${iterations}:{b64[0]}${b64[1]}:{b64[2]}"


def _role_exists(conn, role: str) -> bool:
    return conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone() is not None


def _refuse_unless_ours(conn, role: str) -> None:
    """An existing role may be updated only if this command created it and nothing else was
    given to it since (memberships, ownership of anything, attributes)."""
    row = conn.execute(
        "SELECT shobj_description(r.oid, 'pg_authid'),"
        " r.rolsuper OR r.rolcreatedb OR r.rolcreaterole OR r.rolreplication OR r.rolbypassrls,"
        " ARRAY(SELECT g.rolname FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid"
        "       WHERE m.member = r.oid ORDER BY 1),"
        " EXISTS (SELECT 1 FROM pg_class WHERE relowner = r.oid)"
        "   OR EXISTS (SELECT 1 FROM pg_namespace WHERE nspowner = r.oid)"
        "   OR EXISTS (SELECT 1 FROM pg_database WHERE datdba = r.oid)"
        " FROM pg_roles r WHERE r.rolname = %s",
        (role,),
    ).fetchone()
    comment, powerful, member_of, owns = row
    problems = [
        *(["it was not created by `valueverse analysts grant`"] if comment != ROLE_MARK else []),
        *(["it has superuser, create or replication rights"] if powerful else []),
        *([f"it is a member of {', '.join(member_of)}"] if member_of else []),
        *(["it owns tables, schemas or databases"] if owns else []),
    ]
    if problems:
        raise UsageError(
            f"role {role} already exists and {'; '.join(problems)}: refused, because setting "
            "its password would hand out everything else it can do. Choose another --role, "
            "or drop that role first."
        )


def _has_schema(conn, name: str) -> bool:
    row = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (name,)).fetchone()
    return row is not None
