"""Federated run settings: frozen and validated on construction.

>>> FederatedConfig(clients=4, partition="dirichlet:0.5").partition_spec
Partition(kind='dirichlet', alpha=0.5, column=None)
>>> FederatedConfig(clients=4, robust="median", secure_agg="keelml")
Traceback (most recent call last):
...
keelml.core.errors.InvalidInputError: robust aggregation needs each update; secure aggregation hides them
  expected: --robust with --secure-agg off, or --secure-agg without --robust
  received: robust='median', secure_agg='keelml'
  fix: drop --robust (updates are still norm-bounded), or pass --secure-agg off
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, Literal, get_args

from keelml.core.errors import ConfigError, InvalidInputError

StrategyName = Literal["fedavg", "fedprox", "fedadam"]
RobustName = Literal["trimmed-mean", "median"]
SecureAgg = Literal["off", "keelml", "flower"]
Engine = Literal["inprocess", "flower"]
Task = Literal["tabular", "text"]
# client learning rate when none is given: numpy SGD with momentum for the MLP, AdamW for LoRA
DEFAULT_LEARNING_RATE = {"tabular": 0.05, "text": 5e-3}


@dataclass(frozen=True, slots=True)
class Partition:
    """How rows are split across clients: ``iid``, ``dirichlet:ALPHA`` (label skew) or ``by:COLUMN``."""

    kind: Literal["iid", "dirichlet", "by"]
    alpha: float | None = None
    column: str | None = None

    @classmethod
    def parse(cls, spec: str) -> Partition:
        kind, _, arg = spec.partition(":")
        if kind == "iid" and not arg:
            return cls("iid")
        if kind == "dirichlet":
            try:
                alpha = float(arg)
            except ValueError:
                alpha = -1.0
            if alpha > 0:
                return cls("dirichlet", alpha=alpha)
        if kind == "by" and arg:
            return cls("by", column=arg)
        raise InvalidInputError(
            f"unknown partition {spec!r}",
            expected="iid, dirichlet:ALPHA (ALPHA > 0, e.g. dirichlet:0.5) or by:COLUMN",
            received=spec,
            fix="pass --partition iid, --partition dirichlet:0.5 or --partition by:region",
        )

    def __str__(self) -> str:
        return {"iid": "iid", "dirichlet": f"dirichlet:{self.alpha:g}", "by": f"by:{self.column}"}[self.kind]


def _choice(name: str, value: object, allowed: tuple[str, ...], flag: str) -> None:
    if value not in allowed:
        raise InvalidInputError(
            f"unknown {name} {value!r}",
            expected=" | ".join(allowed),
            received=repr(value),
            fix=f"pass {flag} {allowed[0]}",
        )


def _positive(name: str, value: float, flag: str, *, integer: bool = False, zero: bool = False) -> None:
    if value < 0 or (value == 0 and not zero):
        raise InvalidInputError(
            f"{name} must be {'at least 0' if zero else 'positive'}",
            expected=f"{'an integer' if integer else 'a number'} {'>= 0' if zero else '> 0'}",
            received=str(value),
            fix=f"pass {flag} with a {'non-negative' if zero else 'positive'} value",
        )


@dataclass(frozen=True, slots=True)
class FederatedConfig:
    """A federated training run: ``task`` tabular (an MLP) or text (MiniLM + LoRA on column ``text``,
    ``max_length`` tokens, LoRA rank ``lora_rank`` on ``base``; only adapter and head train and travel).

    ``client_dp=(clip, noise)`` clips each client's update to L2 norm ``clip`` and adds Gaussian noise
    with standard deviation ``noise * clip`` to the sum on the server (noise is the noise multiplier),
    drawn from a CSPRNG with ``secure_noise`` (the default; False: numpy seeded by ``seed``).
    ``dropout`` is the chance that a sampled client vanishes mid-round (for simulating bad networks).
    """

    clients: int = 10
    task: Task = "tabular"
    partition: str = "iid"
    rounds: int = 10
    strategy: StrategyName = "fedavg"
    robust: RobustName | None = None
    trim_fraction: float = 0.1
    client_dp: tuple[float, float] | None = None
    delta: float = 1e-5
    secure_noise: bool = True
    secure_agg: SecureAgg = "off"
    secagg_shares: int = 5
    max_update_norm: float | None = None
    fraction_fit: float = 1.0
    min_clients: int = 2
    local_epochs: int = 1
    batch_size: int = 32
    learning_rate: float | None = None  # None: DEFAULT_LEARNING_RATE of the task
    proximal_mu: float = 0.01
    server_learning_rate: float = 0.05
    hidden: tuple[int, ...] = (64, 32)
    max_categories: int = 20
    test_fraction: float = 0.2
    dropout: float = 0.0
    round_timeout: float = 60.0
    engine: Engine = "inprocess"
    label: str | None = None
    text: str = "text"
    base: str = "minilm"  # the text base model: minilm (bundled) or a local model folder
    max_length: int = 64
    lora_rank: int = 8
    seed: int = 0

    def __post_init__(self) -> None:
        _choice("strategy", self.strategy, get_args(StrategyName), "--strategy")
        _choice("secure aggregation", self.secure_agg, get_args(SecureAgg), "--secure-agg")
        _choice("engine", self.engine, get_args(Engine), "--engine")
        _choice("task", self.task, get_args(Task), "--task")
        if self.robust is not None:
            _choice("robust aggregator", self.robust, get_args(RobustName), "--robust")
        self.partition_spec  # noqa: B018 - validates the spec
        if self.clients < 2:
            raise InvalidInputError(
                "federated training needs at least 2 clients",
                expected="an integer >= 2",
                received=str(self.clients),
                fix="pass --clients 2 or more",
            )
        for name, flag in (
            ("rounds", "--rounds"),
            ("local_epochs", "--local-epochs"),
            ("batch_size", "--batch-size"),
            ("min_clients", "--min-clients"),
            ("max_length", "--max-length"),
            ("lora_rank", "--lora-rank"),
        ):
            _positive(name, getattr(self, name), flag, integer=True)
        for name, flag in (
            ("rate", "--lr"),
            ("server_learning_rate", "--server-lr"),
            ("round_timeout", "--round-timeout"),
        ):
            _positive(name, getattr(self, name), flag)
        _positive("proximal_mu", self.proximal_mu, "--proximal-mu", zero=True)
        if self.min_clients > self.clients:
            raise InvalidInputError(
                "min_clients is larger than the number of clients",
                expected=f"min_clients <= clients ({self.clients})",
                received=str(self.min_clients),
                fix="lower --min-clients or raise --clients",
            )
        if not 0 < self.fraction_fit <= 1 or not 0 <= self.dropout < 1 or not 0 < self.test_fraction < 0.5:
            raise InvalidInputError(
                "fraction_fit, dropout or test_fraction is out of range",
                expected="0 < fraction_fit <= 1, 0 <= dropout < 1, 0 < test_fraction < 0.5",
                received=f"{self.fraction_fit}, {self.dropout}, {self.test_fraction}",
                fix="e.g. fraction_fit = 1.0, dropout = 0.1, test_fraction = 0.2",
            )
        if not 0 <= self.trim_fraction < 0.5:
            raise InvalidInputError(
                "trim_fraction must be in [0, 0.5)",
                received=str(self.trim_fraction),
                fix="e.g. trim_fraction = 0.1 (drops the top and bottom 10% per coordinate)",
            )
        if self.client_dp is not None:
            clip, noise = self.client_dp
            if clip <= 0 or noise <= 0:
                raise InvalidInputError(
                    "client DP needs a positive clipping norm and a positive noise multiplier",
                    expected="--client-dp CLIP,NOISE such as 1.0,0.8",
                    received=f"{clip},{noise}",
                    fix="pass --client-dp 1.0,0.8 (for clipping without noise: --max-update-norm)",
                )
            if not 0 < self.delta < 1:
                raise InvalidInputError("delta must be in (0, 1)", received=str(self.delta), fix="e.g. 1e-5")
        if not isinstance(self.secure_noise, bool):
            raise InvalidInputError(
                "secure_noise must be true or false",
                expected="a boolean (true: the server's DP noise from a CSPRNG, the default)",
                received=repr(self.secure_noise),
                fix="pass --secure-noise, or --no-secure-noise only for reproducible experiments",
            )
        if self.max_update_norm is not None:
            _positive("max_update_norm", self.max_update_norm, "--max-update-norm")
        if self.robust is not None and self.secure_agg != "off":
            raise InvalidInputError(
                "robust aggregation needs each update; secure aggregation hides them",
                expected="--robust with --secure-agg off, or --secure-agg without --robust",
                received=f"robust={self.robust!r}, secure_agg={self.secure_agg!r}",
                fix="drop --robust (updates are still norm-bounded), or pass --secure-agg off",
            )
        if self.secure_agg == "flower" and self.secagg_shares % 2 == 0:
            raise InvalidInputError(
                "Flower's SecAgg+ needs an odd number of shares",
                expected="an odd secagg_shares such as 3 or 5",
                received=str(self.secagg_shares),
                fix="pass --secagg-shares 5",
            )
        if any(h < 1 for h in self.hidden):
            raise InvalidInputError(
                "hidden layer sizes must be positive", received=str(self.hidden), fix="e.g. hidden = [64, 32]"
            )

    @property
    def rate(self) -> float:
        """The client learning rate in effect: ``learning_rate``, or the task's default."""
        return DEFAULT_LEARNING_RATE[self.task] if self.learning_rate is None else self.learning_rate

    @property
    def partition_spec(self) -> Partition:
        return Partition.parse(self.partition)

    @property
    def clip(self) -> float | None:
        """The L2 bound applied to each update: the DP clip, else max_update_norm."""
        return self.client_dp[0] if self.client_dp is not None else self.max_update_norm

    def to_json(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["hidden"] = list(self.hidden)
        out["client_dp"] = None if self.client_dp is None else list(self.client_dp)
        return out

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any], source: str = "the federated config") -> FederatedConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ConfigError(
                f"{source} has unknown keys: {', '.join(unknown)}",
                expected=f"keys among {', '.join(sorted(known))}",
                received=", ".join(unknown),
                fix="remove or rename them",
            )
        values = dict(raw)
        for key in ("hidden", "client_dp"):
            if isinstance(values.get(key), list):
                values[key] = tuple(values[key])
        try:
            return cls(**values)
        except TypeError as exc:
            raise ConfigError(f"{source} is invalid", received=str(exc), fix="check value types") from exc
