"""Rows a command reads from a file (``--calibration``, ``--transfer``): Parquet, CSV or JSON lines."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa

from keelml.core.errors import InvalidInputError, SourceNotFoundError


def read_rows(path: Path | None, option: str) -> pa.Table | None:
    """The rows of ``path`` as a table, or None when the option was not given.

    ``option`` is the flag that named the file, so an error points at it.
    """
    if path is None:
        return None
    if not path.is_file():
        raise SourceNotFoundError(
            f"no file at {path} (given to {option})", fix=f"check the path given to {option}"
        )
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path)
    if suffix == ".csv":
        import pyarrow.csv as pcsv

        return pcsv.read_csv(path)
    if suffix in (".jsonl", ".json"):
        lines = path.read_text(encoding="utf-8").splitlines()
        try:
            return pa.Table.from_pylist([json.loads(line) for line in lines if line.strip()])
        except (json.JSONDecodeError, pa.ArrowInvalid, TypeError, AttributeError) as exc:
            raise InvalidInputError(
                f"{path.name} is not JSON lines of one object per row",
                received=str(exc)[:160],
                fix=f'write one object per line, e.g. {{"review": "..."}}, or pass Parquet to {option}',
            ) from exc
    raise InvalidInputError(
        f"unsupported file for {option}", expected=".parquet, .csv or .jsonl", received=path.name,
        fix="save the rows as Parquet, CSV or JSON lines",
    )  # fmt: skip
