"""Tabular classification: a small torch MLP (or the logistic-regression baseline) on preprocessed features.

The preprocessing, classes and config travel with the weights in one file, so a loaded model
predicts on raw rows. Training is seeded; on CPU with a fixed thread count it is deterministic.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa

from keelml.core.errors import ColumnNotFoundError, InvalidInputError
from keelml.core.progress import Progress
from keelml.core.tracking import RunLogger
from keelml.train.config import TabularConfig, is_private
from keelml.train.evaluation import Evaluation, evaluate
from keelml.train.exporting import ExportSource, probability_module
from keelml.train.preprocess import Preprocessor
from keelml.train.private import PrivacyReport, PrivateBatches, PrivateTraining, run_private
from keelml.train.trainer import FitHistory, fit, seed_everything

FORMAT = "keelml.tabular/1"
SYNTHETIC_COLUMN = "keel_synthetic"  # the marker column of keel augment (a convention, not an import)


class SliceLike(Protocol):
    """What evaluation needs of a slice (``keelml.data.slices.Slice`` is one)."""

    @property
    def name(self) -> str: ...

    def mask(self, table: pa.Table) -> Any: ...


def _build(n_in: int, n_out: int, config: TabularConfig) -> Any:
    from torch import nn

    if config.model == "logreg":
        return nn.Linear(n_in, n_out)
    layers: list[Any] = []
    width = n_in
    activation = nn.Tanh if config.activation == "tanh" else nn.ReLU
    for size in config.hidden:
        layers += [nn.Linear(width, size), activation()]
        width = size
    layers.append(nn.Linear(width, n_out))
    return nn.Sequential(*layers)


class TabularClassifier:
    """A fitted model: preprocessing + torch module + class names."""

    def __init__(
        self, module: Any, preprocessor: Preprocessor, classes: tuple[str, ...], config: TabularConfig
    ):
        self.module = module
        self.preprocessor = preprocessor
        self.classes = classes
        self.config = config

    def predict_proba(self, rows: pd.DataFrame | pa.Table) -> npt.NDArray[np.float64]:
        import torch

        frame = rows.to_pandas() if isinstance(rows, pa.Table) else rows
        x = torch.from_numpy(self.preprocessor.transform(frame))
        with torch.no_grad():
            return torch.softmax(self.module(x), dim=1).double().numpy()

    def predict(self, rows: pd.DataFrame | pa.Table) -> list[str]:
        return [self.classes[i] for i in self.predict_proba(rows).argmax(axis=1)]

    def export_source(self) -> ExportSource:
        """The module with a softmax, an example batch, and the preprocessor as JSON."""
        import torch

        pre = self.preprocessor
        fields = tuple((c.name, "number") for c in pre.numeric) + tuple(
            (c.name, "category") for c in pre.categorical
        )
        example = torch.zeros((2, len(pre.output_names)), dtype=torch.float32)
        return ExportSource(
            task="tabular", module=probability_module(self.module), example_inputs=(example,),
            input_names=("features",), dynamic_axes={"features": {0: "batch"}}, classes=self.classes,
            fields=fields, preprocessing={"kind": "tabular", "preprocessor": pre.to_json()},
            config=self.config.to_json(),
        )  # fmt: skip

    @property
    def parameter_count(self) -> int:
        return sum(int(p.numel()) for p in self.module.parameters())

    def to_bytes(self) -> bytes:
        import torch

        buffer = io.BytesIO()
        payload = {
            "format": FORMAT,
            "config": json.dumps(self.config.to_json()),
            "preprocessor": json.dumps(self.preprocessor.to_json()),
            "classes": list(self.classes),
            "state": self.module.state_dict(),
        }
        torch.save(payload, buffer)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> TabularClassifier:
        import torch

        payload = torch.load(io.BytesIO(data), weights_only=True)
        if not isinstance(payload, dict) or payload.get("format") != FORMAT:
            raise InvalidInputError(
                "not a keelml tabular model",
                expected=FORMAT,
                received=str(type(payload)),
                fix="pass a model file",
            )
        config = TabularConfig.from_mapping(json.loads(payload["config"]))
        pre = Preprocessor.from_json(json.loads(payload["preprocessor"]))
        classes = tuple(payload["classes"])
        module = _build(len(pre.output_names), len(classes), config)
        module.load_state_dict(payload["state"])
        module.eval()
        return cls(module, pre, classes, config)


@dataclass(frozen=True, slots=True)
class TabularResult:
    model: TabularClassifier
    evaluation: Evaluation
    history: FitHistory
    sizes: dict[str, int]
    label: str
    features: tuple[str, ...]
    privacy: PrivacyReport | None = None  # set by a DP-SGD run


class SplitSettings(Protocol):
    @property
    def seed(self) -> int: ...
    @property
    def test_fraction(self) -> float: ...
    @property
    def validation_fraction(self) -> float: ...


def split_indices(
    y: npt.NDArray[np.int64], config: SplitSettings, *, train_only: npt.NDArray[np.bool_] | None = None
) -> dict[str, npt.NDArray[np.int64]]:
    """Seeded stratified split into train / validation / test row indices.

    Rows where ``train_only`` is true (synthetic rows, see :func:`synthetic_rows`) always go to
    train; validation and test are drawn from the other rows only, exactly as without them.

    >>> parts = split_indices(np.array([0, 1] * 50), TabularConfig(test_fraction=0.2))
    >>> {k: len(v) for k, v in parts.items()}
    {'train': 70, 'validation': 10, 'test': 20}
    >>> marked = np.array([False] * 100 + [True] * 10)
    >>> more = split_indices(np.array([0, 1] * 55), TabularConfig(test_fraction=0.2), train_only=marked)
    >>> {k: len(v) for k, v in more.items()}, bool(np.isin(np.arange(100, 110), more["train"]).all())
    ({'train': 80, 'validation': 10, 'test': 20}, True)
    """
    rng = np.random.default_rng(config.seed)
    real = np.ones(len(y), dtype=bool) if train_only is None else ~train_only
    out: dict[str, list[int]] = {"train": np.flatnonzero(~real).tolist(), "validation": [], "test": []}
    for cls in np.unique(y):
        idx = rng.permutation(np.flatnonzero((y == cls) & real))
        n_test = round(len(idx) * config.test_fraction)
        n_val = round(len(idx) * config.validation_fraction)
        out["test"] += idx[:n_test].tolist()
        out["validation"] += idx[n_test : n_test + n_val].tolist()
        out["train"] += idx[n_test + n_val :].tolist()
    return {k: np.sort(np.array(v, dtype=np.int64)) for k, v in out.items()}


def synthetic_rows(table: pa.Table) -> npt.NDArray[np.bool_]:
    """Rows marked synthetic by ``keel augment`` (column ``keel_synthetic``): train only, never evaluated."""
    if SYNTHETIC_COLUMN not in table.column_names:
        return np.zeros(table.num_rows, dtype=bool)
    return np.array([bool(v) for v in table.column(SYNTHETIC_COLUMN).to_pylist()], dtype=bool)


def labels_of(table: pa.Table, label: str) -> tuple[pa.Table, npt.NDArray[np.int64], tuple[str, ...]]:
    if label not in table.column_names:
        raise ColumnNotFoundError(
            f"label column {label!r} is not in the data",
            expected=f"one of {', '.join(table.column_names)}",
            received=label,
            fix="pass --label COLUMN, or set the dataset's label column with `keel data add --label`",
        )
    table = table.filter(table[label].is_valid())
    values = [str(v) for v in table[label].to_pylist()]
    classes = tuple(sorted(set(values)))
    if len(classes) < 2:
        raise InvalidInputError(
            f"label column {label!r} has {len(classes)} class(es); a classifier needs at least two",
            expected="two or more distinct non-missing label values",
            received=", ".join(classes) or "no labelled rows",
            fix="label more rows of the other classes (`keel label suggest`), or choose another label",
        )
    index = {c: i for i, c in enumerate(classes)}
    return table, np.array([index[v] for v in values], dtype=np.int64), classes


def train_tabular(
    table: pa.Table,
    config: TabularConfig,
    *,
    label: str,
    exclude: Sequence[str] = (),
    slices: Sequence[SliceLike] = (),
    progress: Progress | None = None,
    logger: RunLogger | None = None,
    private: PrivateTraining | None = None,
) -> TabularResult:
    """Split, preprocess, train with early stopping, evaluate on the test part overall and per slice.

    A config with ``dp_epsilon`` or ``dp_noise_multiplier`` trains with DP-SGD (``private`` supplies
    the accountant: ``ws.training`` passes ``ws.privacy``)."""
    import torch

    table, y, classes = labels_of(table, config.label or label)
    label = config.label or label
    if config.features is not None:
        for name in config.features:
            if name not in table.column_names:
                raise ColumnNotFoundError(
                    f"feature column {name!r} is not in the data",
                    expected=f"columns among {', '.join(table.column_names)}",
                    received=name,
                    fix="fix the features list in the training config",
                )
        features = tuple(config.features)
    else:
        features = tuple(
            c for c in table.column_names if c not in (label, SYNTHETIC_COLUMN) and c not in exclude
        )
    parts = split_indices(y, config, train_only=synthetic_rows(table))
    if min(len(parts["train"]), len(parts["validation"]), len(parts["test"])) == 0:
        raise InvalidInputError(
            "too few labelled rows to split into train, validation and test",
            received=f"{len(y)} rows",
            fix="add rows, or raise test_fraction / validation_fraction",
        )
    frame = table.select(list(features)).to_pandas()
    seed_everything(config.seed)
    pre = Preprocessor.fit(
        frame.iloc[parts["train"]], max_categories=config.max_categories, fixed_range=config.input_range
    )
    x_all = torch.from_numpy(pre.transform(frame))
    y_all = torch.from_numpy(y)
    module = _build(x_all.shape[1], len(classes), config)
    optimizer = torch.optim.AdamW(
        module.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    train_x, train_y = x_all[parts["train"]], y_all[parts["train"]]

    def batches(generator: Any) -> list[tuple[Any, ...]]:
        order = torch.randperm(len(train_x), generator=generator)
        return [
            (train_x[order[i : i + config.batch_size]], train_y[order[i : i + config.batch_size]])
            for i in range(0, len(order), config.batch_size)
        ]

    weight = None
    if config.class_weight == "balanced":
        counts = np.bincount(y[parts["train"]], minlength=len(classes)).astype(np.float64)
        weight = torch.from_numpy(len(parts["train"]) / (len(classes) * np.maximum(counts, 1.0))).float()

    def loss_of(model: Any, batch: tuple[Any, ...]) -> Any:
        return torch.nn.functional.cross_entropy(model(batch[0]), batch[1], weight=weight)

    val = [(x_all[parts["validation"]], y_all[parts["validation"]])]
    privacy = None
    if is_private(config):
        data = PrivateBatches((train_x, train_y), lambda m, b: m(b[0]), lambda b: b[1])
        privacy, history = run_private(
            module, data, lambda m: float(loss_of(m, val[0])), config, private, progress=progress,
            logger=logger, name=f"private training {config.model}",
        )  # fmt: skip
    else:
        history = fit(
            module, batches, loss_of, val, epochs=config.epochs, patience=config.patience,
            optimizer=optimizer, seed=config.seed, progress=progress, logger=logger,
            name=f"training {config.model}",
        )  # fmt: skip
    model = TabularClassifier(module, pre, classes, config)
    test = parts["test"]
    proba = model.predict_proba(frame.iloc[test])
    test_table = table.take(pa.array(test))
    masks = {
        s.name: np.asarray(s.mask(test_table).to_numpy(zero_copy_only=False), dtype=bool) for s in slices
    }
    evaluation = evaluate(y[test], proba, classes, masks)
    sizes = {k: len(v) for k, v in parts.items()}
    return TabularResult(model, evaluation, history, sizes, label, features, privacy)
