"""Third-party engines run without the coverage tracer.

The test suite measures line coverage of this project's packages in every process it starts.
On Python 3.11 coverage's tracer is called for every Python call, also in code it does not
measure, so dbt's Jinja rendering and Great Expectations' validation ran ~1.5-1.7 x as slow
under it while adding nothing to the figure (3 scenario tests: 66 CPU-s without coverage,
112 with, 79 with dbt untraced). `untraced()` stops the process's coverage for the block and
starts it again after; without coverage installed or running (production) it does nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


@contextlib.contextmanager
def untraced() -> Iterator[None]:
    try:
        from coverage import Coverage
    except ImportError:  # not installed: production images
        yield
        return
    running = Coverage.current()
    if running is None:
        yield
        return
    running.stop()
    try:
        yield
    finally:
        running.start()
