"""Fast path for parsing ``recent_events``: Arrow's multithreaded JSON reader.

Every heartbeat's text is wrapped as one line ``{"e": <text>}`` of newline-delimited JSON and
read against a fixed schema (a list of objects with five int64 fields). The reader rejects a
whole block when one line breaks the schema, so a failing block is split in halves until the
bad lines are isolated; those, and lines whose elements lack a field or hold null, are left to
the exact row-by-row parser in `analysis.event_parsing`. Unknown keys are an error here, which
also stops a text such as ``[...], "x": 1`` from passing as a list.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.json as pa_json

FIELDS = ("t", "d0", "d1", "ts", "up")
# Blocks this small go to the row-by-row parser instead of being split further.
MIN_BLOCK_ROWS = 256
BLOCK_ROWS = 65536
# Arrow parses blocks of this many bytes in parallel, so the few MB of distinct lists of a
# large fleet still make several blocks. A longer line is still read whole.
BLOCK_BYTES = 1 << 20

_SCHEMA = pa.schema([
    pa.field("e", pa.list_(pa.struct([pa.field(name, pa.int64()) for name in FIELDS]))),
])
_PARSE_OPTIONS = pa_json.ParseOptions(explicit_schema=_SCHEMA, unexpected_field_behavior="error")


@dataclass
class ArrowParse:
    """Events parsed by Arrow, and the rows it left to the exact parser.

    ``row`` and ``values`` are in row order, list order within a row; ``parsed_rows`` are
    the rows whose whole list Arrow read; ``rejected_rows`` must be parsed row by row.
    """

    row: np.ndarray
    values: np.ndarray
    lengths: np.ndarray
    parsed_rows: np.ndarray
    rejected_rows: np.ndarray


def parse_with_arrow(texts: np.ndarray, candidate_rows: np.ndarray) -> ArrowParse:
    """Parse the texts at `candidate_rows`, which must be str without line breaks."""
    pieces: list[tuple[np.ndarray, pa.ListArray]] = []
    rejected: list[np.ndarray] = []
    for start in range(0, len(candidate_rows), BLOCK_ROWS):
        block = candidate_rows[start:start + BLOCK_ROWS]
        _parse_block(texts, block, pieces, rejected)
    return _assemble(pieces, rejected)


def _parse_block(texts, rows: np.ndarray, pieces: list, rejected: list) -> None:
    if len(rows) == 0:
        return
    payload = '{"e":' + '}\n{"e":'.join(texts[rows].tolist()) + "}"
    try:
        table = pa_json.read_json(
            io.BytesIO(payload.encode("utf-8", errors="surrogatepass")),
            read_options=pa_json.ReadOptions(block_size=BLOCK_BYTES),
            parse_options=_PARSE_OPTIONS,
        )
    except (pa.ArrowInvalid, UnicodeEncodeError):
        if len(rows) <= MIN_BLOCK_ROWS:
            rejected.append(rows)
            return
        middle = len(rows) // 2
        _parse_block(texts, rows[:middle], pieces, rejected)
        _parse_block(texts, rows[middle:], pieces, rejected)
        return
    column = table.column("e").combine_chunks()
    if len(column) != len(rows):
        rejected.append(rows)
        return
    pieces.append((rows, column))


def _assemble(pieces: list, rejected: list) -> ArrowParse:
    rows_out, values_out, lengths_out, parsed_out, rejected_out = [], [], [], [], list(rejected)
    for rows, column in pieces:
        lengths = column.value_lengths().fill_null(-1).to_numpy()
        flat = column.flatten()
        fields = [flat.field(name) for name in FIELDS]
        has_null = np.zeros(len(flat), dtype=bool)
        for field in fields:
            has_null |= field.is_null().to_numpy(zero_copy_only=False)

        element_row = np.repeat(np.arange(len(rows)), np.maximum(lengths, 0))
        bad = (lengths < 0) | (np.bincount(element_row[has_null], minlength=len(rows)) > 0)
        keep_element = ~bad[element_row]
        values = np.column_stack([f.fill_null(0).to_numpy() for f in fields]) if len(flat) \
            else np.zeros((0, len(FIELDS)), dtype=np.int64)

        rows_out.append(rows[element_row[keep_element]])
        values_out.append(values[keep_element])
        lengths_out.append(np.maximum(lengths[~bad], 0))
        parsed_out.append(rows[~bad])
        rejected_out.append(rows[bad])

    def concat(parts, dtype, shape=None):
        if parts:
            return np.concatenate(parts)
        return np.zeros(shape if shape else 0, dtype=dtype)

    return ArrowParse(
        row=concat(rows_out, np.int64),
        values=concat(values_out, np.int64, (0, len(FIELDS))).astype(np.int64),
        lengths=concat(lengths_out, np.int64),
        parsed_rows=concat(parsed_out, np.int64),
        rejected_rows=concat(rejected_out, np.int64),
    )
