"""DuckDB sink (the embedded default): an Arrow table in, set-based dedup in SQL.

DuckDB is single-writer per file, so no ledger table is needed: the anti-join
against raw.events inside the batch's transaction is race-free. The batch is
handed to DuckDB as an Arrow table (zero-copy scan), never row by row.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from ingestion.landing import raw_ddl
from ingestion.landing.sinks.contract import Counts, EventSink, PreparedBatch, ValidatedEvents
from ingestion.warehouse import WarehouseConfig, connect_duckdb

_STAGE_SCHEMA = pa.schema(
    [
        ("is_first", pa.bool_()),
        ("event_id", pa.string()),
        ("customer_id", pa.string()),
        ("metric", pa.string()),
        ("event_ts", pa.timestamp("us")),
        ("quantity", pa.decimal128(21, 9)),
        ("properties", pa.string()),
        ("properties_text", pa.string()),
        ("properties_num", pa.string()),
        ("content_hash", pa.binary()),
        ("origin", pa.string()),
    ]
)


def encode_stage(batch: ValidatedEvents) -> pa.Table:
    """The batch's events as an Arrow table (DuckDB scans it without copying)."""
    events = batch.events
    quantity = pc.cast(events.column("quantity_text"), pa.decimal128(21, 9))
    columns = {name: events.column(name) for name in _STAGE_SCHEMA.names if name != "quantity"}
    columns["quantity"] = quantity
    return pa.table([columns[name] for name in _STAGE_SCHEMA.names], schema=_STAGE_SCHEMA)


class DuckDBSink(EventSink):
    encode = staticmethod(encode_stage)

    def __init__(self, config: WarehouseConfig) -> None:
        self.config = config
        self.conn = connect_duckdb(config)

    def ensure_schema(self) -> None:
        _run(self.conn, raw_ddl.duckdb_ddl())

    def write(self, batch: PreparedBatch) -> Counts:
        counts = Counts(rejected=len(batch.rejects))
        con = self.conn
        con.begin()
        try:
            if batch.n_events:
                con.register("stage_events", batch.payload)
                counts.accepted, counts.conflicts = self._land(batch)
                counts.duplicates = batch.n_events - counts.accepted - counts.conflicts
                con.unregister("stage_events")
            if batch.rejects:
                con.executemany(
                    "INSERT INTO raw.rejected_events VALUES (?, ?, ?, ?, ?, ?, ?)"
                    " ON CONFLICT DO NOTHING",
                    [
                        (
                            r.origin,
                            r.payload_hash,
                            r.payload,
                            r.rule,
                            r.detail,
                            batch.batch_id,
                            batch.landing_time,
                        )
                        for r in batch.rejects
                    ],
                )
            _run(
                con,
                "INSERT INTO raw.ingest_batches VALUES (?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT DO NOTHING",
                [
                    batch.batch_id,
                    batch.source,
                    batch.landing_time,
                    counts.accepted,
                    counts.duplicates,
                    counts.conflicts,
                    counts.rejected,
                ],
            )
            con.commit()
        except BaseException:
            con.rollback()
            raise
        return counts

    def _land(self, batch: PreparedBatch) -> tuple[int, int]:
        con = self.conn
        params = [batch.batch_id, batch.landing_time]
        # Winners already landed for ids in this batch (usually none).
        _run(
            con,
            """
            CREATE OR REPLACE TEMP TABLE landed_before AS
            SELECT e.event_id, e.content_hash FROM raw.events e
            SEMI JOIN stage_events s ON s.event_id = e.event_id
            """,
        )
        accepted = _run(
            con,
            """
            INSERT INTO raw.events
            SELECT s.event_id, s.customer_id, s.metric, s.event_ts, s.quantity,
                   s.properties_text::JSON, s.properties_num::JSON,
                   s.content_hash, s.origin, ?, ?
            FROM stage_events s ANTI JOIN landed_before l ON l.event_id = s.event_id
            WHERE s.is_first
            """,
            params,
        )
        _run(
            con,
            """
            CREATE OR REPLACE TEMP TABLE differing AS
            SELECT s.* FROM stage_events s
            JOIN (SELECT event_id, content_hash FROM landed_before
                  UNION ALL
                  SELECT event_id, content_hash FROM stage_events s2
                  WHERE s2.is_first AND NOT EXISTS
                        (SELECT 1 FROM landed_before l WHERE l.event_id = s2.event_id)
                 ) w ON w.event_id = s.event_id
            WHERE w.content_hash <> s.content_hash
            """,
        )
        _run(
            con,
            """
            INSERT INTO raw.event_conflicts
            SELECT event_id, content_hash, customer_id, metric, event_ts, quantity,
                   properties::JSON, origin, ?, ?
            FROM differing ON CONFLICT DO NOTHING
            """,
            params,
        )
        return accepted, _run(con, "SELECT count(*) FROM differing")

    def close(self) -> None:
        self.conn.close()


def _run(con, sql: str, params: list | None = None) -> int:
    """Execute and consume the result (DuckDB 2 refuses new work while one is pending).

    Returns the first column of the first row: the row count of an INSERT, or a count.
    """
    rows = con.execute(sql, params).fetchall() if params else con.execute(sql).fetchall()
    return int(rows[0][0]) if rows and rows[0] and rows[0][0] is not None else 0
