"""Request bodies to model rows: strict JSON, then each field checked against the model's inputs.

Every rejection is a :class:`RequestError` that names the field (``rows[3].amount``) and the
constraint it broke; the app turns it into a 4xx JSON reply. Nothing here can raise anything else
for any byte string, which the schemathesis fuzz test and the unit tests check.

>>> from keelml.serve.model import InputField, ModelSchema
>>> schema = ModelSchema("tabular", ("a", "b"), (InputField("x", "number"),), "int8")
>>> parse_rows(b'{"rows": [{"x": 1}]}', schema, max_rows=4, max_text=10)
[{'x': 1.0}]
>>> parse_rows(b'{"rows": [{"x": NaN}]}', schema, max_rows=4, max_text=10)
Traceback (most recent call last):
...
keelml.serve.inputs.RequestError: body: valid JSON (NaN and Infinity are not JSON numbers)
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from keelml.serve.model import InputField, ModelSchema

FLOAT32_MAX = 3.4028234663852886e38


class RequestError(Exception):
    """A bad request: HTTP ``status``, the offending ``field`` and the ``constraint`` it broke."""

    def __init__(self, status: int, field: str, constraint: str, received: str | None = None) -> None:
        super().__init__(f"{field}: {constraint}")
        self.status = status
        self.field = field
        self.constraint = constraint
        self.received = received

    def to_json(self) -> dict[str, Any]:
        error: dict[str, Any] = {"field": self.field, "constraint": self.constraint}
        if self.received is not None:
            error["received"] = self.received
        return {"error": error}


class FeatureLookup(Protocol):
    """Entity keys to stored feature values (the online feature store in production)."""

    @property
    def keys(self) -> tuple[str, ...]: ...

    @property
    def request_fields(self) -> tuple[str, ...]:
        """Request-time fields the store's on-demand features read (not model inputs themselves)."""
        ...

    def lookup(self, rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """Per row, the stored features; raises RequestError naming an unknown key."""
        ...


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def loads(body: bytes) -> Any:
    """Strict JSON: UTF-8 only, no NaN/Infinity, no unbounded nesting."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RequestError(400, "body", "valid UTF-8", f"invalid byte at position {exc.start}") from None
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except ValueError as exc:
        constraint = (
            "valid JSON (NaN and Infinity are not JSON numbers)"
            if "JSON number" in str(exc)
            else ("valid JSON")
        )
        raise RequestError(400, "body", constraint, str(exc).splitlines()[0][:120]) from None
    except RecursionError:
        raise RequestError(400, "body", "valid JSON nested at most a few hundred levels") from None


def _number(where: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RequestError(422, where, "a number", _shown(value))
    as_float = float(value) if not isinstance(value, int) or abs(value) < 2**1023 else math.inf
    if not math.isfinite(as_float):
        raise RequestError(422, where, "a finite number (not NaN or infinity)", _shown(value))
    if abs(as_float) > FLOAT32_MAX:  # the exported graphs compute in float32
        raise RequestError(422, where, "a number within float32 range (|x| <= 3.4e38)", _shown(value))
    return as_float


def _text(where: str, value: Any, max_text: int) -> str:
    if not isinstance(value, str):
        raise RequestError(422, where, "a string", _shown(value))
    if len(value) > max_text:
        raise RequestError(413, where, f"at most {max_text} characters ([serve] max_text_chars)",
                           f"{len(value)} characters")  # fmt: skip
    return value


def _category(where: str, value: Any, max_text: int) -> str:
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and value.is_integer():  # JSON Schema counts 3.0 as an integer
        return str(int(value))
    return _text(where, value, max_text)


def _checker(f: InputField, max_text: int) -> Callable[[str, Any], Any]:
    if f.kind == "number":
        return _number
    if f.kind == "text":
        return lambda where, value: _text(where, value, max_text)
    return lambda where, value: _category(where, value, max_text)


@dataclass(frozen=True, slots=True)
class RowSpec:
    """Fields a request row may carry: model inputs, plus entity keys when features are looked up."""

    schema: ModelSchema
    entity_keys: tuple[str, ...] = ()
    stored: frozenset[str] = frozenset()  # inputs that come from the feature store, not the request
    request_extra: tuple[str, ...] = ()  # request-time fields for on-demand features

    @property
    def request_fields(self) -> tuple[InputField, ...]:
        return tuple(f for f in self.schema.fields if f.name not in self.stored)


def _rows_of(payload: Any, max_rows: int) -> list[Any]:
    if not isinstance(payload, dict):
        raise RequestError(422, "body", 'a JSON object: {"rows": [...]} or {"row": {...}}', _shown(payload))
    unknown = sorted(set(payload) - {"rows", "row"})
    if unknown:
        raise RequestError(422, unknown[0], 'not a known key (use "rows" or "row")')
    if "row" in payload and "rows" in payload:
        raise RequestError(422, "row", 'either "row" or "rows", not both')
    if "row" in payload:
        return [payload["row"]]
    if "rows" not in payload:
        raise RequestError(422, "rows", 'required (a list of row objects), or give a single row as "row"')
    rows = payload["rows"]
    if not isinstance(rows, list):
        raise RequestError(422, "rows", "a list of row objects", _shown(rows))
    if not rows:
        raise RequestError(422, "rows", "at least 1 row (the batch is empty)")
    if len(rows) > max_rows:
        raise RequestError(413, "rows", f"at most {max_rows} rows ([serve] max_batch_rows)",
                           f"{len(rows)} rows")  # fmt: skip
    return rows


def check_rows(
    payload: Any, spec: RowSpec, *, max_rows: int, max_text: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(model rows with request fields checked, the raw entity keys of each row)."""
    rows = _rows_of(payload, max_rows)
    fields = spec.request_fields
    checkers = [(f.name, _checker(f, max_text)) for f in fields]
    allowed = {f.name for f in fields} | set(spec.entity_keys) | set(spec.request_extra)
    lone_text = len(fields) == 1 and fields[0].kind == "text" and not spec.entity_keys
    out: list[dict[str, Any]] = []
    keys: list[dict[str, Any]] = []
    for i, row in enumerate(rows):
        where = f"rows[{i}]"
        if lone_text and isinstance(row, str):
            row = {fields[0].name: row}
        if not isinstance(row, dict):
            raise RequestError(
                422, where, f"an object with the fields {', '.join(sorted(allowed))}", _shown(row)
            )
        extra = [k for k in row if k not in allowed]
        if extra:
            known = ", ".join(sorted(allowed))
            raise RequestError(422, f"{where}.{extra[0]}", f"not an input of this model (inputs: {known})")
        checked: dict[str, Any] = {}
        for name, check in checkers:
            if name not in row:
                raise RequestError(422, f"{where}.{name}", "required")
            checked[name] = check(f"{where}.{name}", row[name])
        entity: dict[str, Any] = {}
        for key in spec.entity_keys:
            if key not in row:
                raise RequestError(422, f"{where}.{key}", "required (an entity key for the feature store)")
            value = row[key]
            if isinstance(value, bool) or not isinstance(value, int | str):
                raise RequestError(
                    422, f"{where}.{key}", "an entity key: an integer or a string", _shown(value)
                )
            entity[key] = value
        for name in spec.request_extra:
            if name in row and name not in checked:
                value = row[name]
                entity[name] = _number(f"{where}.{name}", value) if not isinstance(value, str) else value
        out.append(checked)
        keys.append(entity)
    return out, keys


def parse_rows(body: bytes, schema: ModelSchema, *, max_rows: int, max_text: int) -> list[dict[str, Any]]:
    """Body to checked model rows for a model without feature-store inputs."""
    rows, _ = check_rows(loads(body), RowSpec(schema), max_rows=max_rows, max_text=max_text)
    return rows


def merge_features(
    rows: list[dict[str, Any]], keys: list[dict[str, Any]], spec: RowSpec, features: FeatureLookup
) -> list[dict[str, Any]]:
    """Add the stored features of each row's entity; a missing value is a 422 naming the entity."""
    found = features.lookup([{**k, **r} for k, r in zip(keys, rows, strict=True)])
    stored = [f for f in spec.schema.fields if f.name in spec.stored]
    for i, (row, values) in enumerate(zip(rows, found, strict=True)):
        for f in stored:
            value = values.get(f.name)
            if value is None:
                shown = ", ".join(f"{k}={v!r}" for k, v in keys[i].items())
                raise RequestError(422, f"rows[{i}].{next(iter(keys[i]), 'key')}",
                                   f"a known entity: no online value of {f.name!r} for {shown} "
                                   "(unknown key, or expired; run `keel features materialize`)")  # fmt: skip
            row[f.name] = _checker(f, 1_000_000)(f"rows[{i}].{f.name}", value)
    return rows
