"""Writes to the payments tables (their DDL: ingestion/billing/payments_store.py): one
autocommitted session, so a `pending` attempt is durable before Stripe is called."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ingestion.warehouse import Session, WarehouseConfig, open_connection


class PaymentsDb(Session):
    """A warehouse session in autocommit mode: every write is committed on its own, so a
    `pending` attempt is durable before Stripe is called. `with` closes it."""

    def __init__(self, config: WarehouseConfig) -> None:
        super().__init__(config.kind, open_connection(config))

    def insert(self, table: str, row: dict[str, Any], ignore_conflict: bool = False) -> None:
        """Append one row; `ignore_conflict` makes a repeated step (same key) a no-op."""
        columns = ", ".join(row)
        marks = ", ".join("%s" for _ in row)
        conflict = " ON CONFLICT DO NOTHING" if ignore_conflict else ""
        self.execute(f"INSERT INTO billing.{table} ({columns}) VALUES ({marks}){conflict}",
                     list(row.values()))  # fmt: skip

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """Several writes committed together or not at all: a state, the dunning steps it
        triggers and their notifications (ingestion/payments/notices.py)."""
        if self.kind == "postgres":
            with self.con.transaction():
                yield
            return
        self.con.begin()
        try:
            yield
        except BaseException:
            self.con.rollback()
            raise
        self.con.commit()

    def try_lock(self) -> bool:
        """One collector at a time (PostgreSQL; a DuckDB file has one writer anyway)."""
        if self.kind != "postgres":
            return True
        return bool(self.value("SELECT pg_try_advisory_lock(hashtext('valueverse.payments'))"))
