"""DP-SGD with Opacus (imported lazily): Poisson sampling, per-sample clipping, Gaussian noise.

The privacy *math* (noise calibration, epsilon) lives in the privacy capability and reaches this
module as an :class:`Accounting` object (``ws.privacy``) passed in by the caller; this module never
imports it. A private run always trains a fresh model for exactly ``epochs`` epochs and keeps the
last weights: choosing the best epoch on validation rows would leak them into the model.

Clipping modes: ``ghost`` (Opacus fast gradient clipping: per-sample gradient norms without
materialising per-sample gradients; the memory-efficient mode) and ``hooks`` (Opacus' default
per-sample gradients). Logical (Poisson) batches larger than ``dp_physical_batch`` are split into
virtual steps by Opacus' BatchMemoryManager, which changes memory, not the privacy accounting.
With ``ema`` the run returns an exponential moving average of the weights over the noisy steps instead
of the last weights: a function of the released iterates (post-processing), so it costs no privacy. Its
decay warms up as ``min(ema, (1 + t) / (10 + t))`` at step t (De et al. 2022; jax_privacy's averaging), so
the average does not carry the initial weights and the first noisy steps into the model.

Noise: with ``dp_secure_noise`` (the default) the Gaussian noise comes from
:class:`keelml.core.securerandom.SecureGaussian` (AES-256-CTR keystream keyed by ``os.urandom``, the
floating-point-hardened sampling of Opacus' ``secure_mode``) instead of torch's seeded generator,
so nobody who knows the seed can replay or subtract it; such a run is not reproducible from its seed.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from keelml.core.errors import InvalidInputError, missing_dependency
from keelml.core.progress import NoProgress, Progress, ProgressNote
from keelml.core.securerandom import SOURCE as SECURE_SOURCE
from keelml.core.tracking import NoRunLogger, RunLogger
from keelml.train.config import _DpSettings
from keelml.train.trainer import EpochRecord, FitHistory

NEIGHBOURING = "add-or-remove-one record"


class Accounting(Protocol):
    """What DP training needs of the privacy capability (``ws.privacy`` provides it)."""

    def compute_epsilon(
        self, *, noise_multiplier: float, sample_rate: float, steps: int, delta: float
    ) -> float: ...

    def noise_for_epsilon(
        self, *, target_epsilon: float, sample_rate: float, steps: int, delta: float
    ) -> float: ...


@dataclass(frozen=True, slots=True)
class PrivateTraining:
    """How a private run is accounted: ``accounting`` (``ws.privacy``) and an optional ``before``
    hook called with the plan before any training (e.g. the ledger's budget check). ``noise``
    replaces the noise source (anything with numpy's ``normal(loc, scale, size)``; tests use it)."""

    accounting: Accounting
    before: Callable[[PrivacyReport], None] | None = None
    noise: NoiseSource | None = None


class NoiseSource(Protocol):
    """Gaussian samples as a float64 array, numpy's ``Generator.normal`` signature."""

    def normal(self, loc: float = ..., scale: float = ..., size: Any = ...) -> Any: ...


NOISE_TORCH = "torch generator (not a CSPRNG)"


@dataclass(frozen=True, slots=True)
class PrivacyReport:
    """The guarantee of a DP-SGD run: (epsilon, delta) for the training rows, and how it was reached."""

    epsilon: float
    delta: float
    noise_multiplier: float
    max_grad_norm: float
    sample_rate: float
    steps: int
    epochs: int
    train_rows: int
    clipping: str
    target_epsilon: float | None
    accountant: str = "pld"
    neighbouring: str = NEIGHBOURING
    noise_source: str = NOISE_TORCH

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def mechanism(self) -> dict[str, Any]:
        """The mechanism as the privacy ledger stores it (enables PLD composition across runs)."""
        return {
            "noise_multiplier": self.noise_multiplier,
            "sample_rate": self.sample_rate,
            "steps": self.steps,
        }

    def params(self) -> dict[str, Any]:
        """Flat run parameters / metrics for tracking."""
        return {f"privacy_{k}": v for k, v in self.to_json().items()}


def plan(
    config: _DpSettings, *, train_rows: int, batch_size: int, epochs: int, accounting: Accounting
) -> PrivacyReport:
    """Sample rate and steps as Opacus will run them, and the noise (calibrated or given) with its epsilon."""
    if config.dp_delta >= 1 / train_rows:
        raise InvalidInputError(
            f"delta {config.dp_delta:g} is not below 1/N for N = {train_rows} training rows",
            expected=f"dp_delta < {1 / train_rows:.3g}: a larger delta allows leaking whole records",
            received=f"dp_delta {config.dp_delta:g}",
            fix=f"pass --dp-delta {10 ** math.floor(math.log10(0.1 / train_rows)):g} or smaller",
        )
    # Opacus' Poisson loader samples each row with q = 1 / (batches per epoch) and runs that many steps
    per_epoch = math.ceil(train_rows / batch_size)
    sample_rate, steps = 1 / per_epoch, per_epoch * epochs
    args = {"sample_rate": sample_rate, "steps": steps, "delta": config.dp_delta}
    if config.dp_epsilon is not None:
        noise = accounting.noise_for_epsilon(target_epsilon=config.dp_epsilon, **args)  # type: ignore[arg-type]
    else:
        assert config.dp_noise_multiplier is not None
        noise = config.dp_noise_multiplier
    epsilon = accounting.compute_epsilon(noise_multiplier=noise, **args)  # type: ignore[arg-type]
    source = SECURE_SOURCE if config.dp_secure_noise else NOISE_TORCH
    return PrivacyReport(
        epsilon, config.dp_delta, noise, config.dp_max_grad_norm, sample_rate, steps, epochs, train_rows,
        config.dp_clipping, config.dp_epsilon, noise_source=source,
    )  # fmt: skip


class IncompatibleLayerError(InvalidInputError):
    """The model has layers Opacus cannot train with per-sample clipping."""


def check_compatible(module: Any) -> None:
    """Name the layers Opacus cannot handle (BatchNorm, ...) and the fix, before training starts."""
    try:
        from opacus.validators import ModuleValidator  # type: ignore[import-untyped]  # no stubs upstream
    except ImportError as exc:  # pragma: no cover - the privacy extra is installed in CI
        raise missing_dependency("opacus", "privacy", "differentially private training") from exc
    errors = ModuleValidator.validate(module, strict=False)
    if errors:
        names = sorted({str(e).split("\n")[0] for e in errors})
        batchnorm = any("BatchNorm" in n for n in names)
        raise IncompatibleLayerError(
            f"the model has {len(errors)} layer(s) that DP-SGD cannot train",
            expected="layers with per-sample gradients (Linear, Conv, LayerNorm, GroupNorm, Embedding, ...)",
            received="; ".join(names)[:600],
            fix=("replace BatchNorm with GroupNorm (it mixes samples in a batch), " if batchnorm else "")
            + "or let opacus.validators.ModuleValidator.fix(model) swap the layers, then train again",
        )


@dataclass(frozen=True, slots=True)
class PrivateBatches:
    """The training rows as tensors (Opacus samples rows from them) and how to use a batch."""

    tensors: tuple[Any, ...]
    logits: Callable[[Any, tuple[Any, ...]], Any]  # (module, batch) -> logits
    targets: Callable[[tuple[Any, ...]], Any]  # batch -> class indices


def dp_fit(
    module: Any,
    data: PrivateBatches,
    val_loss: Callable[[Any], float],
    report: PrivacyReport,
    *,
    batch_size: int,
    physical_batch: int | None,
    learning_rate: float,
    weight_decay: float = 0.0,
    seed: int,
    ema: float | None = None,
    noise: NoiseSource | None = None,
    progress: Progress | None = None,
    logger: RunLogger | None = None,
    name: str = "private training",
) -> FitHistory:
    """Train ``module`` in place with DP-SGD for ``report.epochs`` epochs (last weights kept, or their
    moving average with decay ``ema`` per noisy step). ``noise`` (e.g. a SecureGaussian) replaces
    torch's generator for the Gaussian noise."""
    import torch
    from opacus import PrivacyEngine  # type: ignore[import-untyped]
    from opacus.utils.batch_memory_manager import BatchMemoryManager  # type: ignore[import-untyped]
    from torch.utils.data import DataLoader, TensorDataset

    check_compatible(module)
    progress = progress or NoProgress()
    logger = logger or NoRunLogger()
    trainable = [p for p in module.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=learning_rate, weight_decay=weight_decay)
    generator = torch.Generator().manual_seed(seed)
    loader = DataLoader(TensorDataset(*data.tensors), batch_size=batch_size, generator=generator)
    criterion = torch.nn.CrossEntropyLoss()
    with warnings.catch_warnings():
        # Opacus warns that secure_mode (a CSPRNG for the noise) is off (docs/privacy.md says so)
        warnings.simplefilter("ignore")
        engine = PrivacyEngine(secure_mode=False)
        try:
            made = engine.make_private(
                module=module, optimizer=optimizer, data_loader=loader, criterion=criterion,
                noise_multiplier=report.noise_multiplier, max_grad_norm=report.max_grad_norm,
                poisson_sampling=True, grad_sample_mode=report.clipping,
            )  # fmt: skip
        except NotImplementedError as exc:  # a trainable layer without a per-sample gradient rule
            raise IncompatibleLayerError(
                "the model has a trainable layer Opacus cannot compute per-sample gradients for",
                expected="trainable layers among Linear, Conv, LayerNorm, GroupNorm, Embedding, ...",
                received=str(exc).splitlines()[0][:300],
                fix="freeze that layer, use LoRA (its adapters are Linear layers), or dp_clipping = 'hooks'",
            ) from exc
    if report.clipping == "ghost":
        private, dp_optimizer, criterion, dp_loader = made
    else:
        private, dp_optimizer, dp_loader = made
    if noise is not None:
        use_noise_source(dp_optimizer, noise)
    records: list[EpochRecord] = []
    average = None if ema is None else [p.detach().clone() for p in trainable]
    averaged = 0  # noisy steps folded into the average so far
    progress.stage(name, total=report.epochs)
    with warnings.catch_warnings():
        # frozen inputs make torch note that its full backward hook sees only module outputs: expected
        warnings.filterwarnings("ignore", message="Full backward hook is firing")
        try:
            for epoch in range(1, report.epochs + 1):
                private.train()
                total, count = 0.0, 0
                with BatchMemoryManager(
                    data_loader=dp_loader,
                    max_physical_batch_size=physical_batch or batch_size,
                    optimizer=dp_optimizer,
                ) as batches:
                    for batch in batches:
                        if len(batch[0]) == 0:  # Poisson sampling may draw an empty lot: nothing to learn
                            continue
                        dp_optimizer.zero_grad()
                        loss = criterion(data.logits(private, tuple(batch)), data.targets(tuple(batch)))
                        loss.backward()
                        dp_optimizer.step()
                        real = not getattr(dp_optimizer, "_is_last_step_skipped", False)
                        if ema is not None and average is not None and real:
                            # after a real (noisy) step only: virtual steps of a lot are not iterates
                            _update_average(average, trainable, ema_decay(ema, averaged))
                            averaged += 1
                        total += float(loss.detach()) * len(batch[0])
                        count += len(batch[0])
                private.eval()
                with torch.no_grad():
                    record = EpochRecord(epoch, total / max(count, 1), val_loss(module))
                records.append(record)
                logger.log_metrics({"train_loss": record.train_loss, "val_loss": record.val_loss}, step=epoch)
                progress.advance(1)
                if isinstance(progress, ProgressNote):
                    progress.note(f"epoch {epoch}: loss {record.train_loss:.4f}, val {record.val_loss:.4f}")
        finally:
            _detach(private, module)
    if average is not None:
        with torch.no_grad():
            for p, a in zip(trainable, average, strict=True):
                p.copy_(a)
    module.eval()
    return FitHistory(tuple(records), len(records), stopped_early=False)


def use_noise_source(optimizer: Any, source: NoiseSource) -> None:
    """Make an Opacus DPOptimizer draw its Gaussian noise from ``source``: the same steps as
    ``DPOptimizer.add_noise`` (std = noise multiplier x clipping norm, added to each summed clipped
    gradient), with one draw per step for all parameters. A source with ``normal_tensor(scale, n,
    dtype)`` (SecureGaussian) hands over a torch tensor directly; any other answers numpy's ``normal``."""
    import torch
    from opacus.optimizers.optimizer import (  # type: ignore[import-untyped]
        _check_processed_flag,
        _mark_as_processed,
    )

    tensor_normal = getattr(source, "normal_tensor", None)

    def add_noise() -> None:
        multiplier = getattr(optimizer, "_adjusted_noise_multiplier", optimizer.noise_multiplier)
        std = float(multiplier * optimizer.max_grad_norm)
        params = list(optimizer.params)
        for p in params:
            _check_processed_flag(p.summed_grad)
        sizes = [p.summed_grad.numel() for p in params]
        flat: Any = None
        if std > 0:
            dtypes = {p.summed_grad.dtype for p in params}
            dtype = dtypes.pop() if len(dtypes) == 1 else torch.float64  # mixed: cast each part from float64
            flat = (
                tensor_normal(std, sum(sizes), dtype)
                if tensor_normal is not None
                else torch.from_numpy(source.normal(0.0, std, sum(sizes))).to(dtype)
            )
        at = 0
        for p, size in zip(params, sizes, strict=True):
            summed = p.summed_grad
            if flat is None:
                p.grad = summed.clone().view_as(p)
            else:
                part = flat[at : at + size].to(dtype=summed.dtype, device=summed.device)
                p.grad = (summed + part.view_as(summed)).view_as(p)
            at += size
            _mark_as_processed(p.summed_grad)

    optimizer.add_noise = add_noise


def ema_decay(decay: float, step: int) -> float:
    """The moving average's decay at noisy step ``step`` (0 for the first): ``min(decay, (1 + step) /
    (10 + step))``. Runs of a few hundred steps never reach a decay of 0.99; their average is the warm-up's,
    iterate t of T weighted about as (t / T)**8 (60 % of the weight on the last tenth of the steps).

    >>> [round(ema_decay(0.99, t), 3) for t in (0, 10, 100, 1000)]
    [0.1, 0.55, 0.918, 0.99]
    """
    return min(decay, (1 + step) / (10 + step))


def _update_average(average: list[Any], params: list[Any], decay: Any) -> None:
    import torch

    with torch.no_grad():
        for a, p in zip(average, params, strict=True):
            a.mul_(decay).add_(p.detach(), alpha=1 - decay)


def _detach(private: Any, module: Any) -> None:
    """Remove Opacus' hooks and per-sample buffers, so the plain module can be saved and served."""
    remove = getattr(private, "_close", None) or getattr(private, "remove_hooks", None)
    if remove is not None:
        remove()
    for p in module.parameters():
        for attr in ("grad_sample", "_forward_counter", "summed_grad", "_current_grad_sample"):
            if hasattr(p, attr):
                setattr(p, attr, None)
        p.grad = None


def run_private(
    module: Any,
    data: PrivateBatches,
    val_loss: Callable[[Any], float],
    config: Any,
    private: PrivateTraining | None,
    *,
    progress: Progress | None = None,
    logger: RunLogger | None = None,
    name: str = "private training",
) -> tuple[PrivacyReport, FitHistory]:
    """Plan (calibrate), ask ``private.before`` (budget check), log the plan, train with DP-SGD."""
    if private is None:
        raise InvalidInputError(
            "a private training run needs the privacy accountant",
            expected="train through ws.training (it passes ws.privacy), or pass "
            "private=PrivateTraining(ws.privacy)",
            received="private=None",
            fix="call ws.training.tabular(...) / ws.training.text(...), or pass private=",
        )
    rows = len(data.tensors[0])
    report = plan(config, train_rows=rows, batch_size=config.batch_size, epochs=config.epochs,
                  accounting=private.accounting)  # fmt: skip
    if private.before is not None:
        private.before(report)
    (logger or NoRunLogger()).log_params(report.params())
    noise = private.noise
    if noise is None and report.noise_source == SECURE_SOURCE:
        from keelml.core.securerandom import SecureGaussian

        noise = SecureGaussian()
    history = dp_fit(
        module, data, val_loss, report, batch_size=config.batch_size, physical_batch=config.dp_physical_batch,
        learning_rate=config.learning_rate, weight_decay=getattr(config, "weight_decay", 0.0),
        seed=config.seed, ema=getattr(config, "dp_ema", None), noise=noise, progress=progress, logger=logger,
        name=name,
    )  # fmt: skip
    return report, history
