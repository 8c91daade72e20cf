"""The API's rejects in the warehouse, beside the dead-letter topic.

Why both: the dead-letter topic keeps the payloads for a person to replay, and the warehouse
is where the data-quality report counts rejects (raw.rejected_events and raw.ingest_batches,
as for every landing path). A request with rejects is recorded as one batch
(source `api:<key id>`) with 0 accepted: its valid events are landed, and counted, by the
ingest service from the usage topic. Keyed by (origin, payload hash) like every reject, so a
retried request is stored once.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from ingestion.landing.sinks.contract import RejectRow
from ingestion.warehouse import WarehouseConfig, transaction


def record_rejects(
    config: WarehouseConfig, source: str, rows: list[RejectRow], landed_at: datetime
) -> None:
    if not rows:
        return
    batch_id = uuid.uuid4().hex
    with transaction(config) as db:
        db.executemany(
            "INSERT INTO raw.rejected_events (origin, payload_hash, raw_payload, rule, detail,"
            " batch_id, rejected_at) VALUES (%s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (origin, payload_hash) DO NOTHING",
            [(r.origin, r.payload_hash, r.payload, r.rule, r.detail, batch_id, landed_at)
             for r in rows],
        )  # fmt: skip
        db.execute(
            "INSERT INTO raw.ingest_batches (batch_id, source, landed_at, accepted, duplicates,"
            " conflicts, rejected) VALUES (%s, %s, %s, 0, 0, 0, %s)"
            " ON CONFLICT (batch_id) DO NOTHING",
            [batch_id, source, landed_at, len(rows)],
        )
