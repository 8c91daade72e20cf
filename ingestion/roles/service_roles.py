"""Least privilege in the warehouse: a PostgreSQL role per service (`valueverse roles apply`).

| role            | logs in | may                                                            |
|-----------------|---------|----------------------------------------------------------------|
| `<p>_owner`     | never   | owns `raw`, `billing`, `quality`, `notify`, their tables       |
| `<p>_loader`    | ingest  | insert landing rows into `raw`; make this month's partitions   |
| `<p>_billing`   | Dagster | run dbt (owns dbt's schemas), read `raw`, append to `billing`  |
|                 |         | and `quality`, add catalog versions, manage `notify.endpoints`, |
|                 |         | append to `notify.deliveries`                                  |
| `<p>_reader`    | dashboards | read the marts, `analytics`, quality results, dunning events, |
|                 |         | notifications and their deliveries                            |
| `<p>_dagster`   | Dagster | its own run storage, in schema `dagster`                        |
| `<p>_api`       | usage API | read API keys, marts, issued invoices; record webhooks and   |
|                 |         | its rejects                                                    |

Why the owner never logs in: the append-only billing store is safe only from a role that
cannot become its owner. Only an owner can disable a table's triggers, drop it or change its
privileges, and `session_replication_role` (which skips triggers) needs a superuser, so no
service role can undo issued history. The billing role owns what dbt rebuilds (derived from
`raw` and the store, so nothing is lost if it is dropped); it holds INSERT and SELECT on the
store, never UPDATE, DELETE or TRUNCATE. Creating a month's partition needs the owner of
`raw.events`, so the loader calls `raw.create_events_partition`, a SECURITY DEFINER function
that refuses months far from today.

The command runs as the database's administrator (VALUEVERSE_WAREHOUSE), creates or checks the
roles (it refuses a role it did not make, like `analysts grant`), sets passwords given in the
environment as SCRAM verifiers, runs the schema DDL as the owner, moves existing objects to
their owners, and grants. Running it again changes nothing that is already right.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import quote

import psycopg
from psycopg import sql

from ingestion.roles.pg_roles import LOCKED_DOWN, check_name, make_role, set_password
from ingestion.warehouse import UsageError, WarehouseConfig, WarehouseError, connect_postgres

# the owner's: landing, store, quality, keys, notification endpoints and delivery log
OWNED_SCHEMAS = ("raw", "billing", "quality", "api", "notify")
DBT_SCHEMAS = ("analytics", "staging", "intermediate", "marts", "reference")  # the billing role's
DAGSTER_SCHEMA = "dagster"
MARK = "valueverse service role ({})"  # COMMENT of each role this command made
READER_TIMEOUT = "60s"
READER_CONNECTIONS = 20


@dataclass(frozen=True)
class ServiceRole:
    kind: str  # owner | loader | billing | reader | dagster
    login: bool
    may_own: bool
    purpose: str

    def name(self, prefix: str) -> str:
        return f"{prefix}_{self.kind}"

    @property
    def password_env(self) -> str:
        return f"VALUEVERSE_{self.kind.upper()}_PASSWORD"


ROLES = (
    ServiceRole("owner", False, True, "owns the raw, billing and quality schemas"),
    ServiceRole("loader", True, False, "lands events (ingest service, events load)"),
    ServiceRole("billing", True, True, "dbt builds, finalization, payments, quality (Dagster)"),
    ServiceRole("reader", True, False, "reads the marts (dashboards)"),
    ServiceRole("dagster", True, True, "Dagster's run storage"),
    ServiceRole("api", True, False, "the usage API (keys, reads, Stripe webhooks)"),
)


def as_role(config: WarehouseConfig, role: str) -> WarehouseConfig:
    """The same server and login, acting as `role` from the first statement (libpq's
    `options=-c role=...`): how DDL runs as the owner, who cannot log in itself."""
    separator = "&" if "?" in config.url else "?"
    options = quote(f"-c role={role}")
    return WarehouseConfig(config.kind, f"{config.url}{separator}options={options}")


def apply_roles(config: WarehouseConfig, prefix: str = "valueverse") -> list[str]:
    """Create or check the service roles, the schema, ownership and grants; returns what was
    done, a line each. Idempotent."""
    if config.kind != "postgres":
        raise UsageError(
            "service roles are a PostgreSQL feature; the embedded DuckDB file has one user"
        )
    names = {role.kind: role.name(prefix) for role in ROLES}
    for name in names.values():
        check_name(name)
    done: list[str] = []
    try:
        with connect_postgres(config) as conn, conn.transaction():
            _make_roles(conn, names, done)
            _move_ownership(conn, names)
        _create_schema_as_owner(as_role(config, names["owner"]))
        with connect_postgres(config) as conn, conn.transaction():
            _grant(conn, names)
    except psycopg.Error as exc:
        raise WarehouseError(f"roles apply on {config.redacted()} failed: {exc}") from None
    done.append(f"schema {', '.join(OWNED_SCHEMAS)}: owned by {names['owner']}")
    done.append(f"schema {', '.join(DBT_SCHEMAS)}: owned by {names['billing']} (dbt builds them)")
    done.append(
        f"{names['loader']}: insert into raw; {names['billing']}: read raw, append to billing and "
        f"quality; {names['reader']}: read marts, analytics, quality; {names['dagster']}: schema "
        f"{DAGSTER_SCHEMA}; {names['api']}: keys, marts, issued invoices, webhooks"
    )
    return done


def _make_roles(conn, names: dict[str, str], done: list[str]) -> None:
    database, admin, superuser = conn.execute(
        "SELECT current_database(), current_user, rolsuper FROM pg_roles"
        " WHERE rolname = current_user"
    ).fetchone()
    db = sql.Identifier(database)
    for role in ROLES:
        name = names[role.kind]
        ident = sql.Identifier(name)
        if make_role(conn, name, MARK.format(role.kind), "valueverse roles apply", role.may_own):
            done.append(f"created role {name}: {role.purpose}")
        login = "LOGIN" if role.login else "NOLOGIN"
        conn.execute(sql.SQL(f"ALTER ROLE {{}} {LOCKED_DOWN} {login}").format(ident))
        password = os.environ.get(role.password_env)
        if role.login and password:
            set_password(conn, name, password)
            done.append(f"set the password of {name} from {role.password_env} (SCRAM verifier)")
        conn.execute(sql.SQL("GRANT CONNECT, TEMPORARY ON DATABASE {} TO {}").format(db, ident))
    reader = sql.Identifier(names["reader"])
    conn.execute(sql.SQL("ALTER ROLE {} SET statement_timeout = {}").format(
        reader, sql.Literal(READER_TIMEOUT)))  # fmt: skip
    conn.execute(sql.SQL(f"ALTER ROLE {{}} CONNECTION LIMIT {READER_CONNECTIONS}").format(reader))
    conn.execute(sql.SQL("ALTER ROLE {} SET search_path = {}").format(
        sql.Identifier(names["dagster"]), sql.Identifier(DAGSTER_SCHEMA)))  # fmt: skip
    # the owner and dbt make schemas; nobody else creates anything in the database
    for kind in ("owner", "billing"):
        conn.execute(sql.SQL("GRANT CREATE ON DATABASE {} TO {}").format(
            db, sql.Identifier(names[kind])))  # fmt: skip
    if not superuser:  # to act as the owner (SET ROLE) and hand objects to the roles
        for kind in ("owner", "billing", "dagster"):
            conn.execute(sql.SQL("GRANT {} TO {}").format(
                sql.Identifier(names[kind]), sql.Identifier(admin)))  # fmt: skip
    for schema, kind in [*((s, "billing") for s in DBT_SCHEMAS), (DAGSTER_SCHEMA, "dagster")]:
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {} AUTHORIZATION {}").format(
            sql.Identifier(schema), sql.Identifier(names[kind])))  # fmt: skip


def _create_schema_as_owner(owner: WarehouseConfig) -> None:
    """The tables, triggers and functions, created by their owner (each module's own
    idempotent DDL; nothing is re-created where it exists)."""
    from ingestion.api.keys import ensure_key_store
    from ingestion.billing.payments_store import ensure_payments_store
    from ingestion.landing.sinks import backends
    from ingestion.notifications.store import ensure_notify_store
    from ingestion.quality.results import ensure_results_tables

    with backends.open_sink(owner):
        pass
    ensure_payments_store(owner)
    ensure_results_tables(owner)
    ensure_key_store(owner)
    ensure_notify_store(owner)


def _move_ownership(conn, names: dict[str, str]) -> None:
    """Objects made before the roles existed (by the administrator) go to their owners:
    tables, partitions, views, sequences and functions of the owner's schemas, and the
    tables dbt made in its schemas."""
    targets = [*((s, names["owner"]) for s in OWNED_SCHEMAS),
               *((s, names["billing"]) for s in DBT_SCHEMAS)]  # fmt: skip
    for schema, owner in targets:
        if conn.execute("SELECT to_regnamespace(%s)", (schema,)).fetchone()[0] is None:
            continue
        new_owner = sql.Identifier(owner)
        alter = sql.SQL("ALTER SCHEMA {} OWNER TO {}")
        conn.execute(alter.format(sql.Identifier(schema), new_owner))
        relations = conn.execute(
            "SELECT c.relname, CASE c.relkind WHEN 'v' THEN 'VIEW' ELSE 'TABLE' END"
            " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = %s AND c.relkind IN ('r', 'p', 'v')"
            "   AND c.relowner <> to_regrole(%s)",
            (schema, owner),
        ).fetchall()
        for relation, kind in relations:
            conn.execute(sql.SQL(f"ALTER {kind} {{}}.{{}} OWNER TO {{}}").format(
                sql.Identifier(schema), sql.Identifier(relation), new_owner))  # fmt: skip
        functions = conn.execute(
            "SELECT p.oid::regprocedure::text FROM pg_proc p"
            " JOIN pg_namespace n ON n.oid = p.pronamespace"
            " WHERE n.nspname = %s AND p.proowner <> to_regrole(%s)",
            (schema, owner),
        ).fetchall()
        for (signature,) in functions:
            conn.execute(sql.SQL(f"ALTER FUNCTION {signature} OWNER TO {{}}").format(new_owner))


def _grant(conn, names: dict[str, str]) -> None:
    role = {kind: sql.Identifier(name) for kind, name in names.items()}

    def run(statement: str, *idents: sql.Composable) -> None:
        conn.execute(sql.SQL(statement).format(*idents))

    # the loader: landing rows and catalog versions, nothing else
    run("GRANT USAGE ON SCHEMA raw TO {}", role["loader"])
    run("GRANT SELECT, INSERT ON ALL TABLES IN SCHEMA raw TO {}", role["loader"])
    run("GRANT EXECUTE ON FUNCTION raw.create_events_partition(integer, integer) TO {}",
        role["loader"])  # fmt: skip
    run("GRANT EXECUTE ON FUNCTION raw.maintain_statistics() TO {}", role["billing"])
    # billing: reads landing, appends to the store and quality results, adds catalog versions
    for schema in ("raw", "billing", "quality"):
        ident = sql.Identifier(schema)
        run("GRANT USAGE ON SCHEMA {} TO {}", ident, role["billing"])
        run("GRANT SELECT ON ALL TABLES IN SCHEMA {} TO {}", ident, role["billing"])
        if schema != "raw":
            run("GRANT INSERT ON ALL TABLES IN SCHEMA {} TO {}", ident, role["billing"])
    catalog_tables = conn.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'raw' AND tablename LIKE 'catalog%%'"
    ).fetchall()
    for (table,) in catalog_tables:
        run("GRANT INSERT ON raw.{} TO {}", sql.Identifier(table), role["billing"])
    # the reader: what the dashboards show, now and after every dbt build
    for schema in ("marts", "analytics"):
        ident = sql.Identifier(schema)
        run("GRANT USAGE ON SCHEMA {} TO {}", ident, role["reader"])
        run("GRANT SELECT ON ALL TABLES IN SCHEMA {} TO {}", ident, role["reader"])
        run("ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA {} GRANT SELECT ON TABLES TO {}",
            role["billing"], ident, role["reader"])  # fmt: skip
    for schema in ("quality", "billing"):
        run("GRANT USAGE ON SCHEMA {} TO {}", sql.Identifier(schema), role["reader"])
    run("GRANT SELECT ON ALL TABLES IN SCHEMA quality TO {}", role["reader"])
    run("GRANT SELECT ON billing.dunning_events TO {}", role["reader"])
    # notifications: billing (the delivery job, `valueverse webhooks`) manages endpoints and
    # appends to the delivery log, never rewrites it; the dashboards read both and the outbox
    run("GRANT USAGE ON SCHEMA notify TO {}, {}", role["billing"], role["reader"])
    run("GRANT SELECT, INSERT, UPDATE ON notify.endpoints TO {}", role["billing"])
    run("GRANT SELECT, INSERT ON notify.deliveries TO {}", role["billing"])
    run("GRANT SELECT ON notify.endpoints, notify.deliveries, billing.notifications TO {}",
        role["reader"])  # fmt: skip
    # the usage API: its keys, what customers may read, and the webhooks' payment states
    for schema in ("api", "marts", "analytics", "billing"):
        run("GRANT USAGE ON SCHEMA {} TO {}", sql.Identifier(schema), role["api"])
    run("GRANT SELECT ON api.keys TO {}", role["api"])
    run("GRANT SELECT ON ALL TABLES IN SCHEMA billing TO {}", role["api"])
    run("GRANT INSERT ON billing.payment_attempts, billing.dunning_events, billing.webhook_events,"
        " billing.notifications TO {}", role["api"])  # fmt: skip
    run("GRANT USAGE ON SCHEMA raw TO {}", role["api"])  # its rejects, as every landing path
    run("GRANT INSERT ON raw.rejected_events, raw.ingest_batches TO {}", role["api"])
    # ON CONFLICT reads the key columns it checks, and nothing else of the rows
    run("GRANT SELECT (origin, payload_hash) ON raw.rejected_events TO {}", role["api"])
    run("GRANT SELECT (batch_id) ON raw.ingest_batches TO {}", role["api"])
    for schema in ("marts", "analytics"):
        ident = sql.Identifier(schema)
        run("GRANT SELECT ON ALL TABLES IN SCHEMA {} TO {}", ident, role["api"])
        run("ALTER DEFAULT PRIVILEGES FOR ROLE {} IN SCHEMA {} GRANT SELECT ON TABLES TO {}",
            role["billing"], ident, role["api"])  # fmt: skip
    # nothing else may create anything, anywhere
    run("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
