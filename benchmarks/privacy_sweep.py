"""Validation sweep of DP-SGD settings on digits, vectorised over many seeds (for choosing settings).

keelml's DP training (Opacus) costs ~5-60 s a run on the shared 2-core machine, too slow to compare
settings over the 20 seeds that 179 validation rows need (one row is 0.56 points). This script runs the
same mechanism for a one-hidden-layer MLP with analytic per-sample gradients, all seeds in one batch:
Poisson lots (q = 1/ceil(N/B), keelml's sampling), per-sample clipping to C, Gaussian noise of std
sigma * C on the clipped sum (sigma from keelml.privacy.noise_for_epsilon, PLD), divided by the
expected lot size qN, then Adam (or SGD with momentum); optional moving average of the weights. It
reads the validation rows of each seed's split only (the test rows never), through keelml's split.
The chosen settings are then run through keelml itself by bench_privacy.py --part utility.

    .venv/bin/python benchmarks/privacy_sweep.py '[{"act": "tanh", "scale": "pm1", "clip": 0.25}]' 0,1,...,19

Keys: eps, hidden, act (relu|tanh), scale (std: training mean/std | pm1: (x - 8) / 8 | a number: x / it),
batch, epochs, lr, clip, ema, decay (cos), opt (adam|sgd), mom, b2, b1m (Adam betas), init, rf (a fixed
random first layer, weights N(0, rf^2/64): only the head trains), ntrain (fewer training rows), ln
(layer normalisation of the hidden pre-activations), emaw (the EMA's decay warms up as
min(ema, (1 + t) / (10 + t)), jax_privacy's averaging), polyak (uniform mean of the iterates from that
fraction of the steps on), bc (DP-AdamBC's floor: Adam's second moment minus the noise's variance), warm
(linear learning-rate warm-up over that fraction of the steps), aug (augmentation multiplicity, De et
al. 2022: K copies of each row shifted by up to one pixel, gradients averaged before clipping; pm1 only).
Prints mean and per-seed validation
accuracy and the noise multiplier.
"""

import functools
import json
import math
import sys
import time

import numpy as np
import torch
from sklearn.datasets import load_digits

from keelml.privacy import noise_for_epsilon
from keelml.train.config import TabularConfig
from keelml.train.tabular import split_indices

torch.set_num_threads(1)
D = load_digits()
X = D.data.astype(np.float32)
Y = D.target.astype(np.int64)


@functools.lru_cache(None)
def sigma(eps, q, steps):
    return noise_for_epsilon(target_epsilon=eps, sample_rate=q, steps=steps, delta=1e-5)


def prep(seed, scale):
    p = split_indices(Y, TabularConfig(seed=seed))
    tr = p["train"]
    if scale == "std":  # keelml's standardisation: training mean and std
        mu, sd = X[tr].mean(0), X[tr].std(0)
        sd = np.where(sd == 0, 1.0, sd)
    elif scale == "pm1":  # input_range = [0, 16]: (x - 8) / 8
        mu, sd = np.float32(8.0), np.float32(8.0)
    else:
        mu, sd = np.float32(0.0), np.float32(float(scale))

    def f(a):
        return ((a - mu) / sd).astype(np.float32)

    return [(torch.tensor(f(X[p[k]])), torch.tensor(Y[p[k]])) for k in ("train", "validation")]


def _augmented(
    P: list[torch.Tensor], xb: torch.Tensor, yb: torch.Tensor, K: int, act: str, g: torch.Generator
) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Per-row gradients averaged over K copies shifted by up to one pixel (8x8 digits, pm1 scale: the
    border fills with -1, pixel 0): the copies' activations and backprops, and each row's gradient norm
    from K x K Gram matrices (without materialising per-row gradients)."""
    W1, b1, W2, b2_ = P
    R, M, _ = xb.shape
    padded = torch.nn.functional.pad(xb.view(R, M, 8, 8), (1, 1, 1, 1), value=-1.0)
    rows = torch.randint(0, 3, (R, M, K, 1, 1), generator=g) + torch.arange(8).view(1, 1, 1, 8, 1)
    cols = torch.randint(0, 3, (R, M, K, 1, 1), generator=g) + torch.arange(8).view(1, 1, 1, 1, 8)
    ri, mi = torch.arange(R).view(R, 1, 1, 1, 1), torch.arange(M).view(1, M, 1, 1, 1)
    xa = padded[ri, mi, rows, cols].reshape(R, M * K, 64)
    ya = yb[:, :, None, :].expand(-1, -1, K, -1).reshape(R, M * K, 10)
    pre = torch.baddbmm(b1[:, None], xa, W1)
    h = torch.tanh(pre) if act == "tanh" else pre.clamp(min=0)
    dl = (torch.softmax(torch.baddbmm(b2_[:, None], h, W2), -1) - ya) / K
    dh = torch.bmm(dl, W2.transpose(1, 2)) * ((1 - h**2) if act == "tanh" else (pre > 0).float())

    def gram(a: torch.Tensor) -> torch.Tensor:
        a = a.view(R, M, K, -1)
        return a @ a.transpose(-1, -2)

    sq = (gram(xa) * gram(dh)).sum((-1, -2)) + (gram(h) * gram(dl)).sum((-1, -2))
    sq = sq + (dh.view(R, M, K, -1).sum(2) ** 2).sum(-1) + (dl.view(R, M, K, -1).sum(2) ** 2).sum(-1)
    return [xa, h, dl, dh], torch.sqrt(sq)


def run(
    seeds,
    eps=3.0,
    hidden=32,
    act="relu",
    scale="std",
    batch=256,
    epochs=60,
    lr=0.01,
    clip=0.5,
    ema=None,
    decay=None,
    b2=0.999,
    init=1.0,
    opt="adam",
    mom=0.9,
    rf=None,
    ntrain=None,
    ln=False,
    b1m=0.9,
    emaw=False,
    polyak=None,
    bc=None,
    warm=0,
    aug=0,
):
    R = len(seeds)
    parts = [prep(s, scale) for s in seeds]
    n = min(len(p[0][0]) for p in parts)  # same N for all seeds (stratified split sizes are equal)
    n = min(n, ntrain or n)  # fewer training rows (to measure what more rows are worth)
    xt = torch.stack([p[0][0][:n] for p in parts])
    yt = torch.stack([p[0][1][:n] for p in parts])
    per = math.ceil(n / batch)
    q = 1 / per
    steps = per * epochs
    s = sigma(eps, q, steps) if eps else 0.0
    g = torch.Generator().manual_seed(1234 + seeds[0])

    def lin(i, o):  # torch default init: U(-1/sqrt(i), 1/sqrt(i))
        bnd = 1 / math.sqrt(i)
        return [
            (torch.rand(R, i, o, generator=g) * 2 - 1) * bnd * init,
            (torch.rand(R, o, generator=g) * 2 - 1) * bnd * init,
        ]

    P = lin(64, hidden) + lin(hidden, 10)
    if rf is not None:  # fixed random features: first layer N(0, rf^2 / 64) weights, N(0, 1) biases, frozen
        P[0] = torch.randn(R, 64, hidden, generator=g) * rf / 8
        P[1] = torch.randn(R, hidden, generator=g)
    m = [torch.zeros_like(p) for p in P]
    v = [torch.zeros_like(p) for p in P]
    avg = [p.clone() for p in P]
    Yh = torch.nn.functional.one_hot(yt, 10).float()
    for t in range(steps):
        W1, b1, W2, b2_ = P
        mask = torch.rand(R, n, generator=g) < q
        M = max(int(mask.sum(1).max()), 1)
        idx = torch.argsort((~mask).float(), dim=1, stable=True)[:, :M]
        w = torch.gather(mask.float(), 1, idx)
        xb = torch.gather(xt, 1, idx[..., None].expand(-1, -1, 64))
        yb = torch.gather(Yh, 1, idx[..., None].expand(-1, -1, 10))
        if aug:  # augmentation multiplicity: K shifted copies per row, gradient averaged before clipping
            G, norm = _augmented(P, xb, yb, aug, act, g)
            f = (clip / (norm + 1e-6)).clamp(max=1.0) * w
            fk = f[:, :, None].expand(-1, -1, aug).reshape(R, -1, 1)
            xa, h, dl, dh = G
            G = [torch.bmm(xa.transpose(1, 2), fk * dh), (fk * dh).sum(1), torch.bmm(h.transpose(1, 2), fk * dl),
                 (fk * dl).sum(1)]  # fmt: skip
        pre = torch.baddbmm(b1[:, None], xb, W1)
        if ln:  # layer normalisation (no affine) of the pre-activations
            sd = torch.sqrt(pre.var(-1, unbiased=False, keepdim=True) + 1e-5)
            pre = (pre - pre.mean(-1, keepdim=True)) / sd
        h = torch.tanh(pre) if act == "tanh" else pre.clamp(min=0)
        logits = torch.baddbmm(b2_[:, None], h, W2)
        dl = torch.softmax(logits, -1) - yb
        dh = torch.bmm(dl, W2.transpose(1, 2)) * ((1 - h**2) if act == "tanh" else (pre > 0).float())
        if ln:
            dh = (dh - dh.mean(-1, keepdim=True) - pre * (dh * pre).mean(-1, keepdim=True)) / sd
        dl2 = (dl**2).sum(-1)
        dh2 = (dh**2).sum(-1)
        if not aug:
            norm = torch.sqrt(
                ((h**2).sum(-1) + 1) * dl2 + (0 if rf is not None else ((xb**2).sum(-1) + 1) * dh2)
            )
            f = (clip / (norm + 1e-6)).clamp(max=1.0) * w
            xt_ = xb
            G = [
                torch.bmm(xt_.transpose(1, 2), f[..., None] * dh),
                (f[..., None] * dh).sum(1),
                torch.bmm(h.transpose(1, 2), f[..., None] * dl),
                (f[..., None] * dl).sum(1),
            ]
        lr_t = lr * (0.5 * (1 + math.cos(math.pi * t / steps)) if decay == "cos" else 1.0)
        if warm and t < warm * steps:  # linear warm-up over the first `warm` fraction of the steps
            lr_t *= (t + 1) / (warm * steps + 1)
        # EMA with jax_privacy's warm-up: decay min(ema, (1 + t) / (10 + t)); Polyak: uniform mean of the
        # iterates from step `polyak * steps` on
        mu = (min(ema, (1 + t) / (10 + t)) if emaw else ema) if ema else None
        start = None if polyak is None else int(polyak * steps)
        for i in range(2 if rf is not None else 0, 4):
            gi = (G[i] + s * clip * torch.randn(G[i].shape, generator=g)) / (q * n)
            if opt == "adam":
                m[i].mul_(b1m).add_(gi, alpha=1 - b1m)
                v[i].mul_(b2).add_(gi**2, alpha=1 - b2)
                mh = m[i] / (1 - b1m ** (t + 1))
                vh = v[i] / (1 - b2 ** (t + 1))
                if bc is not None:  # DP-AdamBC (Tang et al. 2024): remove the noise's variance from v
                    vh = (vh - (s * clip / (q * n)) ** 2).clamp(min=bc)
                    P[i] = P[i] - lr_t * mh / vh.sqrt()
                else:
                    P[i] = P[i] - lr_t * mh / (vh.sqrt() + 1e-8)
            else:
                m[i].mul_(mom).add_(gi)
                P[i] = P[i] - lr_t * m[i]
            if mu is not None:
                avg[i].mul_(mu).add_(P[i], alpha=1 - mu)
            elif start is not None and t >= start:
                k = t - start
                avg[i].mul_(k / (k + 1)).add_(P[i], alpha=1 / (k + 1))
    F = avg if (ema or polyak is not None) else P
    accs = []
    for r, p in enumerate(parts):
        xe, ye = p[1]  # validation rows only
        pre = xe @ F[0][r] + F[1][r]
        if ln:
            pre = (pre - pre.mean(-1, keepdim=True)) / torch.sqrt(
                pre.var(-1, unbiased=False, keepdim=True) + 1e-5
            )
        h = torch.tanh(pre) if act == "tanh" else pre.clamp(min=0)
        accs.append(float(((h @ F[2][r] + F[3][r]).argmax(1) == ye).float().mean()))
    return accs, s


if __name__ == "__main__":
    grid = json.loads(sys.argv[1])
    seeds = [int(x) for x in sys.argv[2].split(",")]
    for kw in grid:
        t0 = time.time()
        accs, s = run(seeds, **kw)
        print(
            f"{np.mean(accs):.4f} [{', '.join(f'{a:.3f}' for a in accs)}] sigma {s:.2f} {kw} {time.time() - t0:.0f}s",
            flush=True,
        )
