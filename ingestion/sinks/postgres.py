"""PostgreSQL / TimescaleDB sink: binary COPY, a global id ledger, set-based dedup.

Per batch, in one transaction:
1. binary COPY of every valid occurrence's (event_id, content_hash, is_first)
   into a temporary staging table;
2. `INSERT ... ON CONFLICT DO NOTHING` of the first occurrences into the
   `raw.event_ids` ledger: first write wins, also against a concurrent
   consumer, because the ledger's primary key is global while `raw.events` is
   partitioned by time (a partitioned table cannot hold a unique index on
   event_id alone);
3. the full rows are binary-COPYed straight into `raw.events` (written once),
   minus the rows that did not win: repeats within the batch (known from
   validation) and first occurrences whose id was already claimed (asked of the
   ledger only when the claim count says there are any). The row stream carries
   its row boundaries, so cutting those few rows out is a byte slice;
4. the rows left out (usually a fraction of a percent) go to a staging table,
   and those whose content differs from the winner's go to raw.event_conflicts;
5. rejects and the batch record.
Never row-by-row INSERTs for events.

`raw.events` is a TimescaleDB hypertable when the extension is available, else
natively range-partitioned by month with partitions created on demand.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass

import psycopg

from ingestion import ddl
from ingestion.landing import Batch, Counts, PreparedBatch
from ingestion.sinks.base import EventSink
from ingestion.warehouse import WarehouseConfig, connect_postgres

# jsonb columns travel as "bytea": its dumper passes bytes through, and we send
# jsonb's binary wire format (version byte 1 + JSON text) ourselves, because
# psycopg's jsonb dumper would serialize our already-serialized JSON again.
_ID_TYPES = ["text", "bytea", "bool", "bytea"]
_EVENT_COLUMNS = (
    "event_id, customer_id, metric, event_ts, quantity, properties_text, properties_num, "
    "content_hash, origin, batch_id, landed_at"
)
_EVENT_TYPES = [
    "text", "text", "text", "timestamp", "numeric", "bytea", "bytea", "bytea", "text", "text",
    "timestamp",
]  # fmt: skip
_SCHEMA_LOCK = 7_171_001  # advisory lock ids: schema creation, partition creation
_PARTITION_LOCK = 7_171_002


_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, flags, extension length
_COPY_TRAILER = b"\xff\xff"


@dataclass(frozen=True)
class PostgresPayload:
    """One batch in binary COPY form: the ids to claim, and the full rows.

    `rows` is the body of a COPY stream (no header or trailer) and `row_ends`
    the byte offset where each row ends, so rows can be left out by slicing.
    """

    ids: bytes
    rows: bytes
    row_ends: array
    event_ids: list[str]
    is_first: list[bool]

    def stream(self, leave_out: list[int]) -> bytes:
        """A complete COPY stream of every row except the (sorted) indices in leave_out."""
        if not leave_out:
            return _COPY_HEADER + self.rows + _COPY_TRAILER
        pieces, start = [_COPY_HEADER], 0
        for index in leave_out:
            pieces.append(self.rows[start : self._row_start(index)])
            start = self.row_ends[index]
        pieces += [self.rows[start:], _COPY_TRAILER]
        return b"".join(pieces)

    def only(self, rows: list[int]) -> bytes:
        """A complete COPY stream of just the (sorted) indices in rows."""
        body = b"".join(self.rows[self._row_start(i) : self.row_ends[i]] for i in rows)
        return _COPY_HEADER + body + _COPY_TRAILER

    def _row_start(self, index: int) -> int:
        return self.row_ends[index - 1] if index else 0


class PostgresSink(EventSink):
    def __init__(self, config: WarehouseConfig) -> None:
        self.config = config
        self.conn = connect_postgres(config)
        self._partitions: set[tuple[int, int]] = set()
        self.timescale = False

    @property
    def kind(self) -> str:
        return "postgres"

    def ensure_schema(self) -> None:
        with self.conn.transaction():
            self.conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            self.conn.execute(ddl.postgres_ddl())
            self.timescale = _enable_timescale(self.conn)
            exists = self.conn.execute("SELECT to_regclass('raw.events') IS NOT NULL").fetchone()
            if not exists or not exists[0]:
                _create_events_table(self.conn, self.timescale)
            _create_stages(self.conn)

    def write(self, batch: PreparedBatch) -> Counts:
        if not self.timescale:
            self._ensure_partitions(batch.months)
        payload = batch.payload
        assert isinstance(payload, PostgresPayload)
        counts = Counts(rejected=len(batch.rejects))
        with self.conn.transaction():
            if batch.n_events:
                self._copy(
                    "pg_temp.stage_ids (event_id, content_hash, is_first, properties)", payload.ids
                )
                counts.accepted = self._claim(batch.batch_id)
                left_out = self._losers(payload, batch.batch_id, counts.accepted)
                self._copy(f"raw.events ({_EVENT_COLUMNS})", payload.stream(left_out))
                if left_out:
                    self._copy(f"pg_temp.stage_events ({_EVENT_COLUMNS})", payload.only(left_out))
                    counts.conflicts = self._record_conflicts(batch)
                counts.duplicates = batch.n_events - counts.accepted - counts.conflicts
            self._insert_rejects(batch)
            self.conn.execute(
                "INSERT INTO raw.ingest_batches VALUES (%s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (batch_id) DO NOTHING",
                (batch.batch_id, batch.source, batch.landing_time, counts.accepted,
                 counts.duplicates, counts.conflicts, counts.rejected),
            )  # fmt: skip
        return counts

    def close(self) -> None:
        self.conn.close()

    def _copy(self, target: str, data: bytes) -> None:
        with self.conn.cursor().copy(f"COPY {target} FROM STDIN (FORMAT BINARY)") as cp:
            cp.write(data)

    def _claim(self, batch_id: str) -> int:
        cur = self.conn.execute(
            """
            INSERT INTO raw.event_ids (event_id, content_hash, batch_id)
            SELECT event_id, content_hash, %s FROM pg_temp.stage_ids WHERE is_first
            ON CONFLICT (event_id) DO NOTHING
            """,
            (batch_id,),
        )
        return cur.rowcount

    def _losers(self, payload: PostgresPayload, batch_id: str, claimed: int) -> list[int]:
        """Indices of rows that did not win their id: in-batch repeats, and first
        occurrences of ids an earlier batch had claimed (asked only if there are any)."""
        firsts = sum(payload.is_first)
        unclaimed: set[str] = set()
        if claimed < firsts:
            rows = self.conn.execute(
                """
                SELECT s.event_id FROM pg_temp.stage_ids s
                WHERE s.is_first AND NOT EXISTS (
                    SELECT 1 FROM raw.event_ids l WHERE l.event_id = s.event_id AND l.batch_id = %s)
                """,
                (batch_id,),
            ).fetchall()
            unclaimed = {r[0] for r in rows}
        return [
            i
            for i, (event_id, first) in enumerate(
                zip(payload.event_ids, payload.is_first, strict=True)
            )
            if not first or event_id in unclaimed
        ]

    def _record_conflicts(self, batch: PreparedBatch) -> int:
        row = self.conn.execute(
            """
            WITH differing AS (
                SELECT s.*, (SELECT i.properties FROM pg_temp.stage_ids i
                             WHERE i.event_id = s.event_id AND i.content_hash = s.content_hash
                             LIMIT 1) AS typed_properties
                FROM pg_temp.stage_events s
                JOIN raw.event_ids l USING (event_id)
                WHERE l.content_hash <> s.content_hash
            ), kept AS (
                INSERT INTO raw.event_conflicts
                SELECT event_id, content_hash, customer_id, metric, event_ts, quantity,
                       typed_properties, origin, %(batch)s, %(landed)s
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

    def _ensure_partitions(self, months: set[tuple[int, int]]) -> None:
        missing = months - self._partitions
        if not missing:
            return
        with self.conn.transaction():
            self.conn.execute("SELECT pg_advisory_xact_lock(%s)", (_PARTITION_LOCK,))
            for year, month in sorted(missing):
                nxt = (year + month // 12, month % 12 + 1)
                self.conn.execute(
                    f"CREATE TABLE IF NOT EXISTS raw.events_y{year:04d}m{month:02d} "
                    f"PARTITION OF raw.events FOR VALUES FROM ('{year:04d}-{month:02d}-01') "
                    f"TO ('{nxt[0]:04d}-{nxt[1]:02d}-01')"
                )
        self._partitions |= missing


def encode_stage(batch: Batch) -> PostgresPayload:
    """The batch as binary COPY streams (see PostgresPayload).

    Uses psycopg's C row formatter without a connection, so a worker process
    can encode while the main process talks to the server.
    """
    ids = _encode(_ID_TYPES, (
        (e.event_id, e.content_hash, first, _jsonb(e.properties))
        for e, first in zip(batch.events, batch.is_first, strict=True)
    ))  # fmt: skip
    rows, row_ends = _encode_rows(_EVENT_TYPES, (
        (e.event_id, e.customer_id, e.metric, e.event_ts, e.quantity, _jsonb(e.properties_text),
         _jsonb(e.properties_num), e.content_hash, origin, batch.batch_id, batch.landing_time)
        for e, origin in zip(batch.events, batch.origins, strict=True)
    ))  # fmt: skip
    return PostgresPayload(
        ids, rows, row_ends, [e.event_id for e in batch.events], list(batch.is_first)
    )


def _jsonb(text: str) -> bytes:
    """jsonb's binary wire format: version 1, then the JSON text."""
    return b"\x01" + text.encode()


def _encode_rows(types: list[str], rows) -> tuple[bytes, array]:
    """COPY body (no header/trailer) and each row's end offset."""
    from psycopg._copy_base import format_row_binary
    from psycopg.adapt import Transformer

    transformer = Transformer()
    transformer.set_dumper_types(
        [psycopg.adapters.types[name].oid for name in types], psycopg.pq.Format.BINARY
    )
    out = bytearray()
    ends = array("q")
    for row in rows:
        format_row_binary(row, transformer, out)
        ends.append(len(out))
    return bytes(out), ends


def _encode(types: list[str], rows) -> bytes:
    from psycopg._copy_base import BinaryFormatter
    from psycopg.adapt import Transformer

    transformer = Transformer()
    transformer.set_dumper_types(
        [psycopg.adapters.types[name].oid for name in types], psycopg.pq.Format.BINARY
    )
    formatter = BinaryFormatter(transformer)
    chunks = []
    for row in rows:
        chunk = formatter.write_row(row)
        if chunk:
            chunks.append(bytes(chunk))
    chunks.append(bytes(formatter.end()))
    return b"".join(chunks)


def _enable_timescale(conn: psycopg.Connection) -> bool:
    row = conn.execute(
        "SELECT count(*) FROM pg_available_extensions WHERE name = 'timescaledb'"
    ).fetchone()
    if not row or not row[0]:
        return False
    conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
    return True


def _create_events_table(conn: psycopg.Connection, timescale: bool) -> None:
    columns = ddl.postgres_events_columns()
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
        "CREATE TEMP TABLE IF NOT EXISTS stage_ids (event_id text, content_hash bytea,"
        " is_first boolean, properties jsonb) ON COMMIT DELETE ROWS"
    )
    conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS stage_events (LIKE raw.events) ON COMMIT DELETE ROWS"
    )
