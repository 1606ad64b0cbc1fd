"""Training configs: frozen, validated on construction.

>>> TabularConfig(label="Class").model
'mlp'
>>> TabularConfig(label="y", epochs=0)
Traceback (most recent call last):
...
keelml.core.errors.InvalidInputError: epochs must be at least 1
  expected: an integer >= 1
  received: 0
  fix: pass --epochs 1 or more
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, Literal, Protocol, get_args

from keelml.core.errors import ConfigError, InvalidInputError

TabularModel = Literal["mlp", "logreg"]
Activation = Literal["relu", "tanh"]
ClassWeight = Literal["none", "balanced"]
DpClipping = Literal["ghost", "hooks"]


def _at_least(name: str, value: float, low: float, flag: str) -> None:
    if value < low:
        raise InvalidInputError(
            f"{name} must be at least {low:g}",
            expected=f"{'an integer' if isinstance(value, int) else 'a number'} >= {low:g}",
            received=str(value),
            fix=f"pass {flag} {low:g} or more",
        )


def _refuse_unknown_keys(raw: Mapping[str, Any], known: set[str], source: str) -> None:
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(
            f"{source} has unknown keys: {', '.join(unknown)}",
            expected=f"keys among {', '.join(sorted(known))}",
            received=", ".join(unknown),
            fix="remove or rename them",
        )


class _DpSettings(Protocol):
    @property
    def dp_epsilon(self) -> float | None: ...
    @property
    def dp_delta(self) -> float: ...
    @property
    def dp_noise_multiplier(self) -> float | None: ...
    @property
    def dp_max_grad_norm(self) -> float: ...
    @property
    def dp_clipping(self) -> DpClipping: ...
    @property
    def dp_physical_batch(self) -> int | None: ...
    @property
    def dp_secure_noise(self) -> bool: ...


def is_private(config: _DpSettings) -> bool:
    """True when the config asks for DP-SGD (a target epsilon or a noise multiplier)."""
    return config.dp_epsilon is not None or config.dp_noise_multiplier is not None


def _check_dp(config: _DpSettings) -> None:
    if config.dp_epsilon is not None and config.dp_noise_multiplier is not None:
        raise InvalidInputError(
            "give either a target epsilon or a noise multiplier, not both",
            received=f"dp_epsilon={config.dp_epsilon}, dp_noise_multiplier={config.dp_noise_multiplier}",
            fix="--dp-epsilon 3 calibrates the noise; --noise-multiplier 1.0 reports the epsilon reached",
        )
    for name, flag in (("dp_epsilon", "--dp-epsilon"), ("dp_noise_multiplier", "--noise-multiplier"),
                       ("dp_max_grad_norm", "--max-grad-norm")):  # fmt: skip
        value = getattr(config, name)
        if value is not None and not (isinstance(value, int | float) and 0 < value < float("inf")):
            raise InvalidInputError(
                f"{name} must be a positive number", received=repr(value), fix=f"pass e.g. {flag} 1.0"
            )
    if not (isinstance(config.dp_delta, int | float) and 0 < config.dp_delta < 1):
        raise InvalidInputError(
            "dp_delta must be in (0, 1)",
            expected="a probability below 1/N for N training rows",
            received=repr(config.dp_delta),
            fix="pass --dp-delta 1e-5",
        )
    if config.dp_clipping not in get_args(DpClipping):
        raise InvalidInputError(
            f"unknown clipping mode {config.dp_clipping!r}",
            expected=" or ".join(get_args(DpClipping)),
            received=repr(config.dp_clipping),
            fix="use dp_clipping = 'ghost' (memory-efficient, default) or 'hooks' (Opacus per-sample)",
        )
    if config.dp_physical_batch is not None:
        _at_least("dp_physical_batch", config.dp_physical_batch, 1, "--dp-physical-batch")
    if not isinstance(config.dp_secure_noise, bool):
        raise InvalidInputError(
            "dp_secure_noise must be true or false",
            expected="a boolean (true: CSPRNG noise, the default)",
            received=repr(config.dp_secure_noise),
            fix="set dp_secure_noise = true, or false only for reproducible experiments",
        )


def _without_dp_when_off(out: dict[str, Any]) -> dict[str, Any]:
    """Non-private configs serialise (and digest) exactly as before the DP options existed."""
    if out.get("dp_epsilon") is None and out.get("dp_noise_multiplier") is None:
        return {k: v for k, v in out.items() if not k.startswith("dp_")}
    return out


@dataclass(frozen=True, slots=True)
class TabularConfig:
    """How to train a tabular classifier. ``label=None`` uses the dataset's label column."""

    label: str | None = None
    model: TabularModel = "mlp"
    hidden: tuple[int, ...] = (64, 32)
    epochs: int = 50
    batch_size: int = 64
    learning_rate: float = 1e-2
    weight_decay: float = 1e-4
    patience: int = 5
    test_fraction: float = 0.2
    validation_fraction: float = 0.1
    seed: int = 0
    max_categories: int = 20
    features: tuple[str, ...] | None = None
    # "balanced" weights the loss by n / (k * count of the class) on the training part (rare classes)
    class_weight: ClassWeight = "none"
    # hidden-layer activation; "tanh" (bounded) trains better than "relu" under DP-SGD's noise
    # (Papernot et al. 2021, tempered sigmoids)
    activation: Activation = "relu"
    # the known range [low, high] of every numeric column: scaled to [-1, 1] with these fixed numbers
    # (missing values: the midpoint) instead of the training rows' mean / std / median, so scaling
    # reads no statistic of the data (a private run then releases nothing through preprocessing)
    input_range: tuple[float, float] | None = None
    # differential privacy (DP-SGD with Opacus; docs/privacy.md): off unless dp_epsilon or
    # dp_noise_multiplier is set
    dp_epsilon: float | None = None
    dp_delta: float = 1e-5
    dp_noise_multiplier: float | None = None
    dp_max_grad_norm: float = 1.0
    dp_clipping: DpClipping = "ghost"
    dp_physical_batch: int | None = None
    # draw DP-SGD's Gaussian noise from a CSPRNG (AES-256-CTR keyed by os.urandom, hardened sampling
    # as Opacus' secure_mode); False uses torch's seeded generator (reproducible, but predictable)
    dp_secure_noise: bool = True
    # keep an exponential moving average of the weights over DP-SGD steps (decay per step, e.g. 0.9)
    # and return it: post-processing of the private iterates, so it costs no privacy
    dp_ema: float | None = None

    def __post_init__(self) -> None:
        _check_dp(self)
        if self.dp_ema is not None and not (isinstance(self.dp_ema, int | float) and 0 < self.dp_ema < 1):
            raise InvalidInputError(
                "dp_ema must be a decay in (0, 1)",
                expected="the weight kept per step of the moving average, e.g. 0.9",
                received=repr(self.dp_ema),
                fix="set dp_ema = 0.9, or leave it out for the last weights",
            )
        if self.activation not in get_args(Activation):
            raise InvalidInputError(
                f"unknown activation {self.activation!r}",
                expected=" or ".join(get_args(Activation)),
                received=repr(self.activation),
                fix="use --activation tanh (DP-friendly) or leave the default relu",
            )
        if self.input_range is not None and not (
            len(self.input_range) == 2
            and all(isinstance(v, int | float) and abs(v) < float("inf") for v in self.input_range)
            and self.input_range[0] < self.input_range[1]
        ):
            raise InvalidInputError(
                "input_range must be [low, high] with low < high",
                expected="the known range of the numeric columns, e.g. [0, 16] for 4-bit pixels",
                received=repr(self.input_range),
                fix="set input_range = [0, 16], or leave it out to standardise with training statistics",
            )
        if self.class_weight not in get_args(ClassWeight):
            raise InvalidInputError(
                f"unknown class weighting {self.class_weight!r}",
                expected=" or ".join(get_args(ClassWeight)),
                received=repr(self.class_weight),
                fix="use --class-weight balanced for rare classes, or leave it out",
            )
        if self.model not in get_args(TabularModel):
            raise InvalidInputError(
                f"unknown tabular model {self.model!r}",
                expected=" or ".join(get_args(TabularModel)),
                received=repr(self.model),
                fix="use --model mlp (a small MLP) or --model logreg (the baseline)",
            )
        _at_least("epochs", self.epochs, 1, "--epochs")
        _at_least("batch_size", self.batch_size, 1, "--batch-size")
        _at_least("patience", self.patience, 1, "--patience")
        _at_least("max_categories", self.max_categories, 1, "--max-categories")
        if self.learning_rate <= 0 or self.weight_decay < 0:
            raise InvalidInputError(
                "learning_rate must be > 0 and weight_decay >= 0",
                received=f"learning_rate={self.learning_rate}, weight_decay={self.weight_decay}",
                fix="e.g. learning_rate = 0.01, weight_decay = 0.0001",
            )
        if any(h < 1 for h in self.hidden):
            raise InvalidInputError(
                "hidden layer sizes must be positive", received=str(self.hidden), fix="e.g. hidden = [64, 32]"
            )
        for name in ("test_fraction", "validation_fraction"):
            value = getattr(self, name)
            if not 0 < value < 0.5:
                raise InvalidInputError(
                    f"{name} must be between 0 and 0.5",
                    expected="a fraction such as 0.2",
                    received=str(value),
                    fix=f"set {name} = 0.2",
                )

    def to_json(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["hidden"] = list(self.hidden)
        out["features"] = None if self.features is None else list(self.features)
        if self.class_weight == "none":
            del out["class_weight"]  # unweighted configs digest exactly as before the option existed
        for key, default in (("activation", "relu"), ("input_range", None), ("dp_ema", None),
                             ("dp_secure_noise", True)):  # fmt: skip
            if out[key] == default:
                del out[key]  # so do configs that leave these options at their defaults
        if self.input_range is not None:
            out["input_range"] = list(self.input_range)
        return _without_dp_when_off(out)

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any], source: str = "the training config") -> TabularConfig:
        """Build from a TOML/JSON table; unknown keys are an error that names the known ones."""
        _refuse_unknown_keys(raw, {f.name for f in fields(cls)}, source)
        values = dict(raw)
        for key in ("hidden", "features", "input_range"):
            if isinstance(values.get(key), list):
                values[key] = tuple(values[key])
        try:
            return cls(**values)
        except TypeError as exc:
            raise ConfigError(f"{source} is invalid", received=str(exc), fix="check value types") from exc


PeftMethod = Literal["lora", "ia3", "full"]

# the learning rate each method gets when none is given, chosen on development reviews (never the test
# reviews; benchmarks/results/training.md): adapters start from zero and want a high rate, full
# fine-tuning moves pre-trained weights and wants a small one
DEFAULT_LEARNING_RATE: dict[str, float] = {"lora": 5e-3, "ia3": 3e-2, "full": 5e-5}


@dataclass(frozen=True, slots=True)
class TextConfig:
    """How to fine-tune a text classifier: a base encoder, mean pooling and a linear head.

    >>> TextConfig(text="review").peft
    'lora'
    >>> TextConfig(peft="full").learning_rate  # each method has its own default rate
    5e-05
    """

    text: str = "text"
    label: str | None = None
    base: str = "minilm"
    peft: PeftMethod = "lora"
    target_modules: tuple[str, ...] | None = None
    lora_rank: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    epochs: int = 3
    batch_size: int = 16
    learning_rate: float | None = None  # None: the method's DEFAULT_LEARNING_RATE (set on construction)
    # the freshly initialised head learns at its own rate (None: max(learning_rate, 1e-3)); the
    # encoder/adapter rate warms up linearly over warmup_fraction of the steps, then decays to 0
    head_learning_rate: float | None = None
    warmup_fraction: float = 0.1
    max_length: int = 128
    patience: int = 2
    test_fraction: float = 0.2
    validation_fraction: float = 0.1
    seed: int = 0
    # differential privacy (DP-SGD with Opacus; docs/privacy.md): off unless dp_epsilon or
    # dp_noise_multiplier is set
    dp_epsilon: float | None = None
    dp_delta: float = 1e-5
    dp_noise_multiplier: float | None = None
    dp_max_grad_norm: float = 1.0
    dp_clipping: DpClipping = "ghost"
    dp_physical_batch: int | None = None
    # draw DP-SGD's Gaussian noise from a CSPRNG (AES-256-CTR keyed by os.urandom, hardened sampling
    # as Opacus' secure_mode); False uses torch's seeded generator (reproducible, but predictable)
    dp_secure_noise: bool = True

    def __post_init__(self) -> None:
        _check_dp(self)
        if self.peft not in get_args(PeftMethod):
            raise InvalidInputError(
                f"unknown fine-tuning method {self.peft!r}",
                expected=" or ".join(get_args(PeftMethod)),
                received=repr(self.peft),
                fix="use --peft lora (default), --peft ia3 or --peft full",
            )
        if self.learning_rate is None:
            object.__setattr__(self, "learning_rate", DEFAULT_LEARNING_RATE[self.peft])
        for name, flag in (("epochs", "--epochs"), ("batch_size", "--batch-size"), ("patience", "--patience"),
                           ("lora_rank", "--lora-rank"), ("max_length", "--max-length")):  # fmt: skip
            _at_least(name, getattr(self, name), 1, flag)
        if self.rate <= 0 or not 0 <= self.lora_dropout < 1:
            raise InvalidInputError(
                "learning_rate must be > 0 and lora_dropout in [0, 1)",
                received=f"learning_rate={self.learning_rate}, lora_dropout={self.lora_dropout}",
                fix="e.g. learning_rate = 0.001, lora_dropout = 0.05",
            )
        if self.head_learning_rate is not None and not self.head_learning_rate > 0:
            raise InvalidInputError(
                "head_learning_rate must be > 0", received=repr(self.head_learning_rate),
                fix="e.g. head_learning_rate = 0.001, or leave it unset",
            )  # fmt: skip
        if not 0 <= self.warmup_fraction < 1:
            raise InvalidInputError(
                "warmup_fraction must be in [0, 1)", received=repr(self.warmup_fraction),
                fix="e.g. warmup_fraction = 0.1 (0 disables the warm-up)",
            )  # fmt: skip
        for name in ("test_fraction", "validation_fraction"):
            if not 0 < getattr(self, name) < 0.5:
                raise InvalidInputError(
                    f"{name} must be between 0 and 0.5",
                    received=str(getattr(self, name)),
                    fix=f"set {name} = 0.2",
                )

    @property
    def rate(self) -> float:
        """The learning rate in effect: ``learning_rate``, or the method's default."""
        return DEFAULT_LEARNING_RATE[self.peft] if self.learning_rate is None else self.learning_rate

    def to_json(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["target_modules"] = None if self.target_modules is None else list(self.target_modules)
        if out["dp_secure_noise"]:
            del out["dp_secure_noise"]  # the default: configs digest as before the option existed
        return _without_dp_when_off(out)

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any], source: str = "the training config") -> TextConfig:
        _refuse_unknown_keys(raw, {f.name for f in fields(cls)}, source)
        values = dict(raw)
        if isinstance(values.get("target_modules"), list):
            values["target_modules"] = tuple(values["target_modules"])
        try:
            return cls(**values)
        except TypeError as exc:
            raise ConfigError(f"{source} is invalid", received=str(exc), fix="check value types") from exc
