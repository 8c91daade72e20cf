"""`valueverse demo`: the main job end to end on the embedded default.

Generates a deterministic sample (catalog + events), loads the catalog, lands
the events, rates and invoices them with dbt, exports the invoice lines, and
prints what it did and where everything is. Safe to run again: the catalog
load is a no-op when unchanged and re-landed events count as duplicates.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from ingestion.warehouse import WarehouseConfig


def run_demo(config: WarehouseConfig, data_dir: Path, events: int, seed: int) -> int:
    from ingestion.catalog import load_catalog
    from ingestion.files import load_files
    from ingestion.generator import generate, sample_as_of
    from ingestion.rating import build, export_invoices
    from ingestion.sinks.base import open_sink

    sample_dir = data_dir / f"sample-{events}-{seed}"
    started = time.perf_counter()
    if not (sample_dir / "events.jsonl").exists():
        _step(f"generating {events:,} sample events into {sample_dir}")
        generate(sample_dir, events=events, seed=seed)
    as_of = sample_as_of()

    _step("loading the catalog")
    catalog = load_catalog(config, sample_dir / "catalog.yml")

    _step("landing events (validation, dedup, dead letters)")
    with open_sink(config) as sink:
        counts = load_files(sink, [sample_dir / "events.jsonl"])

    _step(f"rating and invoicing with dbt (as of {as_of})")
    status = build(config, as_of)
    if status != 0:
        print("valueverse demo: dbt build failed; see the log above", file=sys.stderr)
        return status

    out = data_dir / "invoice_lines.csv"
    rows = export_invoices(config, as_of, out)
    seconds = time.perf_counter() - started
    print(
        f"""
ValueVerse demo finished in {seconds:.0f} s
  warehouse        {config.redacted()}
  catalog          {sample_dir / "catalog.yml"} (version {catalog.version})
  events           {sample_dir / "events.jsonl"}
  landed           {counts.accepted:,} accepted, {counts.duplicates:,} duplicates,\
 {counts.conflicts:,} conflicts, {counts.rejected:,} rejected
                   (rejects: raw.rejected_events, conflicts: raw.event_conflicts)
  invoice lines    {rows:,} lines for periods ending by {as_of} -> {out}
  query the marts  duckdb {config.duckdb_path or ""} -c "select * from marts.invoices limit 10"
"""
    )
    return 0


def _step(text: str) -> None:
    print(f"==> {text}", flush=True)
