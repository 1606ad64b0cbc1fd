"""Preprocessing at serving time without torch or pandas: rows -> the graph's input arrays.

Text: the saved ``tokenizer.json`` through the ``tokenizers`` library (truncation to the training
``max_length``, padding to the longest row). Tabular: a numpy re-implementation of keelml's saved
tabular preprocessing (median fill + standard scaling; one-hot with an ``<other>`` column).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from keelml.core.errors import InvalidInputError

OTHER = "<other>"
Rows = Sequence[Mapping[str, Any]] | Any  # list of dicts, pyarrow Table, pandas DataFrame


def columns_of(data: Rows, names: Sequence[str]) -> dict[str, list[Any]]:
    """The named columns of ``data`` as lists; a clear error when one is missing."""
    rows: Any = data
    if hasattr(rows, "column_names"):  # pyarrow Table
        present = {str(c) for c in rows.column_names}
        _require(names, present)
        return {n: rows.column(n).to_pylist() for n in names}
    if hasattr(rows, "columns") and hasattr(rows, "to_dict"):  # pandas DataFrame
        _require(names, {str(c) for c in rows.columns})
        return {n: rows[n].tolist() for n in names}
    records = list(rows)
    for i, record in enumerate(records):
        if not isinstance(record, Mapping):
            raise InvalidInputError(
                "rows must be mappings of field name to value",
                expected="a list of dicts, a pyarrow Table or a pandas DataFrame",
                received=f"row {i}: {type(record).__name__} {str(record)[:60]!r}",
                fix='pass e.g. [{"review": "great coffee"}]',
            )
        lacking = [n for n in names if n not in record]
        if lacking:
            raise InvalidInputError(
                f"row {i} lacks fields the model needs",
                expected=", ".join(names),
                received=f"missing {', '.join(lacking)}",
                fix="send every input field in every row (null for unknown values)",
            )
    return {n: [r[n] for r in records] for n in names}


def _require(names: Sequence[str], present: set[str]) -> None:
    missing = [n for n in names if n not in present]
    if missing:
        raise InvalidInputError(
            "the rows lack fields the model needs",
            expected=", ".join(names),
            received=f"missing {', '.join(missing)}",
            fix="send every input field the model was trained on",
        )


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _number(value: Any) -> float:
    if _is_missing(value) or isinstance(value, bool):
        return math.nan if not isinstance(value, bool) else float(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan  # like pandas.to_numeric(errors="coerce"): filled with the median below


def tabular_features(
    preprocessor: Mapping[str, Any], columns: Mapping[str, list[Any]]
) -> npt.NDArray[np.float32]:
    """The model's feature matrix from raw columns (same numbers as keelml's training preprocessing)."""
    n = len(next(iter(columns.values()))) if columns else 0
    parts: list[npt.NDArray[np.float64]] = []
    for name, median, mean, std in preprocessor["numeric"]:
        values = np.array([_number(v) for v in columns[name]], dtype=np.float64)
        values = np.where(np.isnan(values), float(median), values)
        parts.append(((values - float(mean)) / float(std))[:, None])
    for name, categories in preprocessor["categorical"]:
        index = {str(c): i for i, c in enumerate(categories)}
        codes = np.array(
            [
                len(categories) if _is_missing(v) else index.get(str(v), len(categories))
                for v in columns[name]
            ],
            dtype=np.int64,
        )
        onehot = np.zeros((n, len(categories) + 1))
        onehot[np.arange(n), codes] = 1.0
        parts.append(onehot)
    return np.hstack(parts).astype(np.float32) if parts else np.zeros((n, 0), np.float32)


class TextEncoder:
    """``tokenizer.json`` with the training truncation and padding; no transformers, no torch."""

    def __init__(self, tokenizer_json: bytes, preprocessing: Mapping[str, Any]) -> None:
        from tokenizers import Tokenizer

        # tokenizers has no stubs for from_str

        self.tokenizer: Any = Tokenizer.from_str(tokenizer_json.decode("utf-8"))
        self.max_length = int(preprocessing["max_length"])
        self.tokenizer.enable_truncation(max_length=self.max_length)
        self.tokenizer.enable_padding(
            pad_id=int(preprocessing.get("pad_id", 0)), pad_token=str(preprocessing.get("pad_token", "[PAD]"))
        )

    def encode(self, texts: Sequence[Any]) -> dict[str, npt.NDArray[np.int64]]:
        batch = self.tokenizer.encode_batch(["" if _is_missing(t) else str(t) for t in texts])
        return {
            "input_ids": np.array([e.ids for e in batch], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in batch], dtype=np.int64),
        }
