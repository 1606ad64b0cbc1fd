"""A uniform "model soup": the weights of several cached compressed models of one structure, averaged.

Students pruned from the same teacher with the same settings keep the same heads and units whatever
their seed (the importance batches are the first training rows), so their weights can be averaged
into one model of the same size and speed (Wortsman et al., 2022, "Model soups"). This script
averages the models remembered under ``--keys`` in the cached teacher's ``bench-compress.json``,
registers the soup as a new version of the teacher's model (variant ``pruned``, lineage to the
teacher) and remembers it under ``--name``, so that ``compress_seeds.py --keys NAME`` exports it to
fused int8 and scores it on the internal test and held-out reviews.

Usage: OMP_NUM_THREADS=1 .venv/bin/python benchmarks/compress_soup.py --teacher-epochs 2
       --teacher-max-length 128 --keys "prune ... seed=1" ... --name "soup NAME"
"""

from __future__ import annotations

import argparse
import copy
import os

os.environ["HF_HUB_OFFLINE"] = "1"

import torch
from bench_compress import remember, reuse
from bench_export import TEACHER, cached_teacher

from keelml.compress.evaluate import evaluate_model
from keelml.compress.register import register_variant


def soup(models: list[torch.nn.Module]) -> dict[str, torch.Tensor]:
    """The mean of the floating-point weights of ``models`` (integer buffers: the first model's)."""
    states = [m.state_dict() for m in models]
    shapes = {k: v.shape for k, v in states[0].items()}
    for state in states[1:]:
        if {k: v.shape for k, v in state.items()} != shapes:
            raise SystemExit("the models differ in structure (other kept heads or units): no soup")
    return {
        k: torch.stack([s[k].float() for s in states]).mean(0).to(v.dtype) if v.is_floating_point() else v
        for k, v in states[0].items()
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher-epochs", type=int, default=2)
    parser.add_argument("--teacher-max-length", type=int, default=128)
    parser.add_argument("--keys", nargs="+", required=True, help="settings keys of bench-compress.json")
    parser.add_argument("--name", required=True, help="the key the soup is remembered under")
    args = parser.parse_args()
    torch.set_num_threads(1)
    ws, folder = cached_teacher(args.teacher_epochs, args.teacher_max_length)
    source = ws.compress.source(TEACHER)
    found = {key: reuse(ws, folder, key, 0) for key in args.keys}
    made = [m for m in found.values() if m is not None]
    if len(made) < len(found):
        missing = [key for key, m in found.items() if m is None]
        raise SystemExit(f"not remembered in {folder / 'bench-compress.json'}: {missing}")
    mixed = copy.deepcopy(made[0].model)
    mixed.module.load_state_dict(soup([m.model.module for m in made]))
    mixed.module.eval()
    y = source.labels("test")
    accuracy = evaluate_model(mixed, source.parts["test"], y, ())
    parameters = sum(int(p.numel()) for p in mixed.module.parameters())
    info = register_variant(
        ws, source, mixed, variant="pruned", description=f"uniform soup of {len(made)}: " + "; ".join(args.keys),
        metrics={**accuracy.metrics(), "parameters": float(parameters)}, params={"soup_of": len(made)},
    )  # fmt: skip
    remember(folder, args.name, f"{info.name}@{info.version}")
    print(f"{args.name}: {info.name}@{info.version}, internal test accuracy {accuracy.accuracy:.4f}")


if __name__ == "__main__":
    main()
