"""The dbt project as Dagster sees it: where it is, a manifest that exists when the definitions
load, and the warehouse preparation a build needs.

The manifest describes the graph (models, tests, sources), which is the same for both
adapters, so it is parsed once for the DuckDB profile into its own folder beside the build
targets (`ingestion.billing.dbt_runner.target_dir(...)`'s root, i.e. VALUEVERSE_DBT_TARGET_DIR or
dbt/target, then `dagster-manifest/`). Parsing needs no warehouse and must not touch one: a
code location that loads while a run writes the DuckDB file must not wait for, or fail on,
its lock (which is why this does not go through `ingestion.billing.dbt_runner.parse`, whose
`dbt_args`
records the run's as_of in the warehouse). The manifest is parsed again whenever the dbt
project's code_version changed, so a fresh clone, a `git pull` and an edited model all load
without a manual `dbt parse`. That covers what `DbtProject.prepare_if_dev()` does under
`dagster dev`, and also the webserver + daemon of `make up`, where prepare_if_dev does nothing.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from pathlib import Path

from dagster_dbt import DbtProject

from ingestion.warehouse import WarehouseConfig

# The package sits beside the dbt project in the repository (and in the platform image).
DBT_PROJECT_DIR = Path(__file__).resolve().parents[2] / "dbt"
_STAMP = "manifest.code_version"
# target_dir() only looks at the kind; the path is never opened
_PARSE_CONFIG = WarehouseConfig("duckdb", "duckdb:///dagster-manifest.duckdb",
                                Path("/dagster-manifest.duckdb"))  # fmt: skip


def venv_bin_on_path() -> None:
    """dagster-dbt starts `dbt` (and asks its version) through PATH: put the interpreter's
    bin first, so the dbt of this virtualenv runs even when the venv is not activated."""
    bin_dir = str(Path(sys.executable).parent)
    path = os.environ.get("PATH", "")
    if bin_dir not in path.split(os.pathsep):
        os.environ["PATH"] = os.pathsep.join([bin_dir, path]) if path else bin_dir


def dbt_executable() -> str:
    candidate = Path(sys.executable).parent / "dbt"
    return str(candidate) if candidate.exists() else "dbt"


def manifest_dir() -> Path:
    from ingestion.billing.dbt_runner import target_dir

    return target_dir(_PARSE_CONFIG).parent / "dagster-manifest"


def ensure_manifest() -> Path:
    """manifest.json, parsed again when the project changed. A file lock keeps the webserver
    and the daemon, which load the definitions at the same moment, from parsing at once."""
    from ingestion.billing.dbt_runner import code_version

    target = manifest_dir()
    target.mkdir(parents=True, exist_ok=True)
    manifest, stamp = target / "manifest.json", target / _STAMP
    version = code_version()
    with open(target / ".manifest.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if manifest.exists() and stamp.exists() and stamp.read_text() == version:
            return manifest
        dirs = ["--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR)]
        command = [dbt_executable(), "parse", *dirs, "--target", "duckdb",
                   "--target-path", str(target), "--log-path", str(target / "logs")]  # fmt: skip
        env = {
            **os.environ,
            "VALUEVERSE_DBT_TARGET": "duckdb",
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        }
        done = subprocess.run(command, env=env, stdout=sys.stderr, stderr=sys.stderr, timeout=600)
        if done.returncode != 0 or not manifest.exists():
            raise RuntimeError(f"`dbt parse` of {DBT_PROJECT_DIR} failed; see the log above")
        stamp.write_text(version)
    return manifest


def dbt_project() -> DbtProject:
    """The DbtProject whose manifest the @dbt_assets read; profiles.yml lives in the project."""
    venv_bin_on_path()
    ensure_manifest()
    return DbtProject(
        project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR, target_path=manifest_dir()
    )


def prepare_warehouse(config: WarehouseConfig) -> None:
    """What `valueverse build` creates before dbt runs (ingestion.billing.dbt_runner
    .prepare_build), so a
    Dagster build and a CLI build start from the same warehouse."""
    from ingestion.billing.dbt_runner import prepare_build

    prepare_build(config)
