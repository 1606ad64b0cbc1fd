"""What to augment: the rows of one label class, or of a slice.

A slice is a name from keel.toml ``[slices]`` or a predicate in the slice language of the data
capability (``text_length(review) > 200 and region == "EU"``). This capability may not import
``keelml.data``, so the predicate is parsed here with :mod:`ast` (never ``eval``) and translated
to one DuckDB ``WHERE`` clause; the functions ``text_length``, ``word_count``, ``lower``,
``is_missing`` and ``abs`` mean the same as there.

>>> to_sql('region == "EU" and text_length(review) > 200')
'(("region" = \\'EU\\') AND (length(CAST("review" AS VARCHAR)) > 200))'
>>> to_sql("x in [1, 2]")
'("x" IN (1, 2))'
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from keelml.core.errors import InvalidInputError

TargetKind = Literal["class", "slice"]

_OPS: dict[type[ast.cmpop], str] = {
    ast.Eq: "=",
    ast.NotEq: "<>",
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
}
_FUNCTIONS = {
    "text_length": "length(CAST({0} AS VARCHAR))",
    "word_count": "CASE WHEN trim(CAST({0} AS VARCHAR)) = '' THEN 0 "
    "ELSE len(string_split_regex(trim(CAST({0} AS VARCHAR)), '\\s+')) END",
    "lower": "lower(CAST({0} AS VARCHAR))",
    "is_missing": "({0} IS NULL)",
    "abs": "abs({0})",
}


@dataclass(frozen=True, slots=True)
class Target:
    kind: TargetKind
    name: str  # the class value, or the slice name (the predicate itself when given inline)
    expression: str | None  # the slice predicate
    mask: npt.NDArray[np.bool_]  # real rows in the target

    @property
    def rows(self) -> int:
        return int(self.mask.sum())


def _bad(expression: str, why: str) -> InvalidInputError:
    return InvalidInputError(
        f"cannot read the slice predicate: {why}",
        expected="comparisons of columns or text_length(c) / word_count(c) / lower(c) / is_missing(c) "
        "/ abs(c) with constants, joined by and / or / not",
        received=expression,
        fix="e.g. --target \"balance > 1500 and student == 'Yes'\"",
    )


def _literal(value: object) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    raise TypeError(f"unsupported constant {value!r}")


def _sql(node: ast.expr, expression: str) -> str:
    if isinstance(node, ast.Constant):
        try:
            return _literal(node.value)
        except TypeError as exc:
            raise _bad(expression, str(exc)) from exc
    if isinstance(node, ast.Name):
        return '"' + node.id.replace('"', '""') + '"'
    if isinstance(node, ast.List | ast.Tuple):
        return "(" + ", ".join(_sql(e, expression) for e in node.elts) + ")"
    if isinstance(node, ast.Call):
        name = node.func.id if isinstance(node.func, ast.Name) else "?"
        if name not in _FUNCTIONS or len(node.args) != 1 or node.keywords:
            raise _bad(expression, f"unknown function {name}(...)")
        return _FUNCTIONS[name].format(_sql(node.args[0], expression))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not | ast.USub):
        return ("(NOT " if isinstance(node.op, ast.Not) else "(-") + _sql(node.operand, expression) + ")"
    if isinstance(node, ast.BoolOp):
        joiner = " AND " if isinstance(node.op, ast.And) else " OR "
        return "(" + joiner.join(_sql(v, expression) for v in node.values) + ")"
    if isinstance(node, ast.Compare):
        parts, left = [], node.left
        for op, right in zip(node.ops, node.comparators, strict=True):
            if isinstance(op, ast.In | ast.NotIn):
                values = right if isinstance(right, ast.List | ast.Tuple) else ast.Tuple([right])
                word = " IN " if isinstance(op, ast.In) else " NOT IN "
                parts.append(f"({_sql(left, expression)}{word}{_sql(values, expression)})")
            elif type(op) in _OPS:
                parts.append(f"({_sql(left, expression)} {_OPS[type(op)]} {_sql(right, expression)})")
            else:
                raise _bad(expression, f"{type(op).__name__} is not allowed")
            left = right
        return parts[0] if len(parts) == 1 else "(" + " AND ".join(parts) + ")"
    raise _bad(expression, f"{type(node).__name__} is not allowed")


def to_sql(expression: str) -> str:
    """The predicate as a DuckDB boolean expression (raises on anything outside the slice language)."""
    try:
        tree = ast.parse(expression, mode="eval").body
    except SyntaxError as exc:
        raise _bad(expression, f"syntax error ({exc.msg})") from exc
    return _sql(tree, expression)


def slice_mask(table: pa.Table, expression: str) -> npt.NDArray[np.bool_]:
    """Rows where the predicate is true (a missing value is not in the slice)."""
    import duckdb

    sql = to_sql(expression)
    con = duckdb.connect()
    try:
        con.execute("SET threads TO 1")
        con.register("t", table.append_column("__keel_row", pa.array(np.arange(table.num_rows))))
        rows = con.execute(f"SELECT __keel_row FROM t WHERE {sql}").fetchnumpy()["__keel_row"]
    except duckdb.Error as exc:
        raise InvalidInputError(
            f"cannot evaluate the slice predicate ({str(exc).splitlines()[0]})",
            expected="columns of the dataset compared with values of their type",
            received=expression,
            fix="columns: " + ", ".join(table.column_names[:20]),
        ) from exc
    finally:
        con.close()
    mask = np.zeros(table.num_rows, dtype=bool)
    mask[np.asarray(rows, dtype=np.int64)] = True
    return mask


def _looks_like_predicate(text: str) -> bool:
    try:
        tree = ast.parse(text, mode="eval").body
    except SyntaxError:
        return False
    return isinstance(tree, ast.Compare | ast.BoolOp | ast.UnaryOp | ast.Call)


def resolve_target(
    table: pa.Table,
    target: str,
    *,
    label: str | None,
    slices: Mapping[str, str],
    real: npt.NDArray[np.bool_],
    where: str,
) -> Target:
    """Resolve ``target`` (``class:V`` / ``slice:S`` force the kind) to the real rows it names."""
    kind, _, rest = target.partition(":")
    forced = kind if rest and kind in ("class", "slice") else None
    value = rest if forced else target
    labels: list[str] = []
    if label is not None and label in table.column_names:
        labels = [str(v) for v in table.column(label).to_pylist()]
    if forced != "class" and (value in slices or forced == "slice" or _looks_like_predicate(value)):
        expression = slices.get(value, value)
        mask = slice_mask(table, expression) & real
        if not mask.any():
            raise InvalidInputError(
                f"the slice {value!r} matches no real rows of {where}",
                expected="a slice with at least one matching row",
                received=f"0 of {int(real.sum())} rows match {expression}",
                fix="check the predicate's values (keel data profile shows them), or pick another slice",
            )
        return Target("slice", value, expression, mask)
    if forced != "slice" and value in set(labels):
        mask = np.array([v == value for v in labels], dtype=bool) & real
        return Target("class", value, None, mask)
    classes = sorted(set(labels))
    raise InvalidInputError(
        f"the target {value!r} is neither a class of the label nor a slice of {where}",
        expected=(f"a class of {label!r} ({', '.join(classes[:10])})" if label else "a slice")
        + (f", or a slice ({', '.join(slices)})" if slices else ", or a predicate such as balance > 1500"),
        received=value,
        fix="pass --target CLASS, --target SLICE_NAME, or a predicate; prefix class: or slice: to choose",
    )
