"""Federated text classification: MiniLM with LoRA, where only the adapter and the head train and travel.

Every client starts each round from the global adapter + head (a flat float64 vector of the trainable
parameters; the frozen encoder never moves), runs ``local_epochs`` of AdamW on its own reviews and
returns the clipped difference. The server aggregates exactly as for tabular runs
(:func:`keelml.federated.rounds.aggregate_round`: FedAvg / FedProx / FedAdam, robust means, client-level
DP, keelml's secure aggregation). The model comes from the training capability at run time
(``ws.training.text_model``), so the result saves and serves like ``keel train text --peft lora``.
One model object serves all simulated clients in turn (its trainable parameters are reset per client).
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from keelml.core.errors import EmptySourceError, InvalidInputError
from keelml.core.progress import NoProgress, Progress
from keelml.federated.aggregate import ServerOptimizer, Vector, client_weight, clip, noise_source
from keelml.federated.client import ClientUpdate
from keelml.federated.config import FederatedConfig
from keelml.federated.inprocess import RoundCallback, sample_clients
from keelml.federated.rounds import (
    RoundMetrics,
    aggregate_round,
    check_enough,
    keelml_secure_sum,
    round_metrics,
)

LOADER = "keelml.train.text:TextClassifier.from_bytes"


class TextModel(Protocol):
    """What a federated text run needs of a classifier (``keelml.train.text.TextClassifier``)."""

    module: Any

    def encode(self, texts: Sequence[str]) -> tuple[Any, Any]: ...

    def to_bytes(self) -> bytes: ...


ModelFactory = Callable[[Sequence[str]], TextModel]  # classes -> a fresh model


def trainable(model: TextModel) -> list[Any]:
    return [p for p in model.module.parameters() if p.requires_grad]


def get_vector(model: TextModel) -> Vector:
    return np.concatenate([p.detach().double().numpy().ravel() for p in trainable(model)])


def set_vector(model: TextModel, vector: Vector) -> None:
    import torch

    at = 0
    with torch.no_grad():
        for p in trainable(model):
            n = p.numel()
            p.copy_(torch.from_numpy(vector[at : at + n].reshape(p.shape)).to(p.dtype))
            at += n


@dataclass(frozen=True, slots=True)
class TextHoldout:
    texts: Sequence[str]
    labels: Sequence[str]


class TextClient:
    """A client holding its own texts and labels; only clipped adapter + head updates leave it."""

    def __init__(self, name: str, texts: Sequence[str], labels: Sequence[str]) -> None:
        if len(texts) == 0:
            raise EmptySourceError(
                f"client {name!r} has an empty partition",
                expected="at least one labelled text per client",
                received="0 rows",
                fix="give the client data, use fewer clients, or leave it out",
            )
        self.name = name
        self.texts = [str(t) for t in texts]
        self.labels = [str(v) for v in labels]

    def label_set(self) -> set[str]:
        return set(self.labels)

    def fit(
        self, model: TextModel, global_vector: Vector, classes: Sequence[str], config: FederatedConfig,
        round_number: int,
    ) -> ClientUpdate:  # fmt: skip
        import torch

        index = {c: i for i, c in enumerate(classes)}
        y = torch.tensor([index[v] for v in self.labels], dtype=torch.long)
        set_vector(model, global_vector)
        params = trainable(model)
        optimizer = torch.optim.AdamW(params, lr=config.rate)
        seed = zlib.crc32(f"{config.seed}/{round_number}/{self.name}".encode())
        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)
        model.module.train()
        total, seen = 0.0, 0
        for _ in range(config.local_epochs):
            order = rng.permutation(len(self.texts))
            for i in range(0, len(order), config.batch_size):
                idx = order[i : i + config.batch_size]
                ids, mask = model.encode([self.texts[j] for j in idx])
                optimizer.zero_grad()
                logits = model.module(ids, mask)
                loss = torch.nn.functional.cross_entropy(logits, y[torch.as_tensor(idx)])
                if config.strategy == "fedprox" and config.proximal_mu > 0:
                    anchor = torch.from_numpy(global_vector)
                    flat = torch.cat([p.reshape(-1) for p in params]).double()
                    loss = loss + config.proximal_mu / 2 * ((flat - anchor) ** 2).sum().float()
                loss.backward()  # type: ignore[no-untyped-call]  # torch's stubs leave it untyped
                optimizer.step()
                total += float(loss.detach()) * len(idx)
                seen += len(idx)
        model.module.eval()
        update, norm = clip(get_vector(model) - global_vector, config.clip)
        return ClientUpdate(self.name, update, client_weight(len(self.texts), config), len(self.texts),
                            total / max(seen, 1), norm)  # fmt: skip


def evaluate_text(
    model: TextModel, classes: Sequence[str], test: TextHoldout, batch_size: int = 64
) -> dict[str, float]:
    import torch

    index = {c: i for i, c in enumerate(classes)}
    keep = [i for i, v in enumerate(test.labels) if str(v) in index]
    if not keep:
        return {}
    y = torch.tensor([index[str(test.labels[i])] for i in keep])
    texts = [str(test.texts[i]) for i in keep]
    model.module.eval()
    logits = []
    with torch.no_grad():
        for i in range(0, len(texts), batch_size):
            logits.append(model.module(*model.encode(texts[i : i + batch_size])))
    out = torch.cat(logits)
    loss = float(torch.nn.functional.cross_entropy(out, y))
    return {"accuracy": float((out.argmax(1) == y).double().mean()), "loss": loss}


@dataclass(frozen=True, slots=True)
class TextEngineResult:
    model: TextModel  # holds the final global adapter + head
    classes: tuple[str, ...]
    history: tuple[RoundMetrics, ...]
    seconds_to_first_round: float


def run_text_inprocess(
    factory: ModelFactory,
    clients: Sequence[TextClient],
    config: FederatedConfig,
    *,
    test: TextHoldout | None = None,
    on_round: RoundCallback | None = None,
    progress: Progress | None = None,
) -> TextEngineResult:
    """Federated LoRA fine-tuning on in-process clients (the fast path; one model object shared)."""
    if config.secure_agg == "flower" or config.engine == "flower":
        raise InvalidInputError(
            "federated text runs on the in-process engine",
            expected="--engine inprocess, with --secure-agg keelml or off",
            received=f"--engine {config.engine} --secure-agg {config.secure_agg}",
            fix="drop --engine flower / --secure-agg flower for --task text",
        )
    start = time.perf_counter()
    progress = progress or NoProgress()
    classes = tuple(sorted(set().union(*(c.label_set() for c in clients))))
    model = factory(classes)
    global_vector = get_vector(model)
    secure = keelml_secure_sum(config) if config.secure_agg == "keelml" else None
    rng = np.random.default_rng(config.seed)
    noise_rng = noise_source(config)
    optimizer = ServerOptimizer(config)
    history: list[RoundMetrics] = []
    first = 0.0
    progress.stage("federated rounds (text)", total=config.rounds)
    for r in range(1, config.rounds + 1):
        t0 = time.perf_counter()
        first = first or t0 - start
        chosen = sample_clients(len(clients), config, rng)
        vanish = {i for i in chosen if rng.random() < config.dropout}
        updates: list[ClientUpdate] = []
        dropped: list[str] = []
        for i in chosen:
            if i in vanish:  # a lost reply (under secure aggregation: before sharing keys)
                dropped.append(clients[i].name)
                continue
            fit_started = time.perf_counter()
            update = clients[i].fit(model, global_vector, classes, config, r)
            # simulated clients train one after another here, in parallel in reality: each one's own
            # training time counts against the round timeout
            if time.perf_counter() - fit_started > config.round_timeout:
                dropped.append(clients[i].name + " (timed out)")
                continue
            updates.append(update)
        check_enough(r, len(updates), len(chosen), dropped, config)
        step = aggregate_round(updates, config, noise_rng, secure_sum=secure)
        global_vector = optimizer.step(global_vector, step)
        set_vector(model, global_vector)
        metrics = evaluate_text(model, classes, test) if test is not None else {}
        seconds = time.perf_counter() - t0
        history.append(round_metrics(r, len(chosen), updates, dropped, step, seconds, metrics, config))
        if on_round is not None:
            on_round(history[-1])
        progress.advance()
    return TextEngineResult(model, classes, tuple(history), first)
