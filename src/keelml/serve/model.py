"""What the service needs from a model, and the loaded model it swaps atomically on reload.

The service depends on a small protocol rather than on ``keelml.export`` types: anything with
``info`` (task, classes, input fields with kinds, variant) and ``predict_proba(rows)`` can be served,
which keeps the HTTP layer testable without ONNX and keeps torch out of the serving process.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt

from keelml.core.errors import ConfigError

FieldKind = Literal["text", "number", "category"]
_KINDS: dict[str, FieldKind] = {
    "text": "text", "string": "text",
    "number": "number", "numeric": "number", "float": "number", "int": "number", "integer": "number",
    "category": "category", "categorical": "category", "bool": "category", "boolean": "category",
}  # fmt: skip


class ServableModel(Protocol):
    """A model the service can run: ``predict_proba`` takes one dict per row, returns (rows, classes)."""

    @property
    def info(self) -> Any: ...

    def predict_proba(self, rows: Sequence[Mapping[str, Any]]) -> Any: ...


@dataclass(frozen=True, slots=True)
class InputField:
    name: str
    kind: FieldKind


@dataclass(frozen=True, slots=True)
class ModelSchema:
    """The request contract of a served model: its input fields and the classes it predicts."""

    task: str
    classes: tuple[str, ...]
    fields: tuple[InputField, ...]
    variant: str

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)


def _kind(name: str, raw: Any) -> FieldKind:
    text = str(getattr(raw, "value", raw)).lower()
    if text not in _KINDS:
        raise ConfigError(
            f"the served model's input field {name!r} has an unknown kind",
            expected=" / ".join(sorted(set(_KINDS.values()))),
            received=text,
            fix="re-export the model with keelml's exporter",
        )
    return _KINDS[text]


def schema_of(info: Any) -> ModelSchema:
    """Read the request contract from a model's ``info`` (attributes or a mapping)."""

    def get(name: str, default: Any = None) -> Any:
        return info.get(name, default) if isinstance(info, Mapping) else getattr(info, name, default)

    raw_fields = get("inputs") or get("fields") or ()
    fields: list[InputField] = []
    for f in raw_fields:
        if isinstance(f, Mapping):
            name, kind = str(f["name"]), f.get("kind")
        elif isinstance(f, tuple | list):
            name, kind = str(f[0]), f[1]
        else:
            name, kind = str(f.name), getattr(f, "kind", None)
        fields.append(InputField(name, _kind(name, kind)))
    task = str(get("task", "tabular"))
    if task == "text" and not fields:
        fields.append(InputField("text", "text"))
    if not fields:
        raise ConfigError(
            "the served model declares no input fields",
            expected="a model exported with its input schema",
            received=repr(info),
            fix="re-export the model with `keel export`",
        )
    return ModelSchema(
        task, tuple(str(c) for c in get("classes", ())), tuple(fields), str(get("variant", ""))
    )


@dataclass(frozen=True, slots=True)
class LoadedModel:
    """One resolved model version; requests hold a reference, so a swap never cuts one short."""

    name: str
    version: int
    model: ServableModel
    schema: ModelSchema
    description: Mapping[str, Any] = field(default_factory=dict)
    loaded_at: float = field(default_factory=time.time)
    resolved: int | None = None  # the version the alias named (an export's parent); None: ``version``

    @property
    def alias_version(self) -> int:
        return self.version if self.resolved is None else self.resolved

    def predict(self, rows: Sequence[Mapping[str, Any]]) -> npt.NDArray[np.float64]:
        proba = np.asarray(self.model.predict_proba(rows), dtype=np.float64)
        if proba.ndim != 2 or proba.shape != (len(rows), len(self.schema.classes)):
            raise RuntimeError(
                f"model {self.name}@{self.version} returned probabilities of shape {proba.shape}, "
                f"expected ({len(rows)}, {len(self.schema.classes)})"
            )
        return proba


class ModelSource(Protocol):
    """Where models come from: the registry in production, a fixed model in tests."""

    def version_of(self, spec: str) -> int:
        """The version ``spec`` (NAME@ALIAS) names now; cheap, polled every few seconds."""
        ...

    def load(self, spec: str) -> LoadedModel: ...
