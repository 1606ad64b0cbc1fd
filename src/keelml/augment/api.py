"""``ws.augment``: write an augmented version (real rows + synthetic rows marked ``keel_synthetic``).

Datasets are read and written through the runtime accessor ``ws.datasets`` (this capability never
imports ``keelml.data``). The new version's lineage points at the source version, and its source
text holds a :class:`Manifest` (method, target, seed, holdout) from which ``evaluate`` rebuilds the
real rows that the method never saw.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa

from keelml.augment.columns import UnsupportedColumnError, is_text
from keelml.augment.config import OVERSAMPLERS, SYNTHETIC_COLUMN, TEXT_METHODS, AugmentConfig
from keelml.augment.guard import holdout_mask, synthetic_mask
from keelml.augment.manifest import Manifest
from keelml.augment.target import Target, resolve_target
from keelml.core.errors import InvalidInputError
from keelml.core.progress import NoProgress, Progress
from keelml.core.refs import DatasetRef
from keelml.core.workspace import Workspace

if TYPE_CHECKING:  # evaluate imports this module: a run-time import would be circular
    from keelml.augment.evaluate import AugmentEvaluation


@dataclass(frozen=True, slots=True)
class AugmentResult:
    source: DatasetRef
    ref: DatasetRef  # the new version
    method: str
    target: str
    target_kind: str
    target_rows: int  # real rows of the target
    fitted_rows: int  # of which the method learned from (the holdout excluded)
    synthetic_rows: int
    holdout_rows: int  # real rows (all classes) kept out of the fit for `keel augment evaluate`
    epsilon: float | None
    ledger: bool  # the DP spend was entered in the privacy ledger
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return {
            "source": str(self.source),
            "dataset": str(self.ref),
            "digest": self.ref.digest,
            "method": self.method,
            "target": self.target,
            "target_kind": self.target_kind,
            "target_rows": self.target_rows,
            "fitted_rows": self.fitted_rows,
            "synthetic_rows": self.synthetic_rows,
            "holdout_rows": self.holdout_rows,
            "epsilon": self.epsilon,
            "ledger": self.ledger,
            "seconds": round(self.seconds, 3),
        }


def declared_slices(ws: Workspace) -> dict[str, str]:
    """The ``[slices]`` table of keel.toml (name -> predicate); validated when used."""
    table = (ws.config.model_extra or {}).get("slices") or {}
    return {str(k): str(v) for k, v in table.items()} if isinstance(table, Mapping) else {}


def _count(config: AugmentConfig, target: Target, table: pa.Table, label: str | None, real: Any) -> int:
    if config.ratio is not None:
        return max(1, round(config.ratio * target.rows))
    if target.kind == "slice" or label is None:
        return target.rows
    counts = pd.Series(
        [str(v) for v in table.column(label).filter(pa.array(real)).to_pylist()]
    ).value_counts()
    missing = int(counts.max()) - target.rows
    if missing <= 0:
        raise InvalidInputError(
            f"class {target.name!r} is already the largest class ({target.rows} rows); nothing to balance",
            expected="a minority class, or an explicit ratio",
            received=", ".join(f"{k}: {v}" for k, v in counts.items()),
            fix="pass --ratio R (synthetic rows per real target row)",
        )
    return missing


def _to_arrow(values: pd.Series, field: pa.Field, original: pa.ChunkedArray) -> pa.Array:
    kind = field.type
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        return pa.array(values.to_numpy(dtype=np.float64), pa.float64(), from_pandas=True).cast(
            kind, safe=False
        )
    known = {str(v): v for v in original.unique().to_pylist() if v is not None}
    mapped = [None if v is None else known.get(str(v), v) for v in values.tolist()]
    if pa.types.is_dictionary(kind):
        return pa.array(mapped, kind.value_type).dictionary_encode().cast(kind)
    return pa.array(mapped, kind)


def _new_ids(column: pa.ChunkedArray, n: int, version: int) -> pa.Array:
    kind = column.type
    if pa.types.is_integer(kind):
        start = int(max((v for v in column.to_pylist() if v is not None), default=0)) + 1
        return pa.array(range(start, start + n), kind)
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        taken = set(column.to_pylist())
        ids: list[str] = []
        i = 0
        while len(ids) < n:
            candidate = f"synthetic-{version}-{i}"
            i += 1
            if candidate not in taken:
                ids.append(candidate)
        return pa.array(ids, kind)
    raise UnsupportedColumnError(
        f"cannot make new ids of type {kind} for synthetic rows",
        expected="an integer or string id column",
        received=str(kind),
        fix="use an integer or string id column",
    )


def assemble(
    table: pa.Table,
    new: pd.DataFrame,
    sources: npt.NDArray[np.int64],
    *,
    target: Target,
    label: str | None,
    id_column: str | None,
    version: int,
) -> pa.Table:
    """Real rows (marked false) followed by the synthetic rows (marked true), in the source schema.

    A synthetic row takes the generated columns; a class target's label; new ids; and every other
    column (a slice target's label, the time, untouched text columns) from its source row: the
    nearest real target row, or the text it was made from.
    """
    n = len(new)
    arrays = []
    for field in table.schema:
        name = field.name
        if name == SYNTHETIC_COLUMN:
            continue
        column = table.column(name)
        if name in new.columns:
            arrays.append(_to_arrow(new[name], field, column))
        elif name == label and target.kind == "class":
            arrays.append(
                column.filter(pa.array(target.mask)).slice(0, 1).combine_chunks().take(pa.array([0] * n))
            )
        elif name == id_column:
            arrays.append(_new_ids(column, n, version))
        else:
            arrays.append(column.take(pa.array(sources)).combine_chunks())
    real = table.drop_columns([SYNTHETIC_COLUMN]) if SYNTHETIC_COLUMN in table.column_names else table
    flag = pa.array(synthetic_mask(table))
    real = real.append_column(pa.field(SYNTHETIC_COLUMN, pa.bool_()), flag)
    synthetic = pa.Table.from_arrays([*arrays, pa.array([True] * n)], schema=real.schema)
    return pa.concat_tables([real, synthetic])


def _text_column(table: pa.Table, wanted: str | None, skip: set[str]) -> str:
    if wanted is not None:
        if wanted not in table.column_names:
            raise InvalidInputError(
                f"text column {wanted!r} is not in the data",
                expected="one of " + ", ".join(table.column_names),
                received=wanted,
                fix="pass --text COLUMN",
            )
        return str(wanted)
    texts = [c for c in table.column_names if c not in skip and is_text(table.column(c))]
    if len(texts) != 1:
        raise UnsupportedColumnError(
            "cannot tell which column holds the text to augment",
            expected="exactly one free-text column (strings over 40 characters on average), or --text",
            received=", ".join(texts) or "no free-text column",
            fix="pass --text COLUMN",
        )
    return str(texts[0])


class Augmenter:
    def __init__(self, ws: Workspace) -> None:
        self._ws = ws

    def run(
        self, spec: str | DatasetRef, config: AugmentConfig, *, progress: Progress | None = None
    ) -> AugmentResult:
        """Augment ``config.target`` of a version with ``config.method``; write and return the new version."""
        from keelml.augment.generate import generate

        started = time.perf_counter()
        progress = progress or NoProgress()
        datasets: Any = self._ws.datasets
        base: DatasetRef = datasets.ref(spec)
        record = datasets.dataset(base.name)
        label, id_column, time_column = record.label_column, record.id_column, record.time_column
        progress.stage(f"reading {base}")
        table: pa.Table = datasets.read(base)
        real = ~synthetic_mask(table)
        target = resolve_target(
            table, config.target, label=label, slices=declared_slices(self._ws), real=real, where=str(base)
        )
        roles = tuple(c for c in (id_column, time_column) if c)
        holdout = holdout_mask(table, label=label, exclude=roles, fraction=config.holdout, seed=config.seed)
        fit_rows = real & ~holdout
        n_new = _count(config, target, table, label, real)
        what = f"{target.kind} {target.name!r} of {base}" + (
            f" outside the {config.holdout:.0%} holdout" if config.holdout else ""
        )
        if config.dp_epsilon is not None and (ledger := self._ledger()) is not None:
            ledger.check(str(base), config.dp_epsilon, 0.0, accountant="laplace")  # refuse before fitting
        progress.stage(f"{config.method}: {n_new} synthetic rows")
        skip = {c for c in (label, id_column, time_column, SYNTHETIC_COLUMN) if c}
        text = _text_column(table, config.text, skip) if config.method in TEXT_METHODS else None
        new, sources = generate(
            table, config, target, fit_rows, n_new, label=label, skip=skip, text=text, what=what
        )
        epsilon = config.dp_epsilon
        ledger = self._spend(base, epsilon, config) if epsilon is not None else False
        combined = assemble(
            table, new, sources, target=target, label=label, id_column=id_column, version=base.version
        )
        manifest = Manifest(
            base.name,
            base.version,
            base.digest,
            config.to_json(),
            target.kind,
            target.rows,
            len(new),
            int(holdout.sum()),
            epsilon,
        )
        progress.stage("writing the new version")
        latest = datasets.ref(base.name)
        ref = datasets.write_version(
            base.name,
            combined,
            operation="augment",
            source=manifest.to_source(),
            parents=(base,) if latest != base else (),
            progress=progress,
        )
        return AugmentResult(
            base,
            ref,
            config.method,
            target.name,
            target.kind,
            target.rows,
            int((target.mask & fit_rows).sum()),
            len(new),
            int(holdout.sum()),
            epsilon,
            ledger,
            time.perf_counter() - started,
        )

    def _ledger(self) -> Any:
        """``ws.privacy`` where the privacy capability is installed, else None."""
        try:
            return self._ws.privacy
        except AttributeError:
            return None

    def _spend(self, base: DatasetRef, epsilon: float, config: AugmentConfig) -> bool:
        """Enter a DP fit in the privacy ledger (``ws.privacy``): True when entered."""
        ledger = self._ledger()
        if ledger is None:
            return False
        details = {"method": config.method, "target": config.target, "noise": "laplace",
                   "neighbouring": "replace-one", "seed": config.seed}  # fmt: skip
        ledger.spend(
            str(base), epsilon=epsilon, delta=0.0, kind="dp-synth", accountant="laplace", details=details
        )
        return True

    def manifest(self, spec: str | DatasetRef) -> Manifest:
        datasets: Any = self._ws.datasets
        info = datasets.version(spec)
        return Manifest.from_source(info.source, where=str(info.ref))

    def evaluate(
        self,
        synthetic: str | DatasetRef,
        real: str | DatasetRef | None = None,
        *,
        precision: float = 0.5,
        seed: int = 0,
        progress: Progress | None = None,
    ) -> AugmentEvaluation:
        """Fidelity, utility and privacy of an augmented version (see :mod:`keelml.augment.evaluate`)."""
        from keelml.augment.evaluate import evaluate_version

        return evaluate_version(self._ws, synthetic, real, precision=precision, seed=seed, progress=progress)


__all__ = ["OVERSAMPLERS", "AugmentResult", "Augmenter", "assemble", "declared_slices"]
