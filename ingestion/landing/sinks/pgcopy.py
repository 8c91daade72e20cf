"""PostgreSQL binary COPY rows built column-wise from Arrow, without a Python loop per row.

Why: formatting rows one by one (psycopg's row formatter) costs several µs per
event, as much as the server spends storing it. Here each column becomes the
parts of its COPY fields (Arrow binary arrays or scalars: the 4-byte big-endian
length, then the value in PostgreSQL's binary wire format), and one
`binary_join_element_wise` over the parts of every column glues each row
together in C++, copying every byte once. The joined array's data buffer *is*
the COPY body, and its offsets are the row boundaries (so rows can be cut out
by slicing, see PostgresPayload).

Wire formats used (PostgreSQL's *_send/*_recv functions):
- text/varchar: UTF-8 bytes; bytea: raw bytes;
- jsonb: version byte 1, then the JSON text;
- timestamp: int64 microseconds since 2000-01-01;
- numeric: ndigits, weight, sign, dscale (int16 each), then base-10000 digits.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, flags, extension length
TRAILER = b"\xff\xff"
_EMPTY = pa.scalar(b"", pa.large_binary())
_PG_EPOCH_US = 946_684_800_000_000  # 2000-01-01 in Unix microseconds


# One column's COPY fields: parts whose concatenation, row by row, is the field.
Field = list[pa.Array | pa.Scalar]


def rows(fields: list[Field]) -> tuple[bytes, np.ndarray]:
    """COPY body (no header or trailer) of rows made of `fields`, and each row's end offset.

    Every item is an encoded column (from the functions below); a part is an
    array with one value per row, or a scalar repeated in every row.
    """
    count = pa.scalar(len(fields).to_bytes(2, "big"), pa.large_binary())
    joined = _join(count, *(part for field in fields for part in field))
    offsets = np.frombuffer(joined.buffers()[1], np.int64, len(joined) + 1, joined.offset * 8)
    start, end = int(offsets[0]), int(offsets[-1])
    body = joined.buffers()[2].to_pybytes()[start:end] if len(joined) else b""
    return body, offsets[1:] - start


def stream(body: bytes) -> bytes:
    """A complete binary COPY stream around a body."""
    return HEADER + body + TRAILER


def field_bytes(field: Field) -> pa.Array:
    """A column's encoded fields as one binary array (a value per row)."""
    return _join(*field)


def text(values: pa.Array) -> Field:
    """text/varchar (or bytea) values, no nulls."""
    data = values.cast(pa.large_binary())
    return [_lengths(pc.binary_length(data)), data]


def jsonb(values: pa.Array) -> Field:
    """JSON text as jsonb's binary format: version byte 1, then the text."""
    data = values.cast(pa.large_binary())
    lengths = pc.add(pc.binary_length(data), 1)
    return [_lengths(lengths), pa.scalar(b"\x01", pa.large_binary()), data]


def timestamp(values: pa.Array) -> Field:
    """timestamp (without time zone) from Arrow timestamp[us]."""
    micros = values.cast(pa.int64()).to_numpy(zero_copy_only=False) - _PG_EPOCH_US
    out = np.empty(len(micros), dtype=[("n", ">i4"), ("v", ">i8")])
    out["n"] = 8
    out["v"] = micros
    return [_fixed(out, 12)]


def numeric_9(integer: np.ndarray, fraction9: np.ndarray) -> Field:
    """numeric with scale 9 from its integer part (< 10^12) and its 9 fractional digits.

    Always 3 integer and 3 fractional base-10000 digits (weight 2, dscale 9):
    PostgreSQL strips leading and trailing zero digits on receipt.
    """
    integer = integer.astype(np.int64)
    frac12 = fraction9.astype(np.int64) * 1000  # 12 fractional decimal digits = 3 groups
    out = np.empty(len(integer), dtype=[("n", ">i4"), ("head", ">i2", 4), ("d", ">i2", 6)])
    out["n"] = 20
    out["head"] = (6, 2, 0, 9)  # ndigits, weight, sign (positive), dscale
    out["d"][:, 0] = integer // 10**8
    out["d"][:, 1] = integer // 10**4 % 10**4
    out["d"][:, 2] = integer % 10**4
    out["d"][:, 3] = frac12 // 10**8
    out["d"][:, 4] = frac12 // 10**4 % 10**4
    out["d"][:, 5] = frac12 % 10**4
    return [_fixed(out, 24)]


def constant_text(value: str) -> Field:
    data = value.encode()
    return [pa.scalar(len(data).to_bytes(4, "big") + data, pa.large_binary())]


def constant_timestamp(value) -> Field:
    micros = pa.scalar(value, pa.timestamp("us")).cast(pa.int64()).as_py() - _PG_EPOCH_US
    data = (8).to_bytes(4, "big") + micros.to_bytes(8, "big", signed=True)
    return [pa.scalar(data, pa.large_binary())]


def _lengths(lengths: pa.Array) -> pa.Array:
    values = lengths.to_numpy(zero_copy_only=False).astype(">i4")
    return _fixed(values, 4)


def _fixed(structured: np.ndarray, width: int) -> pa.Array:
    """A numpy array of fixed-width records as an Arrow large_binary array."""
    buffer = pa.py_buffer(np.ascontiguousarray(structured).tobytes())
    array = pa.FixedSizeBinaryArray.from_buffers(pa.binary(width), len(structured), [None, buffer])
    return array.cast(pa.large_binary())


def _join(*parts: pa.Array | pa.Scalar) -> pa.Array:
    joined = pc.binary_join_element_wise(*parts, _EMPTY)
    return joined.combine_chunks() if isinstance(joined, pa.ChunkedArray) else joined
