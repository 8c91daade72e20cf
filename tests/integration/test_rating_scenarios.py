"""Conformance scenarios through the `valueverse` CLI, on DuckDB and on PostgreSQL.

Every folder of tests/scenarios (the billing contract's examples, dbt/docs/contract.md:
01-10 the published conformance examples, 11 on ours for rules those under-test; every
expected CSV was computed by hand from the contract, never by running the code) runs
exactly as the CLI contract says, on a warehouse whose only build ran while it was empty (a
copy of conftest's session template: the unit tests and staging of that first build are not
paid again per scenario; the very first build of an empty warehouse has its own tests in
test_rating_cli and test_rating_incremental):

    valueverse catalog load catalog.yml
    valueverse events load events.jsonl        # last stdout line == scenario.yml expect
    valueverse build --as-of <as_of>
    valueverse invoices export --as-of <as_of> --out got.csv

and got.csv must equal expected_invoice_lines.csv byte for byte.

Scenarios of contract v1.1 (finalization and late usage, dbt/docs/contract.md section 8) add
two keys to scenario.yml, and run these steps between `events load` and the final build:

    finalize: {as_of: D, grace_days: G, expect: {finalized: N, blocked: 0, already_finalized: 0}}
    late_events: {file: events_late.jsonl, expect: {accepted: N, ...}}

    valueverse build --as-of D
    valueverse invoices finalize --as-of D --grace-days G   # last stdout line == expect
    valueverse events load events_late.jsonl                 # last stdout line == expect

The finalized invoices' lines must then be exported unchanged (they are frozen), and the final
export must equal expected_invoice_lines.csv.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.conftest import run_cli, run_step, scenario_dirs

SCENARIOS = scenario_dirs()


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[p.name for p in SCENARIOS])
def test_scenario_export_is_byte_identical(
    scenario: Path, built_warehouse_url: str, tmp_path: Path
) -> None:
    spec = yaml.safe_load((scenario / "scenario.yml").read_text())
    as_of = str(spec["as_of"])
    got = tmp_path / "got.csv"

    loaded = run_cli(
        built_warehouse_url, "catalog", "load", str(scenario / "catalog.yml"), cwd=tmp_path
    )
    assert loaded.returncode == 0, loaded.stderr
    landed = run_cli(
        built_warehouse_url, "events", "load", str(scenario / "events.jsonl"), cwd=tmp_path
    )
    assert landed.returncode == 0, landed.stderr
    assert {key: landed.last_json.get(key) for key in spec["expect"]} == spec["expect"]
    frozen = _finalize_then_land_late(scenario, spec, built_warehouse_url, tmp_path)
    built = run_step(built_warehouse_url, "build", "--as-of", as_of, cwd=tmp_path)
    assert built.returncode == 0, built.stderr[-3000:]
    assert built.stdout == ""  # dbt's log goes to stderr
    exported = run_step(
        built_warehouse_url, "invoices", "export", "--as-of", as_of, "--out", str(got), cwd=tmp_path
    )
    assert exported.returncode == 0, exported.stderr

    want = (scenario / "expected_invoice_lines.csv").read_bytes()
    assert got.read_text(encoding="utf-8") == want.decode("utf-8")  # readable diff first
    assert got.read_bytes() == want
    for line in frozen:  # what finalization issued is exported exactly as issued
        assert line in got.read_text(encoding="utf-8").splitlines()


def _finalize_then_land_late(
    scenario: Path, spec: dict, built_warehouse_url: str, tmp_path: Path
) -> list[str]:
    """The v1.1 steps (none for a v1 scenario); returns the finalized invoices' exported lines."""
    if "finalize" not in spec:
        return []
    step = spec["finalize"]
    when = str(step["as_of"])
    built = run_step(built_warehouse_url, "build", "--as-of", when, cwd=tmp_path)
    assert built.returncode == 0, built.stderr[-3000:]
    done = run_step(
        built_warehouse_url,
        "invoices",
        "finalize",
        "--as-of",
        when,
        "--grace-days",
        str(step.get("grace_days", 3)),
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert done.last_json == step["expect"]
    issued = tmp_path / "finalized.csv"
    exported = run_step(
        built_warehouse_url,
        "invoices",
        "export",
        "--as-of",
        when,
        "--out",
        str(issued),
        cwd=tmp_path,
    )
    assert exported.returncode == 0, exported.stderr
    late = spec["late_events"]
    landed = run_cli(
        built_warehouse_url, "events", "load", str(scenario / late["file"]), cwd=tmp_path
    )
    assert landed.returncode == 0, landed.stderr
    assert {key: landed.last_json.get(key) for key in late["expect"]} == late["expect"]
    return issued.read_text(encoding="utf-8").splitlines()[1:]
