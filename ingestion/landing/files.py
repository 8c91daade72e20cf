"""Landing JSONL files: the `valueverse events load` path.

Lines go through exactly the batches and sinks the Kafka consumer uses; a
file's origin is `file:<absolute path>:<line number>` so every reject and every
landed event can be traced back to its line.

Why worker processes: validation and encoding are pure Python and hold the
GIL, while the warehouse work is done by the database. Workers validate and
encode the next chunks while the main process writes the current one; batches
are written strictly in file order, so first-write-wins follows line order and
a crash leaves a prefix of whole batches (each batch is one transaction).

Why lines over the size limit are never read whole: one line can be any size (a
runaway export, a file that is not JSONL at all), and what one input costs must
not grow with it. The main process finds line ends in fixed-size reads and notes
the lines longer than MAX_MESSAGE_BYTES; the worker that prepares their chunk
reads such a line in blocks, keeping its first bytes for the reject.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import BinaryIO, NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ingestion.landing import handoff
from ingestion.landing.batch import Batch, reject_row, warm_up
from ingestion.landing.sinks.contract import Counts, Encoder, EventSink, PreparedBatch, RejectRow
from ingestion.landing.validation import KEPT_BYTES_OF_TOO_LARGE, MAX_MESSAGE_BYTES, too_large
from ingestion.warehouse import env_int

# 50k: measured against 25k and 100k on 1M events (make bench): big enough that
# per-transaction costs vanish, small enough that the first batch is ready soon
# and the last write is short (both leave a core idle).
DEFAULT_BATCH_SIZE = 50_000
INLINE_BELOW_BYTES = 4 * 1024 * 1024  # small files: no worker start-up cost
_WHITESPACE = np.frombuffer(b" \t\n\r\x0b\x0c", np.uint8)  # bytes.isspace()
# What is read at a time to find line ends or to skip a long line: memory does not grow with a
# line's length (1 MiB finds line ends faster than 8 MiB did: the reads stay in the CPU cache)
_READ_BYTES = 1024 * 1024
# (start, end) byte offsets of a line longer than MAX_MESSAGE_BYTES; end is its newline (or the
# end of the file)
LongLine = tuple[int, int]


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
    encode: Encoder,
    path: str,
    read_path: str,
    first_line: int,
    start: int,
    stop: int,
    long_lines: tuple[LongLine, ...] = (),
) -> PreparedBatch:
    """Validate and encode the whole lines in bytes [start, stop) of a file (runs in
    a worker process, which reads them itself: only offsets cross processes).
    Origins (`file:<path>:<line>`) are built column-wise. The lines in `long_lines`
    are not read whole (see _read_chunk)."""
    with open(read_path, "rb") as handle:
        block, long_rejects = _read_chunk(handle, path, first_line, start, stop, long_lines)
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
    prepared = batch.prepare(encode)
    if long_rejects:  # in line order among the others
        prepared.rejects = sorted(prepared.rejects + long_rejects, key=_line_number)
    return prepared


def _read_chunk(
    handle: BinaryIO,
    path: str,
    first_line: int,
    start: int,
    stop: int,
    long_lines: tuple[LongLine, ...],
) -> tuple[bytes, list[RejectRow]]:
    """Bytes [start, stop) with every line of `long_lines` left empty (so the lines after it
    keep their numbers, and the empty line is skipped as blank), and the rejects of those
    that are too large. One that is short once its trailing \\r are gone stays as it is."""
    pieces: list[bytes] = []
    rejects: list[RejectRow] = []
    position, line = start, first_line
    for line_start, line_end in long_lines:
        handle.seek(position)
        piece = handle.read(line_start - position)
        pieces.append(piece)
        line += piece.count(b"\n")
        found = _long_line(handle, line_start, line_end)
        if found is not None:  # else blank: skipped like any blank line
            payload, size = found
            if size > MAX_MESSAGE_BYTES:
                origin = f"file:{path}:{line}"
                rejects.append(reject_row(origin, payload, too_large(size), size))
            else:
                pieces.append(payload)
        position = line_end
    handle.seek(position)
    pieces.append(handle.read(stop - position))
    return b"".join(pieces), rejects


def _long_line(handle: BinaryIO, start: int, end: int) -> tuple[bytes, int] | None:
    """A line longer than MAX_MESSAGE_BYTES, read in blocks and never held whole: None when
    it is blank; else its size once trailing \\r are stripped (as every line is) and its first
    KEPT_BYTES_OF_TOO_LARGE bytes, or all of it when that size is within the limit."""
    handle.seek(start)
    head, blank, carriage_returns, left = b"", True, 0, end - start
    while left and (block := handle.read(min(_READ_BYTES, left))):
        left -= len(block)
        head += block[: KEPT_BYTES_OF_TOO_LARGE - len(head)]
        blank = blank and block.isspace()
        content = len(block.rstrip(b"\r"))
        carriage_returns = len(block) - content + (0 if content else carriage_returns)
    if blank:
        return None
    size = end - start - left - carriage_returns
    if size > MAX_MESSAGE_BYTES:
        return head, size
    handle.seek(start)
    return handle.read(size), size


def _line_number(reject: RejectRow) -> int:
    return int(reject.origin.rsplit(":", 1)[1])


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
) -> Iterator[tuple[str, str, int, int, int, tuple[LongLine, ...]]]:
    """(origin path, path to read, first line, start, stop, long lines) for every batch.

    Workers read their byte range themselves, so a file that cannot be read
    twice (a pipe, /dev/stdin) is first copied into the spool directory; its
    origins still name the file it came from.
    """
    for number, path in enumerate(paths):
        source = path
        if not path.is_file():
            source = spool / f"{number}.jsonl"
            with _open(path) as handle, source.open("wb") as out:
                shutil.copyfileobj(handle, out, _READ_BYTES)
        for chunk in _chunks(source, batch_size):
            yield (str(path.resolve()), str(source), *chunk)


def _write(sink: EventSink, prepared: PreparedBatch, on_batch) -> Counts:
    counts = sink.write(prepared)
    if on_batch:
        on_batch(prepared, counts)
    return counts


class Chunk(NamedTuple):
    """A batch's byte range of a file: its lines' numbers start at first_line."""

    first_line: int
    start: int
    stop: int
    long_lines: tuple[LongLine, ...]  # its lines over MAX_MESSAGE_BYTES, not to be read whole


def _chunks(path: Path, batch_size: int) -> Iterator[Chunk]:
    """Byte ranges of at most batch_size whole lines, and the long lines in each.

    Line ends are found with numpy over fixed-size reads: no Python object per
    line, and memory does not grow with a line's length.
    """
    with _open(path) as handle:
        first_line, start, offset = 1, 0, 0
        ends = np.empty(0, np.int64)  # newline offsets not yet handed out
        line_start = 0  # where the line after the last newline read starts
        long: list[LongLine] = []  # long lines not yet handed out
        while data := handle.read(_READ_BYTES):
            new = np.flatnonzero(np.frombuffer(data, np.uint8) == 10) + offset
            offset += len(data)
            if len(new):
                starts = np.concatenate([[line_start], new[:-1] + 1])
                over = np.flatnonzero(new - starts > MAX_MESSAGE_BYTES)
                long += zip(starts[over].tolist(), new[over].tolist(), strict=True)
                line_start = int(new[-1]) + 1
                ends = np.concatenate([ends, new])
            while len(ends) >= batch_size:
                stop = int(ends[batch_size - 1]) + 1
                yield Chunk(first_line, start, stop, _take_until(long, stop))
                first_line, start, ends = first_line + batch_size, stop, ends[batch_size:]
        if offset - line_start > MAX_MESSAGE_BYTES:  # a long last line without a newline
            long.append((line_start, offset))
        if len(ends):
            stop = int(ends[-1]) + 1
            yield Chunk(first_line, start, stop, _take_until(long, stop))
            first_line, start = first_line + len(ends), stop
        if start < offset:  # a last line without a newline
            yield Chunk(first_line, start, offset, tuple(long))


def _take_until(long: list[LongLine], stop: int) -> tuple[LongLine, ...]:
    """Remove and return the long lines that start before `stop` (the list is in order)."""
    count = next((i for i, (line_start, _end) in enumerate(long) if line_start >= stop), len(long))
    taken = tuple(long[:count])
    del long[:count]
    return taken


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
