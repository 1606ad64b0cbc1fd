"""The progress seam: library code reports stages, front ends decide how to show them."""

from __future__ import annotations

from typing import Protocol, runtime_checkable


class Progress(Protocol):
    def stage(self, name: str, total: float | None = None) -> None:
        """A new stage starts; ``total`` units of work if known."""

    def advance(self, amount: float = 1.0) -> None:
        """Some units of the current stage are done."""


class NoProgress:
    """The default: report nothing."""

    def stage(self, name: str, total: float | None = None) -> None:
        return None

    def advance(self, amount: float = 1.0) -> None:
        return None


@runtime_checkable
class ProgressNote(Protocol):
    """Optional extra of a Progress: a short live note for the current stage (e.g. the loss)."""

    def note(self, text: str) -> None: ...
