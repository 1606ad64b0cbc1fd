"""What export needs of a trained model, as structural protocols (export never imports train).

``TextClassifier`` and ``TabularClassifier`` of ``keelml.train`` satisfy :class:`Exportable`: their
``export_source()`` returns an object with the attributes of :class:`ExportSourceLike`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, Protocol, runtime_checkable

Task = Literal["text", "tabular"]
FieldKind = Literal["text", "number", "category"]


class ExportSourceLike(Protocol):
    """A torch module giving class probabilities, example inputs, and the preprocessing as data."""

    @property
    def task(self) -> str: ...
    @property
    def module(self) -> Any: ...
    @property
    def example_inputs(self) -> tuple[Any, ...]: ...
    @property
    def input_names(self) -> tuple[str, ...]: ...
    @property
    def dynamic_axes(self) -> Mapping[str, Mapping[int, str]]: ...
    @property
    def classes(self) -> tuple[str, ...]: ...
    @property
    def fields(self) -> tuple[tuple[str, str], ...]: ...
    @property
    def preprocessing(self) -> Mapping[str, Any]: ...
    @property
    def config(self) -> Mapping[str, Any]: ...
    @property
    def files(self) -> Mapping[str, bytes]: ...


@runtime_checkable
class Exportable(Protocol):
    """A trained model that can describe itself for export."""

    def export_source(self) -> ExportSourceLike: ...
