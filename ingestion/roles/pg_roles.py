"""What every role command shares: role names, SCRAM verifiers, and refusing a role it did not make.

Why a mark: setting a password on, or granting to, a role someone else made would hand out
whatever else that role can do (a member of pg_read_all_data, the owner itself). So each
command marks the roles it creates with a COMMENT and takes over an existing role only when it
carries that mark and has gained no attribute or membership since.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import unicodedata

from psycopg import sql

from ingestion.warehouse import UsageError

ROLE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
LOCKED_DOWN = "NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS NOINHERIT"


def check_name(role: str) -> None:
    if not ROLE_NAME.fullmatch(role):
        raise UsageError(f"role name {role!r} must match [a-z_][a-z0-9_]{{0,62}}")


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


def set_password(conn, role: str, password: str) -> None:
    verifier = sql.Literal(scram_verifier(password))
    conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(role), verifier))


def make_role(conn, role: str, mark: str, command: str, may_own: bool = False) -> bool:
    """Create `role` with the COMMENT `mark`, or check that the existing one is ours (see the
    module's docstring); True when it was created. `may_own`: the role owns objects by design
    (the store's owner, dbt's schemas), so owning something is not a sign of another's hand."""
    ident = sql.Identifier(role)
    if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone() is None:
        conn.execute(sql.SQL("CREATE ROLE {}").format(ident))
        conn.execute(sql.SQL("COMMENT ON ROLE {} IS {}").format(ident, sql.Literal(mark)))
        return True
    comment, powerful, member_of, owns = conn.execute(
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
    problems = [
        *([f"it was not created by `{command}`"] if comment != mark else []),
        *(["it has superuser, create or replication rights"] if powerful else []),
        *([f"it is a member of {', '.join(member_of)}"] if member_of else []),
        *(["it owns tables, schemas or databases"] if owns and not may_own else []),
    ]
    if problems:
        raise UsageError(
            f"role {role} already exists and {'; '.join(problems)}: refused, because setting "
            "its password would hand out everything else it can do. Choose another name, "
            "or drop that role first."
        )
    return False


def has_schema(conn, name: str) -> bool:
    row = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (name,)).fetchone()
    return row is not None
