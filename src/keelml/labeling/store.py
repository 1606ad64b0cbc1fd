"""``ws.labels``: suggest the next rows to label, import labeled batches, resolve labels.

Annotations live in a companion dataset ``NAME__annotations`` (one row per label given: row id,
label, annotator, batch, time, source file), versioned on Delta like any dataset. Each import appends
there first and then writes the resolved labels as a new version of ``NAME`` (operation
``label-import``) whose lineage points at the annotations version. A batch is checked as a whole
before anything is written.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from keelml.core.errors import ConflictError, InvalidInputError
from keelml.core.progress import NoProgress, Progress
from keelml.core.refs import DatasetRef
from keelml.core.workspace import Workspace, workspace_accessor
from keelml.labeling.batch import (
    BatchRejectedError,
    BatchRow,
    check_rows,
    dedupe,
    parse_rows,
    read_batch,
    write_batch,
)
from keelml.labeling.consensus import AgreementReport, agreement_report
from keelml.labeling.models import LEARNERS, Featurizer, infer_features
from keelml.labeling.protocol import BudgetTooLargeError, EmptyPoolError, ModelOutputs, get_strategy, select
from keelml.labeling.registered import registered_outputs
from keelml.labeling.simulate import SimulationConfig, SimulationResult, simulate
from keelml.labeling.suggest import PROBABILITY_FORMATS, DatasetView, model_outputs

ANNOTATIONS_SUFFIX = "__annotations"


@dataclass(frozen=True)
class Suggestion:
    """The batch ``suggest`` picked: rows (most informative first) and where it was written."""

    source: DatasetRef
    batch_id: str
    strategy: str
    model: str
    ids: tuple[Any, ...]
    pool_size: int
    labeled: int
    table: pa.Table
    path: Path | None
    note: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "dataset": str(self.source),
            "batch_id": self.batch_id,
            "strategy": self.strategy,
            "model": self.model,
            "rows": len(self.ids),
            "ids": list(self.ids),
            "pool_size": self.pool_size,
            "labeled": self.labeled,
            "path": None if self.path is None else str(self.path),
            "note": self.note,
        }


@dataclass(frozen=True)
class ImportResult:
    """What an import wrote: the annotations version and the new dataset version (None: no change)."""

    dataset: DatasetRef | None
    annotations: DatasetRef | None
    batches: tuple[str, ...]
    annotators: tuple[str, ...]
    imported: int
    already_imported: int
    blank: int
    rows_labeled: int

    def to_json(self) -> dict[str, Any]:
        return {
            "dataset": None if self.dataset is None else str(self.dataset),
            "annotations": None if self.annotations is None else str(self.annotations),
            "batches": list(self.batches),
            "annotators": list(self.annotators),
            "imported": self.imported,
            "already_imported": self.already_imported,
            "blank": self.blank,
            "rows_labeled": self.rows_labeled,
        }


def _names_registered_model(model: str | Path | None) -> bool:
    """``--model`` is a registry spec (NAME[@V|@ALIAS]) unless it is a built-in learner or a file."""
    if model is None or str(model) in LEARNERS or isinstance(model, Path):
        return False
    return Path(model).suffix.lower() not in PROBABILITY_FORMATS and not Path(model).exists()


def _file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


class LabelStore:
    def __init__(self, ws: Workspace) -> None:
        self._ws = ws

    @property
    def _datasets(self) -> Any:
        return self._ws.datasets

    def view(self, name: str) -> DatasetView:
        return DatasetView.load(self._datasets, name)

    # -- suggest --------------------------------------------------------------------------------

    def suggest(
        self,
        name: str,
        budget: int,
        *,
        strategy: str = "margin",
        model: str | Path | None = None,
        output: str | Path | None = None,
        seed: int = 0,
        progress: Progress | None = None,
    ) -> Suggestion:
        """Pick the next ``budget`` unlabeled rows of ``name`` and (with ``output``) write the batch.

        ``model``: None or ``"logreg"`` (default: logistic regression on the dataset's features,
        trained on the labeled rows), ``"mlp"`` (a small torch MLP), or a CSV/Parquet/JSON-lines
        file of precomputed probabilities (the id column plus one column per class), or a registered
        model ``NAME[@VERSION|@ALIAS]`` (trained with ``keel train``) that scores the unlabeled rows.
        """
        progress = progress or NoProgress()
        chosen = get_strategy(strategy)
        progress.stage("reading dataset")
        view = self.view(name)
        pool = view.unlabeled_index
        if len(pool) == 0:
            raise EmptyPoolError(
                f"{view.ref} has no unlabeled rows",
                expected="rows whose label is missing",
                received=f"{view.table.num_rows} rows, all labeled",
                fix=f"append unlabeled rows (`keel data append {name} FILE`)",
            )
        if budget < 1 or budget > len(pool):
            raise BudgetTooLargeError(
                f"a budget of {budget} does not fit the pool of {len(pool)} unlabeled rows",
                expected=f"a budget between 1 and {len(pool)}",
                received=str(budget),
                fix=f"ask for at most {len(pool)} rows (--budget {len(pool)})",
            )
        progress.stage(
            "training the model" if model is None or str(model) in ("logreg", "mlp") else "scoring"
        )
        if _names_registered_model(model):
            outputs, model_name, classes = registered_outputs(self._ws, view, chosen, str(model))
            note = None
        else:
            outputs, model_name, note, classes = model_outputs(view, chosen, model, seed=seed)
        if note is not None and outputs.probs is None:
            chosen = get_strategy("kcenter" if outputs.embeddings is not None else "random")
        progress.stage(f"selecting {budget} rows ({chosen.name})")
        picked = select(chosen, outputs, budget, seed=seed)
        rows = pool[picked]
        batch_id = (
            f"{name}-v{view.ref.version}-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"
        )
        table = self._batch_table(view, rows, outputs, picked, classes, batch_id)
        path = None if output is None else write_batch(table, output)
        return Suggestion(
            view.ref,
            batch_id,
            chosen.name,
            model_name,
            tuple(table.column(view.id_column).to_pylist()),
            len(pool),
            view.table.num_rows - len(pool),
            table,
            path,
            note,
        )

    @staticmethod
    def _batch_table(
        view: DatasetView,
        rows: np.ndarray[Any, Any],
        outputs: ModelOutputs,
        picked: np.ndarray[Any, Any],
        classes: list[str],
        batch_id: str,
    ) -> pa.Table:
        base = view.table.take(pa.array(rows))
        columns = [view.id_column] + [
            c for c in base.column_names if c not in (view.id_column, view.label_column)
        ]
        table = base.select(columns)
        table = table.append_column(view.label_column, pa.nulls(len(rows), pa.string()))
        suggested: list[str | None] = [None] * len(rows)
        confidence: list[float | None] = [None] * len(rows)
        if outputs.probs is not None and classes:
            probs = outputs.probs[picked]
            suggested = [classes[i] for i in probs.argmax(axis=1)]
            confidence = [round(float(v), 4) for v in probs.max(axis=1)]
        return (
            table.append_column("keel_suggested", pa.array(suggested, pa.string()))
            .append_column("keel_confidence", pa.array(confidence, pa.float64()))
            .append_column("keel_rank", pa.array(np.arange(1, len(rows) + 1), pa.int64()))
            .append_column("keel_batch", pa.array([batch_id] * len(rows), pa.string()))
        )

    # -- annotations ----------------------------------------------------------------------------

    def annotations(self, name: str) -> pa.Table:
        """Every label given for ``name`` (empty when nothing was imported yet)."""
        from keelml.core.errors import DatasetNotFoundError

        try:
            table: pa.Table = self._datasets.read(name + ANNOTATIONS_SUFFIX)
            return table
        except DatasetNotFoundError:
            return pa.table(
                {
                    c: pa.array([], t)
                    for c, t in (
                        ("annotation_id", pa.string()),
                        ("item_id", pa.string()),
                        ("label", pa.string()),
                        ("annotator", pa.string()),
                        ("batch_id", pa.string()),
                        ("annotated_at", pa.timestamp("us", tz="UTC")),
                        ("source", pa.string()),
                    )
                }
            )

    def import_batch(
        self,
        name: str,
        path: str | Path,
        *,
        annotator: str | None = None,
        classes: list[str] | None = None,
        progress: Progress | None = None,
    ) -> ImportResult:
        """Check a labeled batch as a whole, then store its labels and the resolved dataset version.

        Raises :class:`BatchRejectedError` (listing every problem) and writes nothing when any row has
        an unknown id, a label outside the class set, or conflicts with another label by the same
        annotator in the batch. Re-importing labels already stored changes nothing.
        """
        progress = progress or NoProgress()
        source = Path(path)
        progress.stage("checking the batch")
        records = read_batch(source)
        view = self.view(name)
        rows, blank = parse_rows(
            records,
            id_column=view.id_column,
            label_column=view.label_column,
            annotator=annotator,
            default_batch=f"file-{_file_digest(source)}",
        )
        existing = self.annotations(name)
        class_set = set(classes) if classes else view.classes | set(existing.column("label").to_pylist())
        if not class_set:
            raise InvalidInputError(
                f"{name} has no labels yet, so its class set is unknown",
                expected="the class set, from existing labels or --classes",
                received="no labeled rows and no --classes",
                fix="pass the classes, e.g. --classes great,other",
            )
        findings = list(check_rows(rows, view.id_texts, class_set))
        rows = dedupe(rows)
        stored = {
            (i, a, b): lab
            for i, a, b, lab in zip(
                *(existing.column(c).to_pylist() for c in ("item_id", "annotator", "batch_id", "label")),
                strict=True,
            )
        }
        clash = [r for r in rows if stored.get((r.item, r.annotator, r.batch), r.label) != r.label]
        if clash:
            from keelml.labeling.batch import Finding

            findings.append(
                Finding(
                    "conflicts with an earlier import",
                    "rows of this batch already imported by the same annotator with another label",
                    len(clash),
                    tuple(f"{r.item} by {r.annotator}: {stored[r.key]!r} -> {r.label!r}" for r in clash[:10]),
                    "a correction is a new batch: change or remove the keel_batch column, then import",
                )
            )
        if findings:
            raise BatchRejectedError(
                f"the batch {source.name} was not imported: {sum(f.rows for f in findings)} problem rows",
                tuple(findings),
                expected="known ids, labels from the class set, one label per row and annotator",
                received="; ".join(str(f) for f in findings),
                fix="; ".join(dict.fromkeys(f.fix for f in findings)),
            )
        new = [r for r in rows if (r.item, r.annotator, r.batch) not in stored]
        batches = tuple(sorted({r.batch for r in rows}))
        annotators = tuple(sorted({r.annotator for r in rows}))
        if not new:
            return ImportResult(None, None, batches, annotators, 0, len(rows), blank, 0)
        progress.stage("storing annotations")
        ann_ref = self._store_annotations(name, new, source)
        progress.stage("writing resolved labels")
        ref = self._write_resolved(view, self.annotations(name), ann_ref, str(source.resolve()))
        return ImportResult(
            ref,
            ann_ref,
            batches,
            annotators,
            len(new),
            len(rows) - len(new),
            blank,
            len({r.item for r in new}),
        )

    def _store_annotations(self, name: str, rows: list[BatchRow], source: Path) -> DatasetRef:
        now = dt.datetime.now(dt.UTC)
        table = pa.table(
            {
                "annotation_id": pa.array([f"{r.batch}/{r.annotator}/{r.item}" for r in rows], pa.string()),
                "item_id": pa.array([r.item for r in rows], pa.string()),
                "label": pa.array([r.label for r in rows], pa.string()),
                "annotator": pa.array([r.annotator for r in rows], pa.string()),
                "batch_id": pa.array([r.batch for r in rows], pa.string()),
                "annotated_at": pa.array([now] * len(rows), pa.timestamp("us", tz="UTC")),
                "source": pa.array([str(source.resolve())] * len(rows), pa.string()),
            }
        )
        ann_name = name + ANNOTATIONS_SUFFIX
        if any(i.name == ann_name for i in self._datasets.list()):
            return self._datasets.append(ann_name, table, source_name=str(source.resolve()))  # type: ignore[no-any-return]
        return self._datasets.add(  # type: ignore[no-any-return]
            ann_name, table, label="label", id="annotation_id", source_name=str(source.resolve())
        )

    def _write_resolved(
        self,
        view: DatasetView,
        annotations: pa.Table,
        parent: DatasetRef,
        source: str,
        operation: str = "label-import",
        resolved: dict[str, str] | None = None,
    ) -> DatasetRef:
        labels = resolved if resolved is not None else resolve(annotations)
        ids = view.id_text_array
        keys = pa.array(list(labels), pa.string())
        position = pc.index_in(ids, value_set=keys)
        values = pa.array(list(labels.values()), pa.string()).cast(view.label_type)
        current = view.table.column(view.label_column).combine_chunks().cast(view.label_type)
        picked = values.take(pc.fill_null(position, 0)) if len(values) else current
        new_labels = pc.if_else(pc.is_valid(position), picked, current)
        if new_labels.equals(current):
            return view.ref
        index = view.table.column_names.index(view.label_column)
        table = view.table.set_column(index, view.label_column, new_labels)
        return self._datasets.write_version(  # type: ignore[no-any-return]
            view.ref.name, table, operation=operation, source=source, parents=(parent,)
        )

    def agreement(self, name: str, *, use_model: bool = True, write: bool = False) -> AgreementReport:
        """Agreement statistics, per-annotator quality and consensus labels for ``name``'s annotations;
        with ``write``, the consensus labels become a new version (operation ``label-consensus``)."""
        report = agreement_report(self.view(name), self.annotations(name), use_model=use_model)
        if write:
            self.write_consensus(name, report.consensus)
        return report

    def simulate(
        self, name: str, config: SimulationConfig, *, progress: Progress | None = None
    ) -> SimulationResult:
        """Replay the loop on ``name``'s labeled rows (the oracle) with the default features."""
        view = self.view(name)
        labeled = view.labeled_mask
        table = view.table.filter(pa.array(labeled))
        texts = [str(t) for t, keep in zip(view.label_texts, labeled, strict=True) if keep]
        classes = sorted(set(texts))
        if len(classes) < 2:
            raise InvalidInputError(
                f"{view.ref} needs labeled rows of at least two classes to simulate",
                expected="known labels to replay as the oracle",
                received=f"{len(texts)} labeled rows in {len(classes)} class(es)",
                fix="simulate on a dataset with labels, e.g. one added with --label",
            )
        y = np.array([classes.index(t) for t in texts])
        exclude = {view.id_column, view.label_column} | ({view.time_column} if view.time_column else set())
        featurizer = Featurizer(infer_features(table, exclude))
        x = featurizer.fit_transform(table)
        needs_dense = config.learner == "mlp" or any(
            "embeddings" in get_strategy(s).requires or s == "hybrid" for s in config.strategies
        )
        emb = featurizer.embed(x) if needs_dense else None
        inputs = emb if config.learner == "mlp" else x
        return simulate(inputs, y, config, embeddings=emb, progress=progress)

    def resolved(self, name: str) -> dict[str, str]:
        """Each annotated row's resolved label (id as text -> label as text)."""
        return resolve(self.annotations(name))

    def write_consensus(self, name: str, labels: dict[str, str]) -> DatasetRef:
        """Write consensus labels (id text -> label text) as a new version (``label-consensus``)."""
        view = self.view(name)
        ann = self._datasets.ref(name + ANNOTATIONS_SUFFIX)
        current = {k: v for k, v in zip(view.id_texts_list, view.label_texts, strict=True) if k in labels}
        if current == labels:
            raise ConflictError(
                f"{view.ref} already holds these consensus labels",
                expected="labels that differ from the current version",
                received=f"{len(labels)} identical labels",
                fix="nothing to do",
            )
        return self._write_resolved(view, pa.table({}), ann, f"consensus of {ann}", "label-consensus", labels)


def resolve(annotations: pa.Table) -> dict[str, str]:
    """Each row's label from its annotations: each annotator's latest label, then the majority over
    annotators; a tie goes to the label given most recently.

    >>> t = pa.table({"item_id": ["1", "1", "1", "2"], "label": ["a", "b", "b", "a"],
    ...               "annotator": ["x", "y", "z", "x"], "annotated_at": [1, 2, 3, 4]})
    >>> sorted(resolve(t).items())
    [('1', 'b'), ('2', 'a')]
    """
    if annotations.num_rows == 0:
        return {}
    frame = annotations.select(["item_id", "label", "annotator", "annotated_at"]).to_pandas()
    frame["order"] = np.arange(len(frame))
    latest = (
        frame.sort_values(["annotated_at", "order"]).groupby(["item_id", "annotator"], sort=False).tail(1)
    )
    stats = latest.groupby(["item_id", "label"], sort=False).agg(
        votes=("order", "size"), last=("order", "max")
    )
    best = stats.sort_values(["votes", "last"]).groupby(level=0).tail(1).reset_index()
    return dict(zip(best["item_id"].astype(str), best["label"].astype(str), strict=True))


@workspace_accessor("labels")
def _labels(ws: Workspace) -> LabelStore:
    return LabelStore(ws)
