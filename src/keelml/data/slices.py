"""Slices: named row predicates, declared in keel.toml or Python, reused by evaluation and monitoring.

A predicate is a small, safe expression language (parsed with :mod:`ast`, never ``eval``):
comparisons (``== != < <= > >= in, not in``, chained), ``and`` / ``or`` / ``not``, constants and
lists, column names, and derived columns ``text_length(c)``, ``word_count(c)``, ``lower(c)``,
``is_missing(c)``, ``abs(c)``. In keel.toml::

    [slices]
    long_reviews = "text_length(review) > 200"
    eu = 'region == "EU"'

>>> import pyarrow as pa
>>> t = pa.table({"review": ["short", "x" * 300, None], "region": ["EU", "US", "EU"]})
>>> Slice("long", "text_length(review) > 200").mask(t).to_pylist()
[False, True, False]
>>> Slice("eu_short", 'region == "EU" and not text_length(review) > 200').count(t)
1
"""

from __future__ import annotations

import ast
import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from keelml.core.errors import ColumnNotFoundError, ConfigError, InvalidInputError

_COMPARE: dict[type[ast.cmpop], str] = {
    ast.Eq: "equal",
    ast.NotEq: "not_equal",
    ast.Lt: "less",
    ast.LtE: "less_equal",
    ast.Gt: "greater",
    ast.GtE: "greater_equal",
}


def _text(values: Any) -> Any:
    return values if pa.types.is_string(values.type) else pc.cast(values, pa.string())


FUNCTIONS: dict[str, Callable[[Any], Any]] = {
    "text_length": lambda v: pc.utf8_length(_text(v)),
    "word_count": lambda v: pc.list_value_length(pc.utf8_split_whitespace(pc.utf8_trim_whitespace(_text(v)))),
    "lower": lambda v: pc.utf8_lower(_text(v)),
    "is_missing": lambda v: pc.is_null(v),
    "abs": lambda v: pc.abs(v),
}


def _invalid(name: str, expression: str, why: str, fix: str) -> InvalidInputError:
    return InvalidInputError(
        f"slice {name!r} has an invalid predicate: {why}",
        expected="comparisons of columns or text_length(c) / word_count(c) / lower(c) / is_missing(c) "
        'with constants, joined by and / or / not, e.g. text_length(review) > 200 and region == "EU"',
        received=expression,
        fix=fix,
    )


@dataclass(frozen=True, slots=True)
class Slice:
    """A named predicate over rows; parsed (and rejected if unsafe) on construction."""

    name: str
    expression: str
    _tree: ast.expr = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            tree = ast.parse(self.expression, mode="eval").body
        except SyntaxError as exc:
            raise _invalid(
                self.name, self.expression, f"syntax error ({exc.msg})", "check quotes and operators"
            ) from exc
        self._check(tree)
        object.__setattr__(self, "_tree", tree)

    def _check(self, node: ast.AST) -> None:
        allowed = (
            ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.USub, ast.Compare, ast.Name, ast.Load,
            ast.Constant, ast.List, ast.Tuple, ast.Call, ast.In, ast.NotIn, *_COMPARE,
        )  # fmt: skip
        for sub in ast.walk(node):
            if not isinstance(sub, allowed):
                raise _invalid(
                    self.name, self.expression, f"{type(sub).__name__} is not allowed", "use only comparisons"
                )
            if isinstance(sub, ast.Call):
                fname = sub.func.id if isinstance(sub.func, ast.Name) else "?"
                if fname not in FUNCTIONS or len(sub.args) != 1 or sub.keywords:
                    raise _invalid(
                        self.name,
                        self.expression,
                        f"unknown function call {fname}(...)",
                        f"use one of {', '.join(FUNCTIONS)} with one column argument",
                    )

    def columns(self) -> set[str]:
        calls = {id(n.func) for n in ast.walk(self._tree) if isinstance(n, ast.Call)}
        return {n.id for n in ast.walk(self._tree) if isinstance(n, ast.Name) and id(n) not in calls}

    def mask(self, table: pa.Table) -> pa.Array:
        """One boolean per row: in the slice or not (a missing value is not in the slice)."""
        for column in self.columns():
            if column not in table.column_names:
                close = difflib.get_close_matches(column, table.column_names, n=3)
                hint = (
                    f"did you mean {', '.join(close)}?"
                    if close
                    else "columns: " + ", ".join(table.column_names[:20])
                )
                raise ColumnNotFoundError(
                    f"slice {self.name!r} uses the column {column!r}, which is not in the data",
                    expected="a column of the dataset, or a derived column such as text_length(review)",
                    received=column,
                    fix=hint,
                )
        try:
            result = self._eval(self._tree, table)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError, TypeError) as exc:
            raise _invalid(
                self.name,
                self.expression,
                f"cannot evaluate ({str(exc).splitlines()[0]})",
                "compare like with like",
            ) from exc
        if not isinstance(result, pa.Array | pa.ChunkedArray) or not pa.types.is_boolean(result.type):
            raise _invalid(
                self.name, self.expression, "it is not a condition", "add a comparison, e.g. x > 0"
            )
        combined = result.combine_chunks() if isinstance(result, pa.ChunkedArray) else result
        return pc.fill_null(combined, False)

    def count(self, table: pa.Table) -> int:
        return int(pc.sum(self.mask(table)).as_py() or 0)

    def filter(self, table: pa.Table) -> pa.Table:
        return table.filter(self.mask(table))

    def _eval(self, node: ast.expr, table: pa.Table) -> Any:
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.List | ast.Tuple):
            return [self._eval(e, table) for e in node.elts]
        if isinstance(node, ast.Name):
            return table.column(node.id)
        if isinstance(node, ast.Call):
            assert isinstance(node.func, ast.Name)
            return FUNCTIONS[node.func.id](self._eval(node.args[0], table))
        if isinstance(node, ast.UnaryOp):
            value = self._eval(node.operand, table)
            return pc.invert(value) if isinstance(node.op, ast.Not) else pc.negate(value)
        if isinstance(node, ast.BoolOp):
            values = [self._eval(v, table) for v in node.values]
            combine = pc.and_kleene if isinstance(node.op, ast.And) else pc.or_kleene
            out = values[0]
            for v in values[1:]:
                out = combine(out, v)
            return out
        assert isinstance(node, ast.Compare)
        left, result = self._eval(node.left, table), None
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            right = self._eval(comparator, table)
            if isinstance(op, ast.In | ast.NotIn):
                values = right if isinstance(right, list) else [right]
                part = pc.is_in(left, value_set=pa.array(values))
                part = pc.if_else(pc.is_null(left), None, part)
                part = pc.invert(part) if isinstance(op, ast.NotIn) else part
            else:
                part = pc.call_function(_COMPARE[type(op)], [left, right])
            result = part if result is None else pc.and_kleene(result, part)
            left = right
        return result


def slices_from_config(extra: Mapping[str, Any] | None) -> tuple[Slice, ...]:
    """The ``[slices]`` table of keel.toml (``ws.config.model_extra``), validated."""
    table = (extra or {}).get("slices")
    if table is None:
        return ()
    if not isinstance(table, dict):
        raise ConfigError(
            "the slices section of keel.toml must be a table of name = predicate",
            received=repr(table)[:80],
            fix='write a slices table: a line "slices" in brackets, then '
            'long_reviews = "text_length(review) > 200"',
        )
    out = []
    for name, expression in table.items():
        if not isinstance(expression, str):
            raise ConfigError(
                f"slices.{name} in keel.toml is not a predicate string",
                expected='a string such as "text_length(review) > 200"',
                received=repr(expression)[:80],
                fix=f'write {name} = "COLUMN > VALUE"',
            )
        try:
            out.append(Slice(name, expression))
        except InvalidInputError as exc:
            raise ConfigError(
                f"slices.{name} in keel.toml: {exc.problem}",
                expected=exc.expected,
                received=exc.received,
                fix=exc.fix,
            ) from exc
    return tuple(out)


def parse_slice_option(text: str) -> Slice:
    """``NAME=PREDICATE`` as given on the command line.

    >>> parse_slice_option("eu=region == 'EU'").expression
    "region == 'EU'"
    """
    name, sep, expression = text.partition("=")
    if not sep or expression.startswith("=") or not expression.strip() or not name.strip().isidentifier():
        raise InvalidInputError(
            "cannot read the slice option",
            expected="NAME=PREDICATE, e.g. long=text_length(review) > 200",
            received=text,
            fix="put a name (letters, digits, _) and '=' before the predicate",
        )
    return Slice(name.strip(), expression.strip())
