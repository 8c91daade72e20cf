"""The billing contract in dbt/docs/ stays in step with the code and the examples.

The contract is prose, so nothing else would notice when a new reject rule, a new scenario or
a new section leaves it behind. These checks read files only (no dbt run): the dbt parse of
`make docs` is what proves that dbt finds the blocks.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from tests.conftest import ROOT, scenario_dirs

DOCS = ROOT / "dbt" / "docs"
BLOCK = re.compile(r"\{% docs (\w+) %\}(.*?)\{% enddocs %\}", re.S)


def blocks(path: Path) -> dict[str, str]:
    return dict(BLOCK.findall(path.read_text(encoding="utf-8")))


def reject_rules() -> set[str]:
    """Every rule code ingestion/landing/validation.py can report."""
    source = (ROOT / "ingestion" / "landing" / "validation.py").read_text(encoding="utf-8")
    literal = set(re.findall(r'(?:_Invalid|Reject)\(\s*"([a-z0-9_]+\.[a-z0-9_]+)"', source))
    templated = set(re.findall(r'_Invalid\(\s*f"\{field\}\.([a-z0-9_]+)"', source))
    fields = set(re.findall(r'_required(?:_id)?\(doc, "([a-z_]+)"\)', source))
    return literal | {f"{field}.{suffix}" for field in fields for suffix in templated}


def test_every_reject_rule_is_in_the_contract() -> None:
    events = blocks(DOCS / "contract.md")["contract_events"]
    rules = reject_rules()
    assert {"message.too_large", "event_id.missing", "quantity.precision"} <= rules
    assert sorted(rule for rule in rules if f"`{rule}`" not in events) == []


def test_every_scenario_is_named_in_the_contract() -> None:
    contract = "".join(blocks(DOCS / "contract.md").values())
    names = [path.name for path in scenario_dirs()]
    assert len(names) >= 16
    assert [name for name in names if name not in contract] == []


def test_overview_lists_every_contract_block() -> None:
    sections = set(blocks(DOCS / "contract.md"))
    overview = blocks(DOCS / "overview.md")["__overview__"]
    listed = set(re.findall(r"`(contract_\w+)`", overview))
    assert len(sections) >= 10
    assert listed == sections


def test_dbt_reads_the_docs_folder() -> None:
    project = yaml.safe_load((ROOT / "dbt" / "dbt_project.yml").read_text(encoding="utf-8"))
    assert "docs" in project["docs-paths"]
    assert set(project["model-paths"]) <= set(project["docs-paths"])
