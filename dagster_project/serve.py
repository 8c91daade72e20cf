"""`make up`: the Dagster webserver and daemon over `dagster_project.definitions`.

Why a launcher rather than two lines in the Makefile: the instance file is generated from the
environment first (lib/instance.py), both processes must share one DAGSTER_HOME, and stopping
must be clean. Dagster handles SIGTERM like SIGINT, and ignores both when it inherits SIGINT
ignored (as a backgrounded `make` child does); so the children start with SIGINT restored to
the default, and on Ctrl-C / SIGTERM this launcher sends them SIGINT, waits, and kills only
what does not stop in time.

Environment: DAGSTER_HOME (default ./.dagster_home), DAGSTER_HOST (127.0.0.1), DAGSTER_PORT
(3000), DAGSTER_PG_URL (PostgreSQL run/event/schedule storage; SQLite when unset), and
everything the definitions read (.env.example).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from dagster_project.lib.instance import write_instance

MODULE = "dagster_project.definitions"
STOP_TIMEOUT = 30.0


def _restore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def commands(host: str, port: int) -> list[list[str]]:
    bin_dir = Path(sys.executable).parent
    return [
        [
            str(bin_dir / "dagster-webserver"),
            "-m",
            MODULE,
            "-a",
            "defs",
            "-h",
            host,
            "-p",
            str(port),
        ],
        [str(bin_dir / "dagster-daemon"), "run", "-m", MODULE, "-a", "defs"],
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-daemon", action="store_true", help="webserver only")
    args = parser.parse_args(argv)
    home = Path(os.environ.get("DAGSTER_HOME") or ".dagster_home")
    host = os.environ.get("DAGSTER_HOST") or "127.0.0.1"
    port = int(os.environ.get("DAGSTER_PORT") or 3000)
    env = write_instance(home, dict(os.environ))
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    root = Path(__file__).resolve().parent.parent
    stopping = False

    def stop(*_args: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    cmds = commands(host, port)[: 1 if args.no_daemon else 2]
    procs: list[subprocess.Popen[bytes]] = [
        subprocess.Popen(cmd, env=env, cwd=root, preexec_fn=_restore_sigint)  # noqa: PLW1509
        for cmd in cmds
    ]
    print(f"dagster: http://{host}:{port} (DAGSTER_HOME={env['DAGSTER_HOME']})", flush=True)
    status = 0
    while not stopping:
        exited = [(cmd[0], p) for cmd, p in zip(cmds, procs, strict=True) if p.poll() is not None]
        if exited:
            name, proc = exited[0]
            status = proc.returncode or 1
            print(f"dagster: {name} exited ({proc.returncode})", flush=True)
            break
        time.sleep(0.5)
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
    deadline = time.monotonic() + STOP_TIMEOUT
    for proc in procs:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return status if not stopping else 0


if __name__ == "__main__":
    sys.exit(main())
