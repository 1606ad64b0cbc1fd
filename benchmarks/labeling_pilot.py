"""Pilot variants of the digits + logistic-regression labeling loop, on pilot seeds only.

Used to choose (or reject) changes to the product's default loop before the verdict run of
bench_labeling.py (seeds 0-4); never run on seeds 0-9. It re-implements the loop of
keelml.labeling.simulate for speed of trying ideas (same split, same random warm start of 10,
same default model: logistic regression C=1 on standardised features, margin, query batches of 5,
an evaluation every 5 labels), and caps the grid at 400 labels: a seed that does not reach its
target (the accuracy of the same model trained on the whole pool) counts as 400. ``base`` must
reproduce the product loop's margin numbers (it does: 252.5 on seeds 100-109, as in labeling.md).

    .venv/bin/python benchmarks/labeling_pilot.py VARIANT 100,101,102,103,104,105,106,107,108,109

VARIANT is one of:
  base      margin (the product default)
  km        base, but the 10 warm-start rows are the rows nearest the centres of a k-means (k=10)
  cv        C chosen each round by stratified 3-fold CV on the labeled rows from {0.1, 0.3, 1, 3, 10}
            (C=1 below 20 rows); the target is then the CV-chosen model on the whole pool
  kmcv      km and cv together
  bal       class_weight="balanced" (the target too)
  Cx2       C=2 (the target too)
  dens1, dens0.5   information density (Settles & Craven 2008): (1 - margin) x (kNN density)^beta
  power1    stochastic batch (Kirsch et al. 2023): Gumbel-top-k on beta x log(1 - margin)
  badge     BADGE-like (Ash et al. 2020): k-means++ seeding on the gradient embedding of the 50
            most uncertain rows
  logm      margin of the log-probabilities (the logit gap of the two top classes)
  bag       margin of the mean of 5 bootstrap models
  kb        batch by fantasised labels (kriging believer): pick the top-margin row, add it with
            the predicted label, refit, repeat
  b1        an oracle upper bound for batch size 1: as kb but with the true label
  cb        class-balanced batch: from the 15 most uncertain, one row per predicted class first
  hy2, hy3, hy5     hybrid: the F x 5 most uncertain by margin, then k-center (labeled rows as
            centres) on the standardised features; hy5 is the product's hybrid (factor 5)
"""

from __future__ import annotations

import json
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
from sklearn.cluster import KMeans
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, train_test_split
from sklearn.preprocessing import StandardScaler

from keelml.labeling.strategies import kcenter_greedy

warnings.filterwarnings("ignore")

X, Y = load_digits(return_X_y=True)
X = StandardScaler().fit_transform(X)
STEPS = (*range(10, 400, 5), 400)
VARIANT = sys.argv[1] if len(sys.argv) > 1 else "base"


def fit_lr(xl: Any, yl: Any, c: float) -> Any:
    if "bal" in VARIANT:
        return LogisticRegression(C=c, max_iter=500, class_weight="balanced").fit(xl, yl)
    if "Cx" in VARIANT:
        c = float(VARIANT.split("Cx")[1].split("_")[0])
    return LogisticRegression(C=c, max_iter=500).fit(xl, yl)


def proba(m: Any, xs: Any, k: int = 10) -> Any:
    p = np.zeros((xs.shape[0], k))
    p[:, m.classes_] = m.predict_proba(xs)
    return p


def fit_cv(xl: Any, yl: Any, grid: tuple[float, ...] = (0.1, 0.3, 1, 3, 10)) -> Any:
    counts = np.bincount(yl)
    k = min(3, counts[counts > 0].min())
    if k < 2 or len(yl) < 20:
        return fit_lr(xl, yl, 1.0)
    skf = StratifiedKFold(k, shuffle=True, random_state=0)
    scores = []
    for c in grid:
        s = 0.0
        for tr, va in skf.split(xl, yl):
            m = fit_lr(xl[tr], yl[tr], c)
            s += (m.predict(xl[va]) == yl[va]).mean()
        scores.append(s)
    return fit_lr(xl, yl, grid[int(np.argmax(scores))])


def margin(p: Any) -> Any:
    t = np.sort(p, 1)
    return t[:, -2] - t[:, -1]


def kmeans_start(xp: Any, k: int, seed: int) -> Any:
    km = KMeans(k, n_init=1, random_state=seed).fit(xp)
    d = ((xp[:, None, :] - km.cluster_centers_[None]) ** 2).sum(-1)
    out: list[int] = []
    for c in range(k):
        out.append(next(int(j) for j in np.argsort(d[:, c]) if j not in out))
    return np.array(out)


def density(xp: Any, k: int = 10) -> Any:
    d = ((xp[:, None, :] - xp[None]) ** 2).sum(-1)
    d.sort(1)
    return 1.0 / (1e-9 + np.sqrt(d[:, 1 : k + 1]).mean(1))


def _sequential(s: Any, xu: Any, xl: Any, yl: Any, b: int, m: Any, truth: Any) -> Any:
    xl2, yl2, avail, out, mm = xl, yl, np.ones(len(xu), bool), [], m
    for j in range(b):
        pp = proba(mm, xu)
        sc = margin(pp)
        sc[~avail] = -np.inf
        k = int(np.argmax(sc))
        out.append(k)
        avail[k] = False
        if j + 1 < b:
            lab = truth[k] if "b1" in VARIANT else pp[k].argmax()
            xl2, yl2 = np.vstack([xl2, xu[k : k + 1]]), np.append(yl2, lab)
            mm = fit_lr(xl2, yl2, 1.0)
    return np.array(out)


def choose(s: Any, p: Any, xu: Any, xl: Any, yl: Any, b: int, rng: Any, m: Any, dens: Any, truth: Any) -> Any:
    v = VARIANT
    u = 1.0 + s  # 1 - margin: high = uncertain
    if "dens" in v:
        beta = float(v.split("dens")[1].split("_")[0] or 1)
        return np.argsort(-(u * (dens / dens.mean()) ** beta), kind="stable")[:b]
    if "power" in v:
        beta = float(v.split("power")[1].split("_")[0] or 1)
        g = rng.gumbel(size=len(u))
        return np.argsort(-(beta * np.log(np.maximum(1 - np.abs(s), 1e-12)) + g))[:b]
    if "badge" in v:
        g = p.copy()
        g[np.arange(len(g)), p.argmax(1)] -= 1
        top = np.argsort(-s, kind="stable")[: 10 * b]
        emb = (g[top][:, :, None] * xu[top][:, None, :]).reshape(len(top), -1)
        chosen = [0]
        dmin = ((emb - emb[0]) ** 2).sum(1)
        for _ in range(b - 1):
            j = rng.choice(len(emb), p=dmin / dmin.sum())
            chosen.append(j)
            dmin = np.minimum(dmin, ((emb - emb[j]) ** 2).sum(1))
        return top[np.array(chosen)]
    if "kb" in v or "b1" in v:
        return _sequential(s, xu, xl, yl, b, m, truth)
    if "cb" in v:
        top = np.argsort(-s, kind="stable")[: 3 * b]
        out: list[int] = []
        seen: set[int] = set()
        for j in top:
            if p[j].argmax() not in seen:
                out.append(j)
                seen.add(p[j].argmax())
            if len(out) == b:
                break
        out += [j for j in top if j not in out][: b - len(out)]
        return np.array(out)
    if "hy" in v:
        top = np.argsort(-s, kind="stable")[: int(v.split("hy")[1]) * b]
        return top[kcenter_greedy(xu[top], b, rng, xl)]
    if "logm" in v:
        t = np.log(np.clip(np.sort(p, 1), 1e-300, 1))
        return np.argsort(t[:, -1] - t[:, -2], kind="stable")[:b]
    if "bag" in v:
        ps = []
        for _ in range(5):
            i = rng.integers(0, len(yl), len(yl))
            ps.append(proba(fit_lr(xl[i], yl[i], 1.0), xu))
        return np.argsort(-margin(np.mean(ps, 0)), kind="stable")[:b]
    return np.argsort(-s, kind="stable")[:b]


def run(seed: int) -> tuple[int, float]:
    pool, test = train_test_split(np.arange(len(Y)), test_size=0.25, random_state=seed, stratify=Y)
    pool, test = np.sort(pool), np.sort(test)

    def fit(a: Any, b: Any) -> Any:
        return fit_cv(a, b) if "cv" in VARIANT else fit_lr(a, b, 1.0)

    target = float((fit(X[pool], Y[pool]).predict(X[test]) == Y[test]).mean())
    if "km" in VARIANT:
        labeled = pool[kmeans_start(X[pool], STEPS[0], seed)]
    else:
        labeled = np.random.default_rng(seed).choice(pool, STEPS[0], replace=False)
    dens_all = density(X[pool])
    rng = np.random.default_rng([seed, 1])
    curve = []
    for i, _n in enumerate(STEPS):
        m = fit(X[labeled], Y[labeled])
        curve.append((proba(m, X[test]).argmax(1) == Y[test]).mean())
        if i + 1 == len(STEPS):
            break
        unl = np.setdiff1d(pool, labeled)
        p = proba(m, X[unl])
        dens = dens_all[np.searchsorted(pool, unl)]
        b = STEPS[i + 1] - len(labeled)
        pick = choose(margin(p), p, X[unl], X[labeled], Y[labeled], b, rng, m, dens, Y[unl])
        labeled = np.concatenate([labeled, unl[pick]])
    return next((n for n, a in zip(STEPS, curve, strict=True) if a >= target), 400), target


if __name__ == "__main__":
    seeds = [int(s) for s in sys.argv[2].split(",")]
    if min(seeds) < 100:
        sys.exit("pilot seeds only (100 and up): seeds 0-9 are for the verdict run")
    t0, hits = time.time(), []
    for seed in seeds:
        hit, target = run(seed)
        hits.append(hit)
        print(VARIANT, seed, hit, round(target, 4), flush=True)
    seconds = time.time() - t0
    print("RESULT", VARIANT, np.mean(hits), np.std(hits), hits, f"{seconds:.0f}s", flush=True)
    row = {
        "variant": VARIANT,
        "seeds": seeds,
        "labels_to_target": hits,
        "mean": float(np.mean(hits)),
        "std": float(np.std(hits)),
        "seconds": round(seconds),
        "loadavg_end": [round(v, 1) for v in os.getloadavg()],
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    with (Path(__file__).resolve().parent / "results" / "labeling-pilot.jsonl").open("a") as f:
        f.write(json.dumps(row) + "\n")
