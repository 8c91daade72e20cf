"""API keys: created and revoked by `valueverse api-keys`, checked by the usage API.

A token is `vvk_<key id>_<secret>`. Only the SHA-256 of the secret is stored (the secret is
32 random bytes, so a fast hash is enough: nobody can guess it, and a stolen table gives no
token). The token is printed once, at creation.

Why a cache with a short life: every request carries a token, and asking the warehouse each
time would put it on the request path. Each server process keeps what it read for
KEY_CACHE_SECONDS, so a revocation takes effect on every replica within that time; unknown
ids are cached as unknown too (in a bounded table), so random tokens cannot hammer the store.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime

from ingestion.warehouse import Session, UsageError, WarehouseConfig, connect, transaction

SCOPES = ("events:write", "usage:read", "invoices:read")
# bandit: the public prefix that marks a token as ours (like sk_ at Stripe), not a secret
TOKEN_PREFIX = "vvk_"  # nosec B105
KEY_CACHE_SECONDS = 2.0
KEY_STORE_WAIT_SECONDS = 2.0
_CACHE_ENTRIES = 10_000
_ID_CHARS = 12

DDL = [
    "CREATE SCHEMA IF NOT EXISTS api",
    """CREATE TABLE IF NOT EXISTS api.keys (
        key_id               VARCHAR PRIMARY KEY,
        name                 VARCHAR NOT NULL,
        secret_sha256        VARCHAR NOT NULL,
        scopes               VARCHAR NOT NULL,   -- comma-separated, from SCOPES
        customers            VARCHAR,            -- comma-separated; NULL: every customer
        requests_per_second  INTEGER,            -- NULL: the server's default
        events_per_second    INTEGER,
        created_at           TIMESTAMP NOT NULL, -- UTC
        revoked_at           TIMESTAMP
    )""",
]
_COLUMNS = (
    "key_id, name, secret_sha256, scopes, customers, requests_per_second, events_per_second,"
    " created_at, revoked_at"
)


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    name: str
    secret_sha256: str
    scopes: frozenset[str]
    customers: frozenset[str] | None  # None: every customer
    requests_per_second: int | None
    events_per_second: int | None
    created_at: datetime
    revoked_at: datetime | None

    @classmethod
    def from_row(cls, row: tuple) -> ApiKey:
        key_id, name, digest, scopes, customers, rps, eps, created, revoked = row
        return cls(key_id, name, digest, frozenset(scopes.split(",")),
                   frozenset(customers.split(",")) if customers else None,
                   rps, eps, created, revoked)  # fmt: skip

    def allows_customer(self, customer_id: str) -> bool:
        return self.customers is None or customer_id in self.customers


def ensure_key_store(config: WarehouseConfig) -> None:
    with transaction(config) as db:
        _ensure(db)


def _ensure(db: Session) -> None:
    """Create the table unless it exists: the API's role may not run DDL."""
    if not db.value(
        "SELECT count(*) FROM information_schema.tables"
        " WHERE table_schema = 'api' AND table_name = 'keys'"
    ):
        for statement in DDL:
            db.execute(statement)


def create_key(
    config: WarehouseConfig,
    name: str,
    scopes: list[str],
    customers: list[str] | None = None,
    requests_per_second: int | None = None,
    events_per_second: int | None = None,
) -> tuple[ApiKey, str]:
    """Store a new key; returns it and its token (shown once, never stored)."""
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        raise UsageError(f"scopes must be among {', '.join(SCOPES)}; got {', '.join(scopes)}")
    if not name.strip():
        raise UsageError("a key needs a --name that says who uses it")
    key_id = secrets.token_hex(_ID_CHARS // 2)
    secret = secrets.token_urlsafe(32)
    row = (key_id, name.strip(), _digest(secret), ",".join(sorted(set(scopes))),
           ",".join(sorted(set(customers))) if customers else None,
           requests_per_second, events_per_second,
           datetime.now(UTC).replace(tzinfo=None, microsecond=0), None)  # fmt: skip
    with transaction(config) as db:
        _ensure(db)
        db.execute(f"INSERT INTO api.keys ({_COLUMNS}) VALUES ({', '.join(['%s'] * 9)})", row)
    return ApiKey.from_row(row), f"{TOKEN_PREFIX}{key_id}_{secret}"


def list_keys(config: WarehouseConfig) -> list[ApiKey]:
    with transaction(config) as db:
        _ensure(db)
        rows = db.rows(f"SELECT {_COLUMNS} FROM api.keys ORDER BY created_at, key_id")
    return [ApiKey.from_row(row) for row in rows]


def revoke_key(config: WarehouseConfig, key_id: str) -> bool:
    """Revoke `key_id`; False when it was revoked already. Unknown ids are a UsageError."""
    with transaction(config) as db:
        _ensure(db)
        row = db.one("SELECT revoked_at FROM api.keys WHERE key_id = %s", [key_id])
        if row is None:
            raise UsageError(f"no API key {key_id!r} (see `valueverse api-keys list`)")
        if row[0] is not None:
            return False
        now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
        db.execute("UPDATE api.keys SET revoked_at = %s WHERE key_id = %s", [now, key_id])
    return True


def split_token(token: str) -> tuple[str, str] | None:
    """(key id, secret) of a well-formed token, else None."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    key_id, _, secret = token[len(TOKEN_PREFIX) :].partition("_")
    if len(key_id) != _ID_CHARS or not secret:
        return None
    return key_id, secret


def _matching(key: ApiKey | None, secret: str) -> ApiKey | None:
    """`key` when it is live and `secret` is its secret."""
    if key is None or key.revoked_at is not None:
        return None
    return key if hmac.compare_digest(key.secret_sha256, _digest(secret)) else None


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class KeyVerifier:
    """Checks bearer tokens against the store, through a per-process cache (see the module)."""

    def __init__(self, config: WarehouseConfig, ttl: float = KEY_CACHE_SECONDS) -> None:
        self.config = config
        self.ttl = ttl
        self._cache: OrderedDict[str, tuple[float, ApiKey | None]] = OrderedDict()
        self._lock = threading.Lock()
        self._reads: dict[str, asyncio.Future[ApiKey | None]] = {}  # on the event loop only

    def verify(self, token: str) -> ApiKey | None:
        """The live key a token belongs to, or None (malformed, unknown, wrong, revoked)."""
        parts = split_token(token)
        if parts is None:
            return None
        return _matching(self._lookup(parts[0]), parts[1])

    async def verify_async(self, token: str) -> ApiKey | None:
        """`verify` from the event loop: a cached key at once; one the cache lacks (or holds
        for too long) is read in a thread, once for every request that needs it meanwhile.
        Before, each request did its own read: at 1,000 requests/s every expiry of the cache
        sent the next ~20-50 ms of requests to open the warehouse each (on DuckDB a database
        instance, ~20 CPU-ms apiece), a burst of CPU every KEY_CACHE_SECONDS."""
        parts = split_token(token)
        if parts is None:
            return None
        key_id, secret = parts
        fresh, key = self._cached(key_id)
        if not fresh:
            read = self._reads.get(key_id)
            if read is None:
                read = asyncio.get_running_loop().run_in_executor(None, self._lookup, key_id)
                self._reads[key_id] = read
                read.add_done_callback(lambda _: self._reads.pop(key_id, None))
            key = await asyncio.shield(read)
        return _matching(key, secret)

    def _cached(self, key_id: str) -> tuple[bool, ApiKey | None]:
        """(whether the cache holds `key_id` from less than `ttl` ago, what it holds)."""
        with self._lock:
            cached = self._cache.get(key_id)
        if cached is None or time.monotonic() - cached[0] >= self.ttl:
            return False, None
        return True, cached[1]

    def ping(self) -> None:
        """Raises when the store cannot be read (readiness)."""
        with connect(self.config, read_only=True) as db:
            db.value("SELECT count(*) FROM api.keys")

    def _lookup(self, key_id: str) -> ApiKey | None:
        now = time.monotonic()
        fresh, key = self._cached(key_id)
        if fresh:
            return key
        # waits a little for a writer: on DuckDB the server's own rejects (rejects.py) hold the
        # file for a moment, and a read refused at once was a 500
        with connect(self.config, read_only=True, wait=KEY_STORE_WAIT_SECONDS) as db:
            row = db.one(f"SELECT {_COLUMNS} FROM api.keys WHERE key_id = %s", [key_id])
        key = ApiKey.from_row(row) if row else None
        with self._lock:
            self._cache[key_id] = (now, key)
            self._cache.move_to_end(key_id)
            while len(self._cache) > _CACHE_ENTRIES:
                self._cache.popitem(last=False)
        return key
