"""PostgreSQL / TimescaleDB sink: binary COPY, a global id ledger, set-based dedup.

Per batch, in one transaction:
1. binary COPY of the first occurrence in the batch of each id
   (event_id, content_hash) into a temporary staging table;
2. `INSERT ... ON CONFLICT DO NOTHING` of those into the
   `raw.event_ids` ledger: first write wins, also against a concurrent
   consumer, because the ledger's primary key is global while `raw.events` is
   partitioned by time (a partitioned table cannot hold a unique index on
   event_id alone);
3. the full rows are binary-COPYed straight into `raw.events` (written once),
   minus the rows that did not win: repeats within the batch (known from
   validation) and first occurrences whose id was already claimed (asked of the
   ledger only when the claim count says there are any). The row stream carries
   its row boundaries, so cutting those few rows out is a byte slice;
4. the rows left out (usually a fraction of a percent) go to a staging table
   with their typed properties, and those whose content differs from the
   winner's go to raw.event_conflicts;
5. rejects and the batch record.
Never row-by-row INSERTs for events. The COPY streams are built column-wise
from the batch's Arrow table (sinks/pgcopy.py), in a worker process.

`raw.events` is a TimescaleDB hypertable when the extension is available, else
natively range-partitioned by month with partitions created on demand, for the months from
PARTITION_MONTHS_BACK before the batch's landing month to the month after it. Events outside
that window (history, or hostile timestamps spread over centuries) land in the DEFAULT
partition `raw.events_other`: one batch never creates more than that many partitions, and
never more than PARTITIONS_PER_TRANSACTION in one transaction (each holds locks until commit).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import psycopg
import pyarrow as pa
import pyarrow.compute as pc

from ingestion.landing import fastlane, raw_ddl
from ingestion.landing.sinks import pgcopy
from ingestion.landing.sinks.contract import Counts, EventSink, PreparedBatch, ValidatedEvents
from ingestion.warehouse import WarehouseConfig, connect_postgres

_EVENT_COLUMNS = (
    "event_id, customer_id, metric, event_ts, quantity, properties_text, properties_num, "
    "content_hash, origin, batch_id, landed_at"
)
_LOSER_FIELD_COUNT = (12).to_bytes(2, "big")  # raw.events' 11 columns + properties
_SCHEMA_LOCK = 7_171_001  # advisory lock ids: schema creation, partition creation
PARTITION_MONTHS_BACK = 36
PARTITIONS_PER_TRANSACTION = 12
_PARTITION_LOCK = 7_171_002


@dataclass(frozen=True)
class CopyRows:
    """The body of a binary COPY stream (no header or trailer) and the byte offset
    where each row ends, so rows can be left out by slicing."""

    body: bytes
    ends: np.ndarray

    def stream(self, leave_out: np.ndarray | None = None) -> list[bytes | memoryview]:
        """A complete COPY stream of every row except the (sorted) indices in leave_out,
        as pieces to write one after the other (no copy of the rows kept)."""
        body = memoryview(self.body)
        if leave_out is None or not len(leave_out):
            return [pgcopy.HEADER, body, pgcopy.TRAILER]
        pieces, start = [pgcopy.HEADER], 0
        for index in leave_out.tolist():
            pieces.append(body[start : int(self.ends[index - 1]) if index else 0])
            start = int(self.ends[index])
        pieces += [body[start:], pgcopy.TRAILER]
        return pieces


@dataclass(frozen=True)
class PostgresPayload:
    """One batch in binary COPY form, encoded in a worker.

    `ids`: (event_id, content_hash) of the first occurrence of each id in the
    batch, in order; `rows`: every event as a raw.events row; `events`: the
    batch table (ids, first-occurrence flags, and what a conflict row needs).
    """

    ids: CopyRows
    rows: CopyRows
    events: pa.Table  # event_id, is_first, content_hash, properties (typed, for conflicts)
    id_hashes: np.ndarray  # uint64 per first occurrence, for RecentIds

    def loser_rows(self, indices: np.ndarray) -> bytes:
        """COPY stream for pg_temp.stage_events: the raw.events rows at `indices`
        (sliced from `rows`) with their typed properties appended as a 12th field."""
        typed = self.events.column("properties").take(indices)
        properties = pgcopy.field_bytes(pgcopy.jsonb(typed)).to_pylist()
        body, ends = self.rows.body, self.rows.ends
        pieces = []
        for index, extra in zip(indices.tolist(), properties, strict=True):
            start = int(ends[index - 1]) if index else 0
            pieces += [_LOSER_FIELD_COUNT, body[start + 2 : int(ends[index])], extra]
        return pgcopy.stream(b"".join(pieces))


class RecentIds:
    """64-bit hashes of the ids this sink claimed in its last committed batches.

    Why: most duplicates are retries that arrive soon after the original. An
    id whose hash is here is probably claimed already, so it is left out of the
    plain COPY into the ledger (which would fail on it) and claimed on its own
    with INSERT ... ON CONFLICT DO NOTHING, which settles it either way (a hash
    collision included). Kept as a sorted array: a batch is checked with one
    binary search per id and merged in by one sort of two sorted runs.
    """

    def __init__(self, capacity: int = 4_000_000) -> None:
        self.capacity = capacity
        self._sorted = np.empty(0, np.uint64)
        self._batches: deque[np.ndarray] = deque()  # for eviction, oldest first

    def candidates(self, hashes: np.ndarray) -> np.ndarray:
        """Positions in `hashes` of the ids that are probably claimed already."""
        if not len(self._sorted) or not len(hashes):
            return np.empty(0, np.int64)
        order = np.argsort(hashes)  # sorted keys: the binary searches walk memory in order
        keys = hashes[order]
        at = np.minimum(np.searchsorted(self._sorted, keys), len(self._sorted) - 1)
        return np.sort(order[self._sorted[at] == keys])

    def add(self, hashes: np.ndarray) -> None:
        self._batches.append(hashes)
        merged = np.concatenate([self._sorted, np.sort(hashes)])
        if sum(len(b) for b in self._batches) > self.capacity and len(self._batches) > 1:
            self._batches.popleft()
            merged = np.concatenate(list(self._batches))
        merged.sort(kind="stable")  # timsort: two sorted runs merge in linear time
        self._sorted = merged


def encode_stage(batch: ValidatedEvents) -> PostgresPayload:
    """The batch as binary COPY streams (see PostgresPayload); runs in a worker."""
    events = batch.events
    firsts = events.filter(events.column("is_first"))
    ids = pgcopy.rows([pgcopy.text(firsts.column("event_id")),
                       pgcopy.text(firsts.column("content_hash"))])  # fmt: skip
    rows = pgcopy.rows(_event_fields(events, batch.batch_id, batch.landing_time))
    # what the writer needs besides the streams; the rest of a losing row is in `rows`
    keep = events.select(["event_id", "is_first", "content_hash", "properties"])
    return PostgresPayload(CopyRows(*ids), CopyRows(*rows), keep, id_hashes(firsts))


class PostgresSink(EventSink):
    encode = staticmethod(encode_stage)

    def __init__(self, config: WarehouseConfig) -> None:
        self.config = config
        self.conn = connect_postgres(config)
        self._partitions: set[tuple[int, int]] = set()
        self._recent = RecentIds()
        self.timescale = False

    def ensure_schema(self) -> None:
        with self.conn.transaction():
            ensure_raw_schema(self.conn)
            kind = self.conn.execute(
                "SELECT relkind FROM pg_class WHERE oid = 'raw.events'::regclass"
            ).fetchone()
            self.timescale = kind is not None and kind[0] != "p"  # a hypertable is a plain table
            _create_stages(self.conn)

    def write(self, batch: PreparedBatch) -> Counts:
        if not self.timescale:
            self._ensure_partitions(batch.months, batch.landing_time)
        counts = Counts(rejected=len(batch.rejects))
        claimed = np.empty(0, np.uint64)
        with self.conn.transaction():
            if batch.n_events:  # else payload may be None: a batch of rejects only
                payload = batch.payload
                assert isinstance(payload, PostgresPayload)
                counts.accepted, left_out, claimed = self._claim(payload)
                self._copy(f"raw.events ({_EVENT_COLUMNS})", payload.rows.stream(left_out))
                if len(left_out):
                    losers = payload.loser_rows(left_out)
                    self._copy(f"pg_temp.stage_events ({_EVENT_COLUMNS}, properties)", losers)
                    counts.conflicts = self._record_conflicts(batch)
                counts.duplicates = batch.n_events - counts.accepted - counts.conflicts
            self._insert_rejects(batch)
            self.conn.execute(
                "INSERT INTO raw.ingest_batches VALUES (%s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (batch_id) DO NOTHING",
                (batch.batch_id, batch.source, batch.landing_time, counts.accepted,
                 counts.duplicates, counts.conflicts, counts.rejected),
            )  # fmt: skip
        self._recent.add(claimed)  # committed: these ids are claimed for good
        return counts

    def close(self) -> None:
        self.conn.close()

    def _copy(self, target: str, data: bytes | list[bytes | memoryview]) -> None:
        with self.conn.cursor().copy(f"COPY {target} FROM STDIN (FORMAT BINARY)") as cp:
            for piece in [data] if isinstance(data, bytes) else data:
                cp.write(piece)

    def _claim(self, payload: PostgresPayload) -> tuple[int, np.ndarray, np.ndarray]:
        """Claim the batch's ids in the ledger (first write wins).

        Returns the number of ids claimed, the indices of the rows that did not
        win (in-batch repeats, first occurrences of ids claimed earlier) and the
        hashes of the ids claimed. Fast path: the first occurrences are COPYed
        straight into the ledger, except those RecentIds suspects, which are
        claimed by INSERT ... ON CONFLICT DO NOTHING. The ledger's primary key
        refuses any other id claimed meanwhile (after waiting for a concurrent
        writer's outcome); then the savepoint is rolled back and the general
        path runs: COPY into a staging table, INSERT ... ON CONFLICT DO NOTHING.
        """
        events = payload.events
        is_first = events.column("is_first").to_numpy(zero_copy_only=False)
        firsts = np.flatnonzero(is_first)
        first_ids = events.column("event_id").take(firsts)
        suspects = self._recent.candidates(payload.id_hashes)
        try:
            with self.conn.transaction():  # a savepoint
                self._copy("raw.event_ids (event_id, content_hash)", payload.ids.stream(suspects))
            won = np.ones(len(firsts), bool)
            if len(suspects):
                hashes = events.column("content_hash").take(firsts).take(suspects)
                won[suspects] = self._insert_claims(first_ids.take(suspects), hashes)
        except (psycopg.errors.UniqueViolation, psycopg.errors.DeadlockDetected):
            self._copy("pg_temp.stage_ids (event_id, content_hash)", payload.ids.stream())
            won = self._insert_claims(first_ids, None)
        lost = ~is_first
        lost[firsts[~won]] = True
        return int(won.sum()), np.flatnonzero(lost), payload.id_hashes[won]

    def _insert_claims(self, ids: pa.Array, hashes: pa.Array | None) -> np.ndarray:
        """INSERT ... ON CONFLICT DO NOTHING of (id, hash) pairs, from the staging
        table (hashes None) or from arrays; returns which of `ids` were won."""
        source = "pg_temp.stage_ids"
        params: tuple = ()
        if hashes is not None:
            source = "unnest(%s::text[], %s::bytea[]) AS s (event_id, content_hash)"
            params = (ids.to_pylist(), hashes.to_pylist())
        cur = self.conn.cursor(binary=True)
        cur.execute(
            f"""
            INSERT INTO raw.event_ids (event_id, content_hash)
            SELECT event_id, content_hash FROM {source}
            ON CONFLICT (event_id) DO NOTHING
            RETURNING event_id
            """,
            params,
        )
        claimed = pa.array([r[0] for r in cur.fetchall()], pa.string())
        return pc.is_in(ids, claimed).to_numpy(zero_copy_only=False)

    def _record_conflicts(self, batch: PreparedBatch) -> int:
        row = self.conn.execute(
            """
            WITH differing AS (
                SELECT s.* FROM pg_temp.stage_events s
                JOIN raw.event_ids l USING (event_id)
                WHERE l.content_hash <> s.content_hash
            ), kept AS (
                INSERT INTO raw.event_conflicts
                SELECT event_id, content_hash, customer_id, metric, event_ts, quantity,
                       properties, origin, %(batch)s, %(landed)s
                FROM differing
                ON CONFLICT (event_id, content_hash) DO NOTHING
            )
            SELECT count(*) FROM differing
            """,
            {"batch": batch.batch_id, "landed": batch.landing_time},
        ).fetchone()
        return int(row[0]) if row else 0

    def _insert_rejects(self, batch: PreparedBatch) -> None:
        if not batch.rejects:
            return
        with self.conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO raw.rejected_events VALUES (%s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (origin, payload_hash) DO NOTHING",
                [(r.origin, r.payload_hash, r.payload, r.rule, r.detail, batch.batch_id,
                  batch.landing_time) for r in batch.rejects],
            )  # fmt: skip

    def _ensure_partitions(self, months: set[tuple[int, int]], landing: datetime) -> None:
        """A partition for each month of the batch inside the window (see the module's
        docstring), a few per transaction. A month whose rows already sit in the DEFAULT
        partition keeps them there (PostgreSQL refuses the new partition)."""
        newest = landing.year * 12 + landing.month  # the month after the landing month, 0-based
        window = range(newest - 1 - PARTITION_MONTHS_BACK, newest + 1)
        missing = sorted(m for m in months - self._partitions if m[0] * 12 + m[1] - 1 in window)
        for start in range(0, len(missing), PARTITIONS_PER_TRANSACTION):
            with self.conn.transaction():
                self.conn.execute("SELECT pg_advisory_xact_lock(%s)", (_PARTITION_LOCK,))
                for year, month in missing[start : start + PARTITIONS_PER_TRANSACTION]:
                    self._create_partition(year, month)
        self._partitions |= set(missing)

    def _create_partition(self, year: int, month: int) -> None:
        try:
            with self.conn.transaction():  # a savepoint: a refusal leaves the others
                self.conn.execute("SELECT raw.create_events_partition(%s, %s)", (year, month))
        except psycopg.errors.CheckViolation:  # the DEFAULT partition holds rows of it
            pass


def id_hashes(events: pa.Table) -> np.ndarray:
    """64-bit hashes of the event ids (see RecentIds)."""
    return fastlane.hash_strings(events.column("event_id"))


def _event_fields(events: pa.Table, batch_id: str, landed_at) -> list[pgcopy.Field]:
    """raw.events' columns (_EVENT_COLUMNS order) as encoded COPY fields."""
    col = events.column
    return [
        pgcopy.text(col("event_id")),
        pgcopy.text(col("customer_id")),
        pgcopy.text(col("metric")),
        pgcopy.timestamp(col("event_ts")),
        pgcopy.numeric_9(
            col("quantity_int").to_numpy(zero_copy_only=False),
            col("quantity_frac9").to_numpy(zero_copy_only=False),
        ),
        pgcopy.jsonb(col("properties_text")),
        pgcopy.jsonb(col("properties_num")),
        pgcopy.text(col("content_hash")),
        pgcopy.text(col("origin")),
        pgcopy.constant_text(batch_id),
        pgcopy.constant_timestamp(landed_at),
    ]


def ensure_raw_schema(conn: psycopg.Connection) -> None:
    """Create the raw schema unless it is all there (inside the caller's transaction). Checked
    first because the loader role may not run DDL at all, not even a CREATE ... IF NOT EXISTS
    of what exists (ingestion/roles/service_roles.py)."""
    if _raw_schema_ready(conn):
        return
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
    conn.execute(raw_ddl.postgres_ddl())
    timescale = _enable_timescale(conn)
    exists = conn.execute("SELECT to_regclass('raw.events')").fetchone()
    if not exists or not exists[0]:
        _create_events_table(conn, timescale)
    if not timescale:
        conn.execute("CREATE TABLE IF NOT EXISTS raw.events_other PARTITION OF raw.events DEFAULT")


def _raw_schema_ready(conn: psycopg.Connection) -> bool:
    row = conn.execute(
        "SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        "        WHERE n.nspname = 'raw' AND c.relname = ANY(%s)) = %s"
        " AND (SELECT bool_and(to_regprocedure(f) IS NOT NULL) FROM unnest(%s::text[]) AS f)",
        (list(raw_ddl.POSTGRES_TABLES), len(raw_ddl.POSTGRES_TABLES), list(raw_ddl.FUNCTIONS)),
    ).fetchone()
    return bool(row and row[0])


def _enable_timescale(conn: psycopg.Connection) -> bool:
    row = conn.execute(
        "SELECT count(*) FROM pg_available_extensions WHERE name = 'timescaledb'"
    ).fetchone()
    if not row or not row[0]:
        return False
    conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
    return True


def _create_events_table(conn: psycopg.Connection, timescale: bool) -> None:
    columns = raw_ddl.postgres_events_columns()
    if timescale:
        conn.execute(f"CREATE TABLE raw.events ({columns})")
        conn.execute(
            "SELECT create_hypertable('raw.events', 'event_ts',"
            " chunk_time_interval => interval '1 month', if_not_exists => true)"
        )
    else:
        conn.execute(f"CREATE TABLE raw.events ({columns}) PARTITION BY RANGE (event_ts)")
    # Rating scans whole periods, so no btree: each one would cost ~30% of the
    # landing rate (measured). A BRIN index on landed_at serves incremental
    # builds ("what landed since the last run") at almost no write cost.
    conn.execute(
        "CREATE INDEX IF NOT EXISTS events_landed_brin ON raw.events USING brin (landed_at)"
    )


def _create_stages(conn: psycopg.Connection) -> None:
    """Session-private staging tables; emptied at every commit."""
    conn.execute(
        'CREATE TEMP TABLE IF NOT EXISTS stage_ids (event_id text COLLATE "C",'
        " content_hash bytea) ON COMMIT DELETE ROWS"
    )
    conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS stage_events (LIKE raw.events, properties jsonb)"
        " ON COMMIT DELETE ROWS"
    )
