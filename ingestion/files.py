"""Landing JSONL files: the `valueverse events load` path.

Lines go through exactly the batches and sinks the Kafka consumer uses; a
file's origin is `file:<absolute path>:<line number>` so every reject and every
landed event can be traced back to its line.

Why worker processes: validation and encoding are pure Python and hold the
GIL, while the warehouse work is done by the database. Workers validate and
encode the next chunks while the main process writes the current one; batches
are written strictly in file order, so first-write-wins follows line order and
a crash leaves a prefix of whole batches (each batch is one transaction).
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ingestion.landing import Batch, Counts, PreparedBatch
from ingestion.sinks.base import EventSink

DEFAULT_BATCH_SIZE = 100_000
INLINE_BELOW_BYTES = 4 * 1024 * 1024  # small files: no worker start-up cost
# Byte pairs that start a blank or whitespace-only line, found by memmem in C
# (a regex over the whole block costs more than the per-line check it saves).
_BLANK_MARKERS = (b"\n\n", b"\n ", b"\n\t", b"\n\r", b"\n\x0b", b"\n\x0c")


class InputError(Exception):
    """Bad input named for the user: exit 1, no traceback."""


def iter_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """(line number, payload) for every non-blank line; line terminators removed."""
    with _open(path) as handle:
        for number, line in enumerate(handle, start=1):
            payload = line.rstrip(b"\r\n")
            if payload.strip():
                yield number, payload


def prepare_chunk(kind: str, path: str, first_line: int, block: bytes) -> PreparedBatch:
    """Validate and encode one block of whole lines of a file (runs in a worker process).

    The block travels as one bytes object and origins are built column-wise,
    so neither process spends Python work per line beyond splitting.
    """
    lines = block.split(b"\n")
    if lines and not lines[-1]:
        lines.pop()  # the block ends with a newline
    numbers = np.arange(first_line, first_line + len(lines), dtype=np.int64)
    if b"\r" in block:
        lines = [line.rstrip(b"\r") for line in lines]
    blanks = []
    if block[:1].isspace() or any(marker in block for marker in _BLANK_MARKERS):
        blanks = [i for i, line in enumerate(lines) if not line or line.isspace()]
    if blanks:  # blank lines are skipped and not counted
        numbers = np.delete(numbers, blanks)
        skip = set(blanks)
        lines = [line for i, line in enumerate(lines) if i not in skip]
    batch = Batch(source=f"file:{path}")
    origins = pc.binary_join_element_wise(
        f"file:{path}:", pc.cast(pa.array(numbers), pa.string()), ""
    )
    batch.extend(lines, origins)
    return batch.prepare(kind)


def load_files(
    sink: EventSink,
    paths: list[Path],
    batch_size: int = DEFAULT_BATCH_SIZE,
    on_batch: Callable[[PreparedBatch, Counts], None] | None = None,
    workers: int | None = None,
) -> Counts:
    """Land every line of every file; each batch commits on its own, in file order."""
    for path in paths:  # fail before writing anything if a file is missing
        _open(path).close()
    total = Counts()
    size = sum(p.stat().st_size for p in paths)
    workers = workers if workers is not None else _default_workers()
    if workers <= 1 or size < INLINE_BELOW_BYTES:
        for path in paths:
            for first_line, block in _chunks(path, batch_size):
                prepared = prepare_chunk(sink.kind, str(path.resolve()), first_line, block)
                total += _write(sink, prepared, on_batch)
        return total
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        pending: deque[Future[PreparedBatch]] = deque()
        try:
            for path in paths:
                for first_line, block in _chunks(path, batch_size):
                    pending.append(
                        pool.submit(
                            prepare_chunk, sink.kind, str(path.resolve()), first_line, block
                        )
                    )
                    if len(pending) > workers:  # bounded read-ahead: memory stays flat
                        total += _write(sink, pending.popleft().result(), on_batch)
            while pending:
                total += _write(sink, pending.popleft().result(), on_batch)
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
    return total


def _write(sink: EventSink, prepared: PreparedBatch, on_batch) -> Counts:
    counts = sink.write(prepared)
    if on_batch:
        on_batch(prepared, counts)
    return counts


def _chunks(path: Path, batch_size: int) -> Iterator[tuple[int, bytes]]:
    """(first line number, block of at most batch_size whole lines) over the file.

    Line ends are found with numpy over large reads: no Python object per line.
    """
    with _open(path) as handle:
        first_line = 1
        pending = b""  # bytes read but not yet handed out
        ends = np.empty(0, np.int64)  # newline offsets in pending
        while True:
            data = handle.read(8 * 1024 * 1024)
            found = np.flatnonzero(np.frombuffer(data, np.uint8) == 10) + len(pending)
            pending += data
            ends = np.concatenate([ends, found])
            start = taken = 0
            while len(ends) - taken >= batch_size or (not data and taken < len(ends)):
                count = min(batch_size, len(ends) - taken)
                stop = int(ends[taken + count - 1]) + 1
                yield first_line, pending[start:stop]
                first_line += count
                taken += count
                start = stop
            pending, ends = pending[start:], ends[taken:] - start
            if not data:
                if pending:  # a last line without a newline
                    yield first_line, pending
                return


def _open(path: Path):
    try:
        return path.open("rb")
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory, not a JSONL file") from None
    except PermissionError:
        raise InputError(f"{path}: permission denied") from None


def _default_workers() -> int:
    configured = os.environ.get("VALUEVERSE_LOAD_WORKERS")
    if configured:
        return max(1, int(configured))
    return min(4, os.cpu_count() or 1)
