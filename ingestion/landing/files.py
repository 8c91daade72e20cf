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

import os
import shutil
import tempfile
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ingestion.landing import handoff
from ingestion.landing.batch import Batch, warm_up
from ingestion.landing.sinks.contract import Counts, Encoder, EventSink, PreparedBatch
from ingestion.warehouse import env_int

# 50k: measured against 25k and 100k on 1M events (make bench): big enough that
# per-transaction costs vanish, small enough that the first batch is ready soon
# and the last write is short (both leave a core idle).
DEFAULT_BATCH_SIZE = 50_000
INLINE_BELOW_BYTES = 4 * 1024 * 1024  # small files: no worker start-up cost
_WHITESPACE = np.frombuffer(b" \t\n\r\x0b\x0c", np.uint8)  # bytes.isspace()


class InputError(Exception):
    """Bad input named for the user: exit 1, no traceback."""


def iter_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """(line number, payload) for every non-blank line; line terminators removed."""
    with _open(path) as handle:
        for number, line in enumerate(handle, start=1):
            payload = line.rstrip(b"\r\n")
            if payload.strip():
                yield number, payload


def prepare_chunk(
    encode: Encoder, path: str, read_path: str, first_line: int, start: int, stop: int
) -> PreparedBatch:
    """Validate and encode the whole lines in bytes [start, stop) of a file (runs in
    a worker process, which reads them itself: only offsets cross processes).
    Origins (`file:<path>:<line>`) are built column-wise."""
    with open(read_path, "rb") as handle:
        handle.seek(start)
        block = handle.read(stop - start)
    lines = block.split(b"\n")
    if lines and not lines[-1]:
        lines.pop()  # the block ends with a newline
    numbers = np.arange(first_line, first_line + len(lines), dtype=np.int64)
    if b"\r" in block:
        lines = [line.rstrip(b"\r") for line in lines]
    blanks = [i for i in _maybe_blank(block, len(lines)) if not lines[i].strip()]
    if blanks:  # blank lines are skipped and not counted
        numbers = np.delete(numbers, blanks)
        skip = set(blanks)
        lines = [line for i, line in enumerate(lines) if i not in skip]
    batch = Batch(source=f"file:{path}")
    origins = pc.binary_join_element_wise(
        f"file:{path}:", pc.cast(pa.array(numbers), pa.string()), ""
    )
    batch.extend(lines, origins)
    return batch.prepare(encode)


def _maybe_blank(block: bytes, count: int) -> list[int]:
    """Indices of the lines that are empty or start with whitespace (numpy, no
    Python per line); only those need the exact blank check."""
    data = np.frombuffer(block, np.uint8)
    starts = np.concatenate([[0], np.flatnonzero(data == 10) + 1])[:count]
    first = data[np.minimum(starts, len(data) - 1)] if len(data) else starts
    suspect = (starts >= len(data)) | np.isin(first, _WHITESPACE)
    return np.flatnonzero(suspect).tolist()


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
    with tempfile.TemporaryDirectory(prefix="valueverse-load-") as spool:
        jobs = _jobs(paths, batch_size, Path(spool))
        size = sum(p.stat().st_size for p in paths if p.is_file())
        workers = workers if workers is not None else _default_workers()
        if workers <= 1 or size < INLINE_BELOW_BYTES:
            for job in jobs:
                total += _write(sink, prepare_chunk(sink.encode, *job), on_batch)
            return total
        warm_up([sink.encode])  # once here rather than once in every forked worker
        pool, slots = handoff.fork_pool(workers, workers + 2)  # results of the read-ahead
        try:
            with pool:
                pending: deque[Future[handoff.Parcel]] = deque()

                def write_next() -> Counts:
                    parcel = pending.popleft().result()
                    prepared = slots.take(parcel)
                    slots.release(parcel.slot)
                    return _write(sink, prepared, on_batch)

                try:
                    for job in jobs:
                        slot = slots.acquire()
                        assert slot is not None  # read-ahead is bounded below the slot count
                        pending.append(
                            pool.submit(handoff.call_into, prepare_chunk, slot, sink.encode, *job)
                        )
                        if len(pending) > workers:  # bounded read-ahead: memory stays flat
                            total += write_next()
                    while pending:
                        total += write_next()
                except BaseException:
                    pool.shutdown(wait=False, cancel_futures=True)
                    raise
        finally:
            slots.close()
    return total


def _jobs(
    paths: list[Path], batch_size: int, spool: Path
) -> Iterator[tuple[str, str, int, int, int]]:
    """(origin path, path to read, first line, start, stop) for every batch.

    Workers read their byte range themselves, so a file that cannot be read
    twice (a pipe, /dev/stdin) is first copied into the spool directory; its
    origins still name the file it came from.
    """
    for number, path in enumerate(paths):
        source = path
        if not path.is_file():
            source = spool / f"{number}.jsonl"
            with _open(path) as handle, source.open("wb") as out:
                shutil.copyfileobj(handle, out, 8 * 1024 * 1024)
        for first_line, start, stop in _chunks(source, batch_size):
            yield str(path.resolve()), str(source), first_line, start, stop


def _write(sink: EventSink, prepared: PreparedBatch, on_batch) -> Counts:
    counts = sink.write(prepared)
    if on_batch:
        on_batch(prepared, counts)
    return counts


def _chunks(path: Path, batch_size: int) -> Iterator[tuple[int, int, int]]:
    """(first line number, start, stop): byte ranges of at most batch_size whole lines.

    Line ends are found with numpy over large reads: no Python object per line.
    """
    with _open(path) as handle:
        first_line, start, offset = 1, 0, 0
        ends = np.empty(0, np.int64)  # newline offsets not yet handed out
        while data := handle.read(8 * 1024 * 1024):
            ends = np.concatenate(
                [ends, np.flatnonzero(np.frombuffer(data, np.uint8) == 10) + offset]
            )
            offset += len(data)
            while len(ends) >= batch_size:
                stop = int(ends[batch_size - 1]) + 1
                yield first_line, start, stop
                first_line, start, ends = first_line + batch_size, stop, ends[batch_size:]
        if len(ends):
            stop = int(ends[-1]) + 1
            yield first_line, start, stop
            first_line, start = first_line + len(ends), stop
        if start < offset:  # a last line without a newline
            yield first_line, start, offset


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
    return env_int("VALUEVERSE_LOAD_WORKERS", min(4, os.cpu_count() or 1), minimum=1, maximum=64)
