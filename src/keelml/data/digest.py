"""Content digests that ignore row order, column order and file layout.

Each column of a batch is hashed: numbers, booleans and dates/timestamps in numpy from their bit
patterns, strings and other types by DuckDB's vectorised ``hash``; a row's hash folds its column
hashes in column-name order; the table's digest is built from two independent sums of row
hashes modulo 2**64, the row count and the schema. Sums are order-independent and mergeable, so
batches or partitions can be hashed separately. Identical rows count twice (a multiset, not a set).

For strings the digest depends on DuckDB's ``hash`` function; tests/data/test_digest.py pins a known digest so
an upgrade that changes it fails loudly instead of silently breaking "same data, same version".
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

U64 = npt.NDArray[np.uint64]
SCHEME = "kd1"
_K1 = np.uint64(0x9E3779B97F4A7C15)
_K2 = np.uint64(0xBF58476D1CE4E5B9)
_K3 = np.uint64(0x94D049BB133111EB)


def _mix(x: U64) -> U64:
    """splitmix64 finaliser: a bijection that spreads every input bit over the output."""
    x = (x ^ (x >> np.uint64(30))) * _K2
    x = (x ^ (x >> np.uint64(27))) * _K3
    return x ^ (x >> np.uint64(31))


_NULL_HASH = np.uint64(0x6A09E667F3BCC908)


def _fixed_width_hash(values: pa.ChunkedArray | pa.Array) -> U64 | None:
    """Hash numbers, booleans and dates/timestamps in numpy: their 64-bit patterns, mixed.

    -0.0 and 0.0 hash alike, as do all NaNs; NULLs get a fixed hash. None for other types.
    """
    t = values.type
    if pa.types.is_floating(t):
        x = np.asarray(pc.fill_null(pc.cast(values, pa.float64()), 0.0).to_numpy(zero_copy_only=False))
        x = np.where(np.isnan(x), np.nan, x + 0.0)  # one NaN, and -0.0 + 0.0 == +0.0
        bits = x.view(np.uint64)
    elif pa.types.is_integer(t) or pa.types.is_boolean(t) or pa.types.is_temporal(t):
        as_int = pc.cast(values, pa.int64()) if not pa.types.is_date32(t) else pc.cast(values, pa.int32())
        ints = np.asarray(pc.fill_null(as_int, 0).to_numpy(zero_copy_only=False))
        bits = ints.astype(np.int64).view(np.uint64)
    else:
        return None
    with np.errstate(over="ignore"):
        hashed = _mix(bits ^ _K1)
    if values.null_count:
        hashed = np.where(np.asarray(values.is_null()), _NULL_HASH, hashed)
    return hashed


def column_hashes(batch: pa.Table | pa.RecordBatch) -> dict[str, U64]:
    """A 64-bit hash of every value of every column (NULL hashes to a fixed value).

    Fixed-width columns are hashed in numpy; strings, binary, decimals and nested values by
    DuckDB's vectorised ``hash``.
    """
    hashes: dict[str, U64] = {}
    rest: list[str] = []
    for name in batch.column_names:
        fixed = _fixed_width_hash(batch.column(name))
        if fixed is None:
            rest.append(name)
        else:
            hashes[name] = fixed
    if rest:
        con = duckdb.connect()
        try:
            con.register("batch", batch.select(rest))
            cols = ", ".join(f'hash("{name.replace(chr(34), chr(34) * 2)}")' for name in rest)
            out = con.sql(f"SELECT {cols} FROM batch").to_arrow_table()
        finally:
            con.close()
        for i, name in enumerate(rest):
            hashes[name] = out.column(i).to_numpy().astype(np.uint64, copy=False)
    return {name: hashes[name] for name in batch.column_names}


def row_hashes(hashes: dict[str, U64], rows: int) -> U64:
    """One hash per row: the column hashes (already well mixed by DuckDB), each salted by its column
    name, folded in column-name order as a polynomial, then mixed once."""
    row = np.zeros(rows, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for name in sorted(hashes):
            salt = np.uint64(int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "little"))
            row *= _K1
            row += hashes[name] ^ salt
        return _mix(row)


def schema_fingerprint(schema: pa.Schema) -> dict[str, str]:
    """Column name -> Arrow type, sorted by name (column order does not matter)."""
    return {field.name: str(field.type) for field in sorted(schema, key=lambda f: f.name)}


@dataclass(frozen=True, slots=True)
class DigestState:
    rows: int = 0
    sum1: int = 0
    sum2: int = 0

    def add(self, hashes: dict[str, U64], rows: int) -> DigestState:
        if rows == 0:
            return self
        row = row_hashes(hashes, rows)
        with np.errstate(over="ignore"):
            s1 = int(row.sum(dtype=np.uint64))
            s2 = int(_mix(row ^ _K3).sum(dtype=np.uint64))
        mask = (1 << 64) - 1
        return DigestState(self.rows + rows, (self.sum1 + s1) & mask, (self.sum2 + s2) & mask)

    def merge(self, other: DigestState) -> DigestState:
        mask = (1 << 64) - 1
        return DigestState(
            self.rows + other.rows, (self.sum1 + other.sum1) & mask, (self.sum2 + other.sum2) & mask
        )

    def hexdigest(self, fingerprint: dict[str, str]) -> str:
        """The digest string, given the :func:`schema_fingerprint` of the rows."""
        payload = json.dumps(
            {"scheme": SCHEME, "schema": fingerprint, "rows": self.rows, "s": [self.sum1, self.sum2]},
            sort_keys=True,
        )
        return f"{SCHEME}:{hashlib.sha256(payload.encode()).hexdigest()}"


def table_digest(table: pa.Table, batch_rows: int = 262_144) -> str:
    """Digest of a whole table, hashed in batches.

    >>> a = pa.table({"x": [1, 2, 3], "y": ["a", "b", "c"]})
    >>> b = pa.table({"y": ["c", "a", "b"], "x": [3, 1, 2]})
    >>> table_digest(a) == table_digest(b)
    True
    """
    state = DigestState()
    for batch in table.to_batches(max_chunksize=batch_rows):
        state = state.add(column_hashes(batch), batch.num_rows)
    return state.hexdigest(schema_fingerprint(table.schema))
