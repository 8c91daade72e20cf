"""`make audit`: known vulnerabilities in the locked dependencies, with pip-audit.

uv.lock is exported to pinned requirements and checked against PyPI's advisory data without
installing anything. Where that service cannot be reached (every package comes back unknown to
it), the check says so plainly and passes: a report is only as good as the data behind it, and
a machine without the service must still be able to run the suite. Any vulnerability found
fails; packages the service does not know are listed.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        requirements, report = Path(tmp) / "requirements.txt", Path(tmp) / "audit.json"
        subprocess.run(
            [str(ROOT / ".uv/bin/uv"), "export", "--frozen", "--quiet", "--no-emit-project",
             "--format", "requirements.txt", "-o", str(requirements)],
            cwd=ROOT, check=True,
        )  # fmt: skip
        audit = subprocess.run(
            [str(Path(sys.executable).parent / "pip-audit"), "--disable-pip", "--no-deps",
             "-r", str(requirements), "--progress-spinner", "off", "-f", "json",
             "-o", str(report)],
            capture_output=True, text=True,
        )  # fmt: skip
        if not report.exists():
            print(f"pip-audit: SKIPPED, it could not run: {audit.stderr.strip()[-300:]}")
            return 0
        dependencies = json.loads(report.read_text())["dependencies"]
    unknown = [d["name"] for d in dependencies if "skip_reason" in d]
    vulnerable = [d for d in dependencies if d.get("vulns")]
    if dependencies and len(unknown) == len(dependencies):
        print(
            "pip-audit: SKIPPED, the advisory service cannot be reached from here "
            f"({len(unknown)} of {len(dependencies)} locked packages unknown to it)"
        )
        return 0
    for dep in vulnerable:
        ids = ", ".join(v["id"] for v in dep["vulns"])
        print(f"pip-audit: {dep['name']} {dep['version']}: {ids}")
    if unknown:
        print(f"pip-audit: not known to the advisory service: {', '.join(sorted(unknown))}")
    print(f"pip-audit: {len(dependencies)} packages, {len(vulnerable)} with known vulnerabilities")
    return 1 if vulnerable else 0


if __name__ == "__main__":
    sys.exit(main())
