"""Replay the labeling loop with the known labels as the oracle, and measure what each strategy saves.

For each seed: split off a test set (unless one is given), label ``steps[0]`` random rows, then
repeatedly fit the learner, record test accuracy, and let the strategy pick the rows that bring the
label count to the next step. Every strategy starts from the same random rows for a given seed, and
``random`` always runs as the baseline. The target is the accuracy of the same learner trained on
every pool label (per seed), unless one is given.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np

from keelml.core.errors import InvalidInputError
from keelml.core.progress import NoProgress, Progress
from keelml.labeling.models import Learner, LearnerKind, make_learner, pool_outputs
from keelml.labeling.protocol import FloatArray, get_strategy, select

LearnerFactory = Callable[[int, int], Learner]  # (n_classes, seed) -> a fresh learner


def parse_steps(text: str) -> tuple[int, ...]:
    """``"20,40,80"`` or ``START:STOP:STEP`` (STOP included) into label counts.

    >>> parse_steps("10:50:20"), parse_steps("5, 10,40")
    ((10, 30, 50), (5, 10, 40))
    """
    try:
        if ":" in text:
            start, stop, step = (int(p) for p in text.split(":"))
            return tuple(range(start, stop + 1, step))
        return tuple(int(p) for p in text.split(",") if p.strip())
    except ValueError:
        raise InvalidInputError(
            f"cannot read the budget steps {text!r}",
            expected="label counts like 20,40,80 or START:STOP:STEP like 20:400:20",
            received=text,
            fix="e.g. --budget-steps 20:400:20",
        ) from None


@dataclass(frozen=True)
class SimulationConfig:
    """``steps``: label counts at which the learner is fitted and evaluated (the first is the random
    warm start); ``target``: accuracy to reach (None: training on all pool labels)."""

    steps: tuple[int, ...]
    strategies: tuple[str, ...] = ("margin",)
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    learner: LearnerKind | LearnerFactory = "logreg"
    target: float | None = None
    test_fraction: float = 0.25
    embed: bool = True

    def __post_init__(self) -> None:
        steps = tuple(int(s) for s in self.steps)
        if not steps or steps[0] < 1 or any(b <= a for a, b in pairwise(steps)):
            raise InvalidInputError(
                "budget steps must be increasing positive label counts",
                expected="e.g. 20,40,80 (the first is the random warm start)",
                received=",".join(map(str, self.steps)) or "nothing",
                fix="give increasing counts, e.g. --budget-steps 20:400:20",
            )
        if not self.seeds:
            raise InvalidInputError(
                "no seeds", expected="at least one seed", received="()", fix="e.g. seeds=(0,)"
            )
        if not 0.0 < self.test_fraction < 1.0:
            raise InvalidInputError(
                "test_fraction must be between 0 and 1",
                expected="0 < test_fraction < 1",
                received=str(self.test_fraction),
                fix="use e.g. 0.25",
            )
        names = tuple(dict.fromkeys(("random", *self.strategies)))
        for name in names:
            get_strategy(name)
        object.__setattr__(self, "steps", steps)
        object.__setattr__(self, "strategies", names)


@dataclass(frozen=True)
class Curve:
    """One strategy's learning curve: accuracy[seed][step]; labels_to_target[seed] (None: not reached)."""

    strategy: str
    labels: tuple[int, ...]
    accuracy: tuple[tuple[float, ...], ...]
    labels_to_target: tuple[int | None, ...]

    @property
    def mean(self) -> tuple[float, ...]:
        return tuple(float(v) for v in np.mean(self.accuracy, axis=0))

    @property
    def std(self) -> tuple[float, ...]:
        return tuple(float(v) for v in np.std(self.accuracy, axis=0))

    def needed(self) -> tuple[float | None, float | None, int]:
        """Mean and std of labels-to-target over the seeds that reached it, and how many did."""
        reached = [n for n in self.labels_to_target if n is not None]
        if not reached:
            return None, None, 0
        return float(np.mean(reached)), float(np.std(reached)), len(reached)


@dataclass(frozen=True)
class SimulationResult:
    curves: tuple[Curve, ...]
    full_accuracy: tuple[float, ...]
    targets: tuple[float, ...]
    pool_size: int
    test_size: int
    seeds: tuple[int, ...] = field(default=())

    def curve(self, strategy: str) -> Curve:
        return next(c for c in self.curves if c.strategy == strategy)

    def to_json(self) -> dict[str, Any]:
        rows = []
        for c in self.curves:
            mean, std, reached = c.needed()
            rows.append(
                {
                    "strategy": c.strategy,
                    "labels": list(c.labels),
                    "accuracy_mean": [round(v, 4) for v in c.mean],
                    "accuracy_std": [round(v, 4) for v in c.std],
                    "labels_to_target": list(c.labels_to_target),
                    "labels_to_target_mean": mean,
                    "labels_to_target_std": std,
                    "seeds_reached": reached,
                    "fraction_of_pool": None if mean is None else round(mean / self.pool_size, 4),
                }
            )
        return {
            "pool_size": self.pool_size,
            "test_size": self.test_size,
            "seeds": list(self.seeds),
            "full_accuracy": [round(v, 4) for v in self.full_accuracy],
            "targets": [round(v, 4) for v in self.targets],
            "curves": rows,
        }

    def plot(self, path: str | Path, title: str = "Learning curves", *, offline: bool = True) -> Path:
        """Write the mean learning curves (with +-1 std bands) as an interactive HTML file; ``offline``
        embeds plotly.js (about 4.5 MB) so the file opens without network, else it loads it from a CDN."""
        import plotly.graph_objects as go

        fig = go.Figure()
        for c in self.curves:
            mean, std = np.array(c.mean), np.array(c.std)
            x = list(c.labels)
            fig.add_trace(go.Scatter(x=x, y=mean, mode="lines+markers", name=c.strategy))
            fig.add_trace(
                go.Scatter(
                    x=x + x[::-1],
                    y=list(mean + std) + list((mean - std)[::-1]),
                    fill="toself",
                    opacity=0.15,
                    line={"width": 0},
                    showlegend=False,
                    hoverinfo="skip",
                    name=f"{c.strategy} +-1 std",
                )
            )
        target = float(np.mean(self.targets))
        fig.add_hline(y=target, line_dash="dash", annotation_text=f"target {target:.3f}")
        fig.update_layout(title=title, xaxis_title="labels", yaxis_title="test accuracy")
        target_path = Path(path)
        target_path.parent.mkdir(parents=True, exist_ok=True)
        fig.write_html(target_path, include_plotlyjs=True if offline else "cdn")
        return target_path


def _split(y: np.ndarray[Any, Any], fraction: float, seed: int) -> tuple[np.ndarray[Any, Any], ...]:
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(y))
    counts = np.bincount(y)
    strat = y if counts[counts > 0].min() >= 2 else None
    pool, test = train_test_split(idx, test_size=fraction, random_state=seed, stratify=strat)
    return np.sort(pool), np.sort(test)


def simulate(
    x: Any,
    y: np.ndarray[Any, Any],
    config: SimulationConfig,
    *,
    x_test: Any = None,
    y_test: np.ndarray[Any, Any] | None = None,
    embeddings: FloatArray | None = None,
    progress: Progress | None = None,
) -> SimulationResult:
    """Replay the loop on features ``x`` with integer labels ``y`` (the oracle).

    ``embeddings`` (dense, one row per row of ``x``) feed the diversity strategies; without them
    ``x`` itself is used when dense.
    """
    progress = progress or NoProgress()
    y = np.asarray(y)
    n_classes = int(max(y.max(), -1 if y_test is None else np.max(y_test))) + 1
    factory: LearnerFactory = (
        config.learner
        if callable(config.learner)
        else (lambda c, s, kind=config.learner: make_learner(kind, c, s))  # type: ignore[misc]
    )
    emb = embeddings if embeddings is not None else (None if hasattr(x, "tocsr") else np.asarray(x, float))
    given_test = x_test is not None and y_test is not None
    max_pool = len(y) if given_test else len(y) - int(np.ceil(config.test_fraction * len(y)))
    if config.steps[-1] > max_pool:
        raise InvalidInputError(
            f"the last budget step ({config.steps[-1]}) is larger than the pool ({max_pool} rows)",
            expected=f"steps up to {max_pool}",
            received=",".join(map(str, config.steps)),
            fix=f"end the budget steps at {max_pool} or fewer",
        )
    per_strategy: dict[str, list[list[float]]] = {s: [] for s in config.strategies}
    reached: dict[str, list[int | None]] = {s: [] for s in config.strategies}
    full_acc, targets = [], []
    progress.stage("simulating", total=len(config.seeds) * (len(config.strategies) + 1))
    for seed in config.seeds:
        if given_test:
            pool, xt, yt = np.arange(len(y)), x_test, np.asarray(y_test)
        else:
            pool, test = _split(y, config.test_fraction, seed)
            xt, yt = x[test], y[test]
        full = factory(n_classes, seed).fit(x[pool], y[pool])
        acc_all = float((full.predict_proba(xt).argmax(1) == yt).mean())
        target = acc_all if config.target is None else config.target
        full_acc.append(acc_all)
        targets.append(target)
        progress.advance()
        start = np.random.default_rng(seed).choice(pool, config.steps[0], replace=False)
        for name in config.strategies:
            strategy = get_strategy(name)
            rng = np.random.default_rng([seed, 1])
            labeled = start.copy()
            curve: list[float] = []
            for i, _count in enumerate(config.steps):
                learner = factory(n_classes, seed).fit(x[labeled], y[labeled])
                curve.append(float((learner.predict_proba(xt).argmax(1) == yt).mean()))
                if i + 1 == len(config.steps):
                    break
                unl = np.setdiff1d(pool, labeled, assume_unique=True)
                outputs = pool_outputs(
                    learner,
                    x[unl],
                    strategy.requires,
                    None if emb is None else emb[unl],
                    None if emb is None else emb[labeled],
                )
                picked = select(strategy, outputs, config.steps[i + 1] - len(labeled), seed=rng)
                labeled = np.concatenate([labeled, unl[picked]])
            per_strategy[name].append(curve)
            hit = next((n for n, a in zip(config.steps, curve, strict=True) if a >= target), None)
            reached[name].append(hit)
            progress.advance()
    curves = tuple(
        Curve(s, config.steps, tuple(tuple(c) for c in per_strategy[s]), tuple(reached[s]))
        for s in config.strategies
    )
    return SimulationResult(
        curves,
        tuple(full_acc),
        tuple(targets),
        pool_size=len(y) if given_test else max_pool,
        test_size=len(yt),
        seeds=config.seeds,
    )
