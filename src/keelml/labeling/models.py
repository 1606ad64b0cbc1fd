"""Default models for the loop: a featurizer for dataset tables, learners, and MC dropout.

Everything heavy (scikit-learn, torch) is imported inside the functions. A learner is fitted on
integer class codes ``0..n_classes-1`` and always returns ``n_classes`` probability columns, even
when some classes have no labeled row yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

import numpy as np
import pyarrow as pa

from keelml.core.errors import InvalidInputError, missing_dependency
from keelml.labeling.protocol import FloatArray, ModelOutputs, Output

LearnerKind = Literal["logreg", "mlp"]
LEARNERS: tuple[LearnerKind, ...] = ("logreg", "mlp")


class Learner(Protocol):
    def fit(self, x: Any, y: np.ndarray[Any, Any]) -> Learner: ...

    def predict_proba(self, x: Any) -> FloatArray: ...

    def mc_probs(self, x: Any, samples: int) -> FloatArray: ...


def _sklearn() -> None:
    try:
        import sklearn  # noqa: F401
    except ImportError as exc:
        raise missing_dependency("sklearn", "labeling", "the default labeling model") from exc


def _expand(probs: FloatArray, classes: np.ndarray[Any, Any], n_classes: int) -> FloatArray:
    full = np.zeros((probs.shape[0], n_classes))
    full[:, classes.astype(np.intp)] = probs
    return full


class LogRegLearner:
    """Multinomial logistic regression; ``mc_probs`` are from a bootstrap ensemble."""

    def __init__(self, n_classes: int, seed: int = 0, C: float = 1.0, max_iter: int = 500) -> None:
        self.n_classes, self.seed, self.C, self.max_iter = n_classes, seed, C, max_iter
        self._model: Any = None
        self._only: int | None = None
        self._xy: tuple[Any, np.ndarray[Any, Any]] | None = None

    def _fit_one(self, x: Any, y: np.ndarray[Any, Any]) -> Any:
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(C=self.C, max_iter=self.max_iter).fit(x, y)

    def fit(self, x: Any, y: np.ndarray[Any, Any]) -> LogRegLearner:
        _sklearn()
        self._xy = (x, y)
        classes = np.unique(y)
        self._only = int(classes[0]) if len(classes) == 1 else None
        self._model = None if self._only is not None else self._fit_one(x, y)
        return self

    def predict_proba(self, x: Any) -> FloatArray:
        if self._only is not None:
            probs = np.full((x.shape[0], self.n_classes), 0.0)
            probs[:, self._only] = 1.0
            return probs
        return _expand(self._model.predict_proba(x), self._model.classes_, self.n_classes)

    def mc_probs(self, x: Any, samples: int = 8) -> FloatArray:
        assert self._xy is not None, "fit first"
        xs, ys = self._xy
        rng = np.random.default_rng(self.seed)
        out = []
        for _ in range(samples):
            idx = rng.integers(0, len(ys), len(ys))
            if len(np.unique(ys[idx])) < 2:
                out.append(self.predict_proba(x))
                continue
            model = self._fit_one(xs[idx], ys[idx])
            out.append(_expand(model.predict_proba(x), model.classes_, self.n_classes))
        return np.stack(out)


class TorchMLPLearner:
    """A small MLP (one hidden layer, dropout) in torch, trained full-batch with Adam; ``mc_probs``
    are MC-dropout samples. Input must be dense."""

    def __init__(
        self, n_classes: int, seed: int = 0, hidden: int = 128, dropout: float = 0.2, epochs: int = 150
    ) -> None:
        self.n_classes, self.seed, self.hidden, self.dropout, self.epochs = (
            n_classes,
            seed,
            hidden,
            dropout,
            epochs,
        )
        self.module: Any = None

    def fit(self, x: Any, y: np.ndarray[Any, Any]) -> TorchMLPLearner:
        try:
            import torch
        except ImportError as exc:
            raise missing_dependency("torch", "torch", "the MLP labeling model") from exc
        torch.manual_seed(self.seed)
        xt = torch.as_tensor(np.asarray(x), dtype=torch.float32)
        yt = torch.as_tensor(np.asarray(y), dtype=torch.long)
        self.module = torch.nn.Sequential(
            torch.nn.Linear(xt.shape[1], self.hidden),
            torch.nn.ReLU(),
            torch.nn.Dropout(self.dropout),
            torch.nn.Linear(self.hidden, self.n_classes),
        )
        opt = torch.optim.Adam(self.module.parameters(), lr=1e-2, weight_decay=1e-4)
        self.module.train()
        for _ in range(self.epochs):
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(self.module(xt), yt)
            loss.backward()  # type: ignore[no-untyped-call]
            opt.step()
        self.module.eval()
        return self

    def predict_proba(self, x: Any) -> FloatArray:
        import torch

        with torch.no_grad():
            logits = self.module(torch.as_tensor(np.asarray(x), dtype=torch.float32))
        return torch.softmax(logits, dim=1).double().numpy()

    def mc_probs(self, x: Any, samples: int = 20) -> FloatArray:
        return mc_dropout_probs(self.module, np.asarray(x), samples=samples, seed=self.seed)


def make_learner(kind: LearnerKind, n_classes: int, seed: int = 0) -> Learner:
    if kind == "logreg":
        return LogRegLearner(n_classes, seed)
    if kind == "mlp":
        return TorchMLPLearner(n_classes, seed)
    raise InvalidInputError(
        f"unknown model {kind!r}",
        expected=f"one of {', '.join(LEARNERS)}, or a probabilities / model file",
        received=str(kind),
        fix="use --model logreg (the default) or --model mlp",
    )


def mc_dropout_probs(
    module: Any, x: Any, *, samples: int = 20, batch_size: int = 8192, seed: int = 0
) -> FloatArray:
    """Class probabilities from ``samples`` stochastic forward passes of a torch module with its
    dropout layers active (MC dropout, Gal & Ghahramani 2016): an array samples x n x classes.

    Only dropout layers are switched to training mode (batch norm keeps its running statistics);
    the module's modes are restored afterwards. The module must output logits.
    """
    import torch

    dropouts = [m for m in module.modules() if isinstance(m, torch.nn.modules.dropout._DropoutNd)]
    if not dropouts or all(m.p == 0 for m in dropouts):
        raise InvalidInputError(
            "MC dropout needs a module with dropout layers",
            expected="a torch module containing torch.nn.Dropout with p > 0",
            received=f"{type(module).__name__} without active dropout",
            fix="add a Dropout layer, or use an uncertainty strategy on plain probabilities (margin)",
        )
    modes = {m: m.training for m in module.modules()}
    xt = torch.as_tensor(np.asarray(x), dtype=torch.float32)
    out = np.empty((samples, xt.shape[0], 0))
    try:
        module.eval()
        for m in dropouts:
            m.train()
        with torch.random.fork_rng(), torch.no_grad():
            torch.manual_seed(seed)
            parts = [
                torch.stack([torch.softmax(module(xt[i : i + batch_size]), dim=-1) for _ in range(samples)])
                for i in range(0, max(xt.shape[0], 1), batch_size)
            ]
            out = torch.cat(parts, dim=1).double().numpy()
    finally:
        for m, mode in modes.items():
            m.train(mode)
    return out


# -- features from a dataset table ------------------------------------------------------------------


@dataclass(frozen=True)
class FeatureSpec:
    """Which columns the default model reads, and how."""

    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    text: tuple[str, ...]

    @property
    def columns(self) -> tuple[str, ...]:
        return self.numeric + self.categorical + self.text


def infer_features(table: pa.Table, exclude: set[str]) -> FeatureSpec:
    """Numbers and booleans are numeric; strings are text when they average 3 words or more,
    categorical when at most half their values are distinct, and otherwise (codes, identifiers)
    left out, as are timestamps and the role columns."""
    import pyarrow.compute as pc

    numeric: list[str] = []
    categorical: list[str] = []
    text: list[str] = []
    for f in table.schema:
        if f.name in exclude:
            continue
        t = f.type
        if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t):
            numeric.append(f.name)
        elif pa.types.is_string(t) or pa.types.is_large_string(t):
            col = table.column(f.name).drop_null()
            if len(col) == 0:
                continue
            words = pc.mean(pc.list_value_length(pc.utf8_split_whitespace(col))).as_py() or 0.0
            distinct = pc.count_distinct(col).as_py() / len(col)
            if words >= 3:
                text.append(f.name)
            elif distinct <= 0.5:
                categorical.append(f.name)  # else: an identifier-like code, left out
    if not (numeric or categorical or text):
        raise InvalidInputError(
            "no feature columns for the default labeling model",
            expected="at least one numeric, categorical or text column besides id, label and time",
            received=", ".join(table.column_names),
            fix="add feature columns, or pass precomputed probabilities with --model FILE",
        )
    return FeatureSpec(tuple(numeric), tuple(categorical), tuple(text))


class Featurizer:
    """Unsupervised features for a table: scaled numbers, one-hot categories, TF-IDF text; and a
    dense embedding (at most ``dims`` SVD components) for diversity strategies and the MLP."""

    def __init__(self, spec: FeatureSpec, dims: int = 64) -> None:
        self.spec, self.dims = spec, dims
        self._pipe: Any = None
        self._svd: Any = None

    def fit_transform(self, table: pa.Table) -> Any:
        _sklearn()
        from sklearn.compose import ColumnTransformer
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.impute import SimpleImputer
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import OneHotEncoder, StandardScaler

        parts: list[tuple[str, Any, Any]] = []
        if self.spec.numeric:
            parts.append(
                (
                    "num",
                    make_pipeline(SimpleImputer(strategy="median"), StandardScaler()),
                    list(self.spec.numeric),
                )
            )
        if self.spec.categorical:
            encoder = make_pipeline(
                SimpleImputer(strategy="constant", fill_value="(missing)"),
                OneHotEncoder(handle_unknown="ignore"),
            )
            parts.append(("cat", encoder, list(self.spec.categorical)))
        for i, column in enumerate(self.spec.text):
            tfidf = TfidfVectorizer(
                sublinear_tf=True,
                min_df=2 if table.num_rows >= 100 else 1,
                ngram_range=(1, 2),
                max_features=50_000,
                token_pattern=r"(?u)\b\w+\b",
            )
            parts.append((f"text{i}", tfidf, column))
        self._pipe = ColumnTransformer(parts, sparse_threshold=0.3)
        return self._pipe.fit_transform(self._frame(table))

    def transform(self, table: pa.Table) -> Any:
        return self._pipe.transform(self._frame(table))

    def _frame(self, table: pa.Table) -> Any:
        frame = table.select(list(self.spec.columns)).to_pandas()
        for column in self.spec.text:
            frame[column] = frame[column].fillna("")
        return frame

    def embed(self, x: Any) -> FloatArray:
        """Dense rows: the features themselves when narrow, else SVD components fitted on first use."""
        import scipy.sparse as sp

        if not sp.issparse(x) and x.shape[1] <= self.dims:
            return np.asarray(x, dtype=np.float64)
        if self._svd is None:
            from sklearn.decomposition import TruncatedSVD

            k = max(1, min(self.dims, x.shape[1] - 1, x.shape[0] - 1))
            self._svd = TruncatedSVD(n_components=k, random_state=0).fit(x)
        return np.asarray(self._svd.transform(x), dtype=np.float64)


def pool_outputs(
    learner: Learner,
    x_pool: Any,
    requires: frozenset[Output],
    embed_pool: FloatArray | None = None,
    embed_labeled: FloatArray | None = None,
    mc_samples: int = 10,
) -> ModelOutputs:
    """The outputs a strategy needs, computed only when it needs them."""
    return ModelOutputs(
        probs=learner.predict_proba(x_pool),
        mc_probs=learner.mc_probs(x_pool, mc_samples) if "mc_probs" in requires else None,
        embeddings=embed_pool,
        labeled_embeddings=embed_labeled,
    )
