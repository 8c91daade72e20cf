"""`run_quality`: read the warehouse, validate every suite with GE, record, build Data Docs.

The GE project is a file context in `docs_dir/gx`, rebuilt from code on every
run (suites, assets and validation definitions are `add_or_update`d from the
Python suites, never hand-edited JSON); its validation results accumulate, so
Data Docs show every run. Everything under docs_dir is generated output.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from ingestion.quality.checks import (
    Check,
    ResultRow,
    column_label,
    describe_failure,
    split_by_scope,
)
from ingestion.quality.config import QualityError, Thresholds
from ingestion.quality.config import docs_dir as resolve_docs_dir
from ingestion.quality.frames import Reader, open_reader
from ingestion.quality.gx_helpers import is_critical
from ingestion.quality.offline_docs import AssetsMissing, make_offline
from ingestion.quality.report import QualityReport, SuiteCounts
from ingestion.quality.results import write_results
from ingestion.untraced import untraced
from ingestion.warehouse import WarehouseConfig

log = logging.getLogger(__name__)

REQUIRED = [("raw", "events"), ("raw", "ingest_batches"), ("marts", "rated_usage")]
REQUIRED += [("marts", "unbilled_usage"), ("marts", "invoice_lines"), ("marts", "invoices")]
SUITES = ["landed_events", "rated_usage", "invoice_lines", "payments"]


def run_quality(
    config: WarehouseConfig, as_of: date, docs_dir: Path | None = None
) -> QualityReport:
    """Validate the warehouse as of `as_of`; see the package docstring."""
    return run_quality_detailed(config, as_of, docs_dir)[0]


def run_quality_detailed(
    config: WarehouseConfig, as_of: date, docs_dir: Path | None = None
) -> tuple[QualityReport, dict[str, SuiteCounts]]:
    """`run_quality` plus per-suite counts (what the CLI prints)."""
    from ingestion.quality.suites_billing import invoice_checks, payments_checks, rated_usage_checks
    from ingestion.quality.suites_landing import landed_event_checks

    thresholds = Thresholds.from_env()
    root = resolve_docs_dir(docs_dir)
    run_at = datetime.now(UTC).replace(tzinfo=None)
    run_id = f"{run_at:%Y%m%dT%H%M%S}Z-{uuid.uuid4().hex[:8]}"
    if config.kind == "duckdb" and not (config.duckdb_path and config.duckdb_path.exists()):
        raise QualityError(f"no warehouse at {config.duckdb_path}: load and build it first")
    with open_reader(config) as reader:
        _require_marts(reader, config)
        checks = landed_event_checks(reader, as_of, thresholds)
        checks += rated_usage_checks(reader, thresholds)
        checks += invoice_checks(reader)
        payments = payments_checks(reader)
    skipped = [] if payments else ["payments: skipped: table absent (marts.payments)"]
    checks += payments

    with untraced():
        context = _context(root)
        source = context.data_sources.add_or_update_pandas("valueverse_frames")
    rows: list[ResultRow] = []
    counts = {name: SuiteCounts() for name in SUITES}
    for check in checks:
        for row_group in _validate(context, source, check, run_id, run_at):
            _count(counts[check.suite], row_group)
            rows += row_group
    if skipped:
        counts["payments"].skipped = "table absent (marts.payments)"
        rows.append(ResultRow("payments", "skipped: table absent", None, False, True,
                              "skipped: table absent (marts.payments does not exist)"))  # fmt: skip
    docs_index = _build_docs(context)

    failed_critical = [r.line() for r in rows if r.critical and not r.success]
    warnings = [r.line() for r in rows if not r.critical and not r.success]
    write_results(config, run_id, run_at, as_of, rows, len(failed_critical), docs_index)
    report = QualityReport(
        run_id=run_id,
        success=not failed_critical,
        critical_failures=failed_critical,
        warnings=warnings,
        docs_index=docs_index,
        skipped=skipped,
    )
    return report, counts


def _require_marts(reader: Reader, config: WarehouseConfig) -> None:
    missing = [f"{s}.{t}" for s, t in REQUIRED if not reader.table_columns(s, t)]
    if missing:
        raise QualityError(
            f"warehouse {config.redacted()} has no {', '.join(missing)}: "
            "run `valueverse build --as-of DATE` first"
        )


def _context(root: Path) -> Any:
    """The GE file context under root/gx, quiet (no progress bars, no analytics)."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    logging.getLogger("great_expectations").setLevel(logging.ERROR)
    root.mkdir(parents=True, exist_ok=True)
    context = gx.get_context(mode="file", project_root_dir=str(root))
    context.enable_analytics(False)  # no usage statistics leave the machine
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    context.variables.save()
    return context


def _validate(
    context: Any, source: Any, check: Check, run_id: str, run_at: datetime
) -> list[list[ResultRow]]:
    """Run one check's suite on its frame; result rows grouped per expectation."""
    import great_expectations as gx
    from great_expectations.core.run_identifier import RunIdentifier

    with untraced():  # Great Expectations' own work (ingestion/untraced.py)
        asset = _get_or_add(source.get_asset, source.add_dataframe_asset, check.ge_name)
        batch = _get_or_add(asset.get_batch_definition,
                            asset.add_batch_definition_whole_dataframe, "whole_frame")  # fmt: skip
        suite = context.suites.add_or_update(
            gx.ExpectationSuite(name=check.ge_name, expectations=check.expectations)
        )
        definition = context.validation_definitions.add_or_update(
            gx.ValidationDefinition(name=check.ge_name, data=batch, suite=suite)
        )
        result = definition.run(
            batch_parameters={"dataframe": check.frame},
            result_format={"result_format": "COMPLETE" if check.complete else "SUMMARY"},
            run_id=RunIdentifier(run_name=run_id, run_time=run_at.replace(tzinfo=UTC)),
        )
    return [_rows(check, r) for r in result.results]


def _get_or_add(get: Callable[[str], Any], add: Callable[[str], Any], name: str) -> Any:
    """GE's lookups raise their own not-found errors (no common base class in 1.x)."""
    try:
        return get(name)
    except Exception:
        return add(name)


def _rows(check: Check, result: Any) -> list[ResultRow]:
    config = result.expectation_config
    expectation = f"{check.name} {config.type}"
    column = column_label(config.kwargs)
    crit = is_critical(config)
    info = result.exception_info or {}
    exception = info.get("exception_message") if info.get("raised_exception") else None
    if result.success and not exception:
        observed = _observed(check, result.result)
        return [ResultRow(check.suite, expectation, column, crit, True, observed)]
    failure = describe_failure(result.result or {}, exception)
    kwargs = config.kwargs
    shown = [kwargs[c] for c in ("column", "column_A", "column_B") if kwargs.get(c)]
    if "min_value" in kwargs or "max_value" in kwargs:
        low, high = kwargs.get("min_value"), kwargs.get("max_value")
        failure.summary += (
            f" (allowed {'' if low is None else low}..{'' if high is None else high})"
        )
    return [
        ResultRow(check.suite, expectation, column, crit, False, text, start, end)
        for start, end, text in split_by_scope(check, failure, shown)
    ]


def _observed(check: Check, result: dict[str, Any]) -> str:
    """What a passing expectation saw; one-row frames (rates, volume) show their values."""
    if "unexpected_count" not in result:
        return f"observed {result.get('observed_value')!r}"[:500]
    text = f"{result.get('unexpected_count')} of {result.get('element_count')} rows unexpected"
    if len(check.frame) == 1 and check.key in (None, "day"):
        text += ": " + ", ".join(f"{k}={v}" for k, v in check.frame.iloc[0].items())
    return text


def _count(counts: SuiteCounts, rows: list[ResultRow]) -> None:
    if all(r.success for r in rows):
        counts.passed += 1
        return
    counts.failed += 1
    counts.critical_failed += int(rows[0].critical)
    counts.failures += [r.line() for r in rows]


def _build_docs(context: Any) -> Path:
    """Build the Data Docs site and make it load nothing from the network (offline_docs).
    Missing assets are logged, not raised: the results are recorded either way, and a
    report that needs a CDN is no reason to stop billing."""
    with untraced():
        sites = context.build_data_docs()
    url = sites.get("local_site") or next(iter(sites.values()))
    index = Path(unquote(urlsplit(url).path))
    try:
        remote = make_offline(index.parent)
    except AssetsMissing as exc:
        log.warning("Data Docs left loading from CDNs: %s", exc)
        return index
    if remote:
        log.warning("Data Docs still load from other hosts: %s", "; ".join(remote[:5]))
    return index
