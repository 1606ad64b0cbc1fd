"""``ws.federated``: simulate federated training on a workspace dataset, tracked and registered.

Rows are split across simulated clients (the partitions are recorded as lineage nodes); each client
fits on its own rows; only statistics and updates reach the server. The final model is a
``keelml.tabular/1`` file registered through ``ws.models`` with edges from every client partition.
Client-level DP spends from the dataset's privacy budget through ``ws.privacy``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata
from typing import TYPE_CHECKING, Any

import numpy as np

from keelml.core.errors import ColumnNotFoundError, InvalidInputError, MissingDependencyError
from keelml.core.progress import Progress
from keelml.core.refs import ArtifactRef, DatasetRef
from keelml.core.workspace import Workspace
from keelml.federated.config import FederatedConfig
from keelml.federated.inprocess import EngineResult, HoldoutSet, RoundCallback
from keelml.federated.rounds import RoundMetrics

if TYPE_CHECKING:  # pandas is imported when a run reads its data, not by `import keelml`
    import pandas as pd

EpsilonFn = Callable[..., float]
FRAMEWORKS = ["torch", "numpy", "pandas", "pyarrow"]
TEXT_FRAMEWORKS = ["transformers", "peft", "tokenizers"]


@dataclass(frozen=True, slots=True)
class ClientPartition:
    client: str
    rows: int
    labels: dict[str, int]
    node_id: str


@dataclass(frozen=True, slots=True)
class FederatedRun:
    dataset: DatasetRef
    config: FederatedConfig
    history: tuple[RoundMetrics, ...]
    partitions: tuple[ClientPartition, ...]
    artifact: ArtifactRef
    run_id: str
    model: str | None  # NAME@V when registered
    epsilon: float | None  # client-level, for config.delta
    seconds_to_first_round: float
    seconds: float

    @property
    def final(self) -> dict[str, float]:
        return self.history[-1].scalars() if self.history else {}


def pip_requirements(task: str = "tabular") -> list[str]:
    out = [f"keelml=={metadata.version('keelml')}"]
    frameworks = FRAMEWORKS + (TEXT_FRAMEWORKS if task == "text" else [])
    return out + [f"{d}=={metadata.version(d).split('+')[0]}" for d in frameworks]


def client_epsilon(config: FederatedConfig, epsilon_fn: EpsilonFn) -> float | None:
    """Client-level epsilon of DP-FedAvg: Gaussian noise multiplier over sampled rounds."""
    if config.client_dp is None:
        return None
    per_round = max(config.min_clients, round(config.fraction_fit * config.clients))
    return float(
        epsilon_fn(
            noise_multiplier=config.client_dp[1],
            sample_rate=min(per_round / config.clients, 1.0),
            steps=config.rounds,
            delta=config.delta,
        )
    )


def split_holdout(
    y: np.ndarray[Any, Any], fraction: float, seed: int
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Stratified (train, test) row indices; the test rows stand for the population (simulation only)."""
    rng = np.random.default_rng([seed, 7])
    train: list[int] = []
    test: list[int] = []
    for cls in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == cls))
        n = round(len(idx) * fraction)
        test += idx[:n].tolist()
        train += idx[n:].tolist()
    return np.sort(np.array(train, dtype=np.int64)), np.sort(np.array(test, dtype=np.int64))


class Federated:
    def __init__(self, ws: Workspace) -> None:
        self._ws = ws

    def _privacy(self) -> Any:
        try:
            return self._ws.privacy
        except AttributeError as exc:
            raise MissingDependencyError(
                "client-level DP needs the privacy capability (ws.privacy) for accounting and the ledger",
                received="no ws.privacy accessor",
                fix="install keelml with the privacy extra: pip install 'keelml[privacy]'",
            ) from exc

    def simulate(
        self,
        data: str | DatasetRef,
        config: FederatedConfig | None = None,
        *,
        name: str | None = None,
        features: Sequence[str] | None = None,
        register: bool = True,
        epsilon_fn: EpsilonFn | None = None,
        on_round: RoundCallback | None = None,
        progress: Progress | None = None,
    ) -> FederatedRun:
        """Federated training on simulated clients holding parts of ``data``: a tabular MLP, or with
        ``config.task == "text"`` MiniLM + LoRA on the text column (adapter and head travel)."""
        from keelml.federated.client import FederatedClient
        from keelml.federated.model import LOADER, model_bytes
        from keelml.federated.partition import partition_rows
        from keelml.federated.text import LOADER as TEXT_LOADER

        config = config or FederatedConfig()
        started = time.perf_counter()
        datasets: Any = self._ws.datasets
        ref: DatasetRef = datasets.ref(data)
        record = datasets.dataset(ref.name)
        label = config.label or record.label_column
        if label is None:
            raise InvalidInputError(
                f"dataset {ref.name!r} has no label column and none was given",
                expected="a label column",
                received="none",
                fix="pass --label COLUMN",
            )
        frame: pd.DataFrame = datasets.read(ref).to_pandas()
        text_columns = [config.text] if config.task == "text" else []
        for column in [label, *(features or []), *text_columns]:
            if column not in frame.columns:
                raise ColumnNotFoundError(
                    f"column {column!r} is not in {ref}",
                    expected=", ".join(map(str, frame.columns)),
                    received=column,
                    fix="check --label / --features",
                )
        exclude = {c for c in (record.id_column, record.time_column) if c}
        spec = config.partition_spec
        if spec.kind == "by":
            if spec.column not in frame.columns:
                raise ColumnNotFoundError(
                    f"partition column {spec.column!r} is not in {ref}",
                    expected=", ".join(map(str, frame.columns)),
                    received=str(spec.column),
                    fix="pass --partition by:COLUMN with a column of the dataset",
                )
            exclude.add(str(spec.column))  # a client-identifying column is constant within a client
        frame = frame[frame[label].notna()].reset_index(drop=True)
        feature_names = (
            list(features) if features else [c for c in frame.columns if c != label and c not in exclude]
        )
        import pandas as pd

        y = pd.factorize(frame[label].astype(str), sort=True)[0].astype(np.int64)
        train_idx, test_idx = split_holdout(y, config.test_fraction, config.seed)
        train = frame.iloc[train_idx].reset_index(drop=True)
        groups = train[spec.column].to_numpy(dtype=object) if spec.kind == "by" else None
        parts = partition_rows(y[train_idx], spec, config.clients, seed=config.seed, groups=groups)
        if config.task == "text":
            clients, test, engine = self._text_engine(train, frame.iloc[test_idx], parts, label, config)
        else:
            clients = [
                FederatedClient(
                    f"client-{i}", train.iloc[p][[*feature_names, label]], label=label, features=feature_names
                )
                for i, p in enumerate(parts)
            ]
            test = HoldoutSet(
                frame.iloc[test_idx][feature_names], frame.iloc[test_idx][label].astype(str).tolist()
            )
            engine = self._engine

        privacy = self._privacy() if config.client_dp is not None else None
        epsilon = None
        if privacy is not None:
            epsilon = client_epsilon(config, epsilon_fn or privacy.compute_epsilon)
            privacy.check(ref.name, epsilon=epsilon, delta=config.delta)
        model_name = name or f"{ref.name}-fl"
        with self._ws.models.run(experiment=model_name, run_name=f"federated {model_name} on {ref}") as run:
            run.log_params({"task": config.task, "federated": True, "dataset": str(ref), **config.to_json()})
            run.set_tags(
                {"keel.dataset": str(ref), "keel.task": config.task, "keel.federated": config.engine}
            )
            version = self._ws.catalog.get_version(ref.name, ref.version)
            run.log_dataset(ref, source=record.table_uri, schema=version.schema, rows=version.row_count)

            def report(m: RoundMetrics) -> None:
                run.log_metrics(m.scalars(), step=m.round)
                if on_round is not None:
                    on_round(m)

            result = engine(clients, config, test, report, progress)
            if config.task == "text":
                blob, classes, loader = result.model.to_bytes(), result.classes, TEXT_LOADER
            else:
                blob = model_bytes(
                    result.weights, result.spec, hidden=config.hidden, label=label, seed=config.seed
                )
                classes, loader = result.spec.classes, LOADER
            artifact = self._ws.artifacts.put_bytes(blob)
            final = {f"test_{k}": v for k, v in result.history[-1].test.items()}
            final.update(
                {"rounds": float(config.rounds), "seconds_to_first_round": result.seconds_to_first_round}
            )
            if epsilon is not None:
                final.update({"client_epsilon": epsilon, "client_delta": config.delta})
            run.log_metrics(final)
            partitions = self._partitions(ref, config, parts, y[train_idx], classes)
            run.log_json("partitions.json", [dataclasses.asdict(p) for p in partitions])
            if privacy is not None and epsilon is not None:
                privacy.spend(
                    ref.name,
                    epsilon=epsilon,
                    delta=config.delta,
                    kind="federated",
                    run_id=run.run_id,
                    details={
                        "level": "client",
                        "neighbouring": "add or remove one client's data",
                        "clip": config.client_dp[0] if config.client_dp else None,
                        "noise_multiplier": config.client_dp[1] if config.client_dp else None,
                        "clients": config.clients,
                        "rounds": config.rounds,
                    },
                )
            registered = None
            if register:
                info = self._ws.models.register(
                    model_name,
                    run,
                    artifact=artifact,
                    dataset=ref,
                    metrics=final,
                    loader=loader,
                    pip_requirements=pip_requirements(config.task),
                    task=config.task,
                )
                registered = str(info.ref)
                self._link(partitions, info.ref.node_id)
        return FederatedRun(
            ref,
            config,
            result.history,
            tuple(partitions),
            artifact,
            run.run_id,
            registered,
            epsilon,
            result.seconds_to_first_round,
            time.perf_counter() - started,
        )

    def _engine(
        self,
        clients: list[Any],
        config: FederatedConfig,
        test: HoldoutSet,
        report: RoundCallback,
        progress: Progress | None,
    ) -> EngineResult:
        if config.engine == "flower":
            from keelml.federated.flower_sim import run_flower_simulation

            return run_flower_simulation(clients, config, test=test, on_round=report)
        from keelml.federated.inprocess import run_inprocess

        return run_inprocess(clients, config, test=test, on_round=report, progress=progress)

    def _text_engine(
        self, train: pd.DataFrame, test_rows: pd.DataFrame, parts: list[np.ndarray[Any, Any]], label: str,
        config: FederatedConfig,
    ) -> tuple[list[Any], Any, Callable[..., Any]]:  # fmt: skip
        """Text clients (their own reviews), the held-out reviews, and the engine with the model from
        ``ws.training`` (the training capability, reached at run time)."""
        from keelml.federated.text import TextClient, TextHoldout, run_text_inprocess

        texts = train[config.text].astype(str).tolist()
        labels = train[label].astype(str).tolist()
        clients = [
            TextClient(f"client-{i}", [texts[j] for j in p], [labels[j] for j in p])
            for i, p in enumerate(parts)
        ]
        test = TextHoldout(test_rows[config.text].astype(str).tolist(), test_rows[label].astype(str).tolist())
        model_config = {
            "text": config.text, "label": label, "base": config.base, "peft": "lora",
            "lora_rank": config.lora_rank, "max_length": config.max_length, "seed": config.seed,
            "learning_rate": config.rate,
        }  # fmt: skip
        training: Any = self._ws.training

        def engine(clients: Any, config: FederatedConfig, test: Any, report: Any, progress: Any) -> Any:
            return run_text_inprocess(
                lambda classes: training.text_model(model_config, classes), clients, config, test=test,
                on_round=report, progress=progress,
            )  # fmt: skip

        return clients, test, engine

    def _partitions(
        self,
        ref: DatasetRef,
        config: FederatedConfig,
        parts: list[np.ndarray[Any, Any]],
        y: np.ndarray[Any, Any],
        classes: Sequence[str],
    ) -> list[ClientPartition]:
        out = []
        lineage = self._ws.catalog.lineage
        with self._ws.catalog.begin() as conn:
            for i, rows in enumerate(parts):
                digest = hashlib.sha256(np.asarray(rows, dtype=np.int64).tobytes()).hexdigest()[:16]
                node = f"partition:{ref.name}@{ref.version}/{config.partition}/{i + 1}of{len(parts)}/{digest}"
                labels = {
                    classes[int(k)]: int(v)
                    for k, v in zip(*np.unique(y[rows], return_counts=True), strict=True)
                }
                lineage.add_node(
                    conn,
                    node,
                    "partition",
                    ref.name,
                    ref.version,
                    {
                        "client": f"client-{i}",
                        "rows": len(rows),
                        "labels": labels,
                        "scheme": config.partition,
                        "seed": config.seed,
                        "rows_digest": digest,
                    },
                )
                lineage.add_edge(conn, ref.node_id, node, "partitioned")
                out.append(ClientPartition(f"client-{i}", len(rows), labels, node))
        return out

    def _link(self, partitions: Sequence[ClientPartition], model_node: str) -> None:
        lineage = self._ws.catalog.lineage
        with self._ws.catalog.begin() as conn:
            for p in partitions:
                lineage.add_edge(conn, p.node_id, model_node, "trained")
