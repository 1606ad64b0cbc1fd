"""``keel bench``: a model version and its exported variants, interleaved in one run, fixed threads.

Each round runs every (variant, batch size) once, starting at a different variant each round, so slow
drift of a shared machine hits every variant alike. Latencies are per call (one batch); throughput is
predictions per second at that batch; cost per 1,000,000 predictions comes from the hardware profile.
Peak memory is the peak resident set of a fresh process that loads the variant and runs one batch.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from keelml.core.errors import InvalidInputError
from keelml.core.progress import NoProgress, Progress
from keelml.core.refs import ArtifactRef
from keelml.core.workspace import Workspace
from keelml.export.api import DEFAULT_LOADERS
from keelml.export.hardware import HardwareProfile, profile
from keelml.export.inputs import make_inputs, torch_manifest, torch_runner
from keelml.export.results import store_row


@dataclass(frozen=True, slots=True)
class BenchRow:
    model: str
    version: int
    variant: str  # torch-fp32 for the trained model, else the export variant
    batch_size: int
    seq_len: int | None
    p50_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float
    throughput: float  # predictions per second
    peak_memory_mb: float | None
    size_bytes: int
    cost_per_million: float
    calls: int
    # CPU seconds of this process (all its threads) per call, in ms: not inflated by preemption on a
    # shared machine, unlike the wall-clock latencies above
    cpu_p50_ms: float | None = None
    cpu_p90_ms: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


@dataclass(frozen=True, slots=True)
class BenchResult:
    hardware: HardwareProfile
    threads: int
    rounds: int
    rows: tuple[BenchRow, ...]
    machine: str

    def row(self, variant: str, batch_size: int) -> BenchRow:
        for r in self.rows:
            if r.variant == variant and r.batch_size == batch_size:
                return r
        raise InvalidInputError(f"no result for {variant} at batch {batch_size}", fix="see .rows")

    def to_json(self) -> dict[str, Any]:
        return {"hardware": self.hardware.to_json(), "threads": self.threads, "rounds": self.rounds,
                "machine": self.machine, "rows": [r.to_json() for r in self.rows]}  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Candidate:
    info: Any  # ModelVersionInfo
    variant: str
    data: bytes
    run: Callable[[Mapping[str, Any]], Any]
    manifest: Mapping[str, Any]
    loader: str | None  # torch models only


# int8 speed depends on these more than on the clock: without VNNI, ONNX Runtime's int8 matmuls ran at
# about half the speed (an AVX2 EPYC vs an AVX-512 VNNI one), so latencies are comparable only with them
INT8_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8")


def machine(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The CPU a benchmark ran on: model, cores, and the instruction sets int8 inference depends on."""
    cpu = platform.processor() or platform.machine()
    flags: set[str] = set()
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name") and cpu in ("", "x86_64", platform.machine()):
                cpu = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    isa = ", ".join(f for f in INT8_FLAGS if f in flags) or "no AVX2/AVX-512/VNNI/AMX reported"
    return f"{platform.system()} {cpu}, {os.cpu_count()} CPUs ({isa}), python {platform.python_version()}"


def _family(ws: Workspace, spec: str) -> tuple[Any, list[Any]]:
    """(the torch version, its exported children) for a torch or an exported version."""
    models: Any = ws.models
    info = models.show(spec)
    exported = "keel.format" in info.tags and "keel.parent" in info.tags
    root = models.show(info.tags["keel.parent"]) if exported else info
    exports: Any = ws.exports
    return root, exports.children(f"{root.name}@{root.version}")


def _candidates(
    ws: Workspace, spec: str, threads: int, variants: Sequence[str] | None, include_torch: bool
) -> list[_Candidate]:
    from keelml.export.coreml_runtime import coreml_can_predict
    from keelml.export.runtime import load_model

    root, kids = _family(ws, spec)
    out: list[_Candidate] = []
    if include_torch:
        loader = root.tags.get("keel.loader") or DEFAULT_LOADERS[root.tags["keel.task"]]
        data = ws.artifacts.read_bytes(ArtifactRef(root.artifact))
        run = torch_runner(loader, data, threads=threads)
        from keelml.export.flow import load_torch_model

        manifest = torch_manifest(load_torch_model(ws, root).export_source())
        out.append(_Candidate(root, "torch-fp32", data, run, manifest, loader))
    newest = {kid.tags.get("keel.variant", ""): kid for kid in kids}  # kids are oldest first
    for variant, kid in newest.items():
        if variants is not None and variant not in variants:
            continue
        if variant == "coreml" and not coreml_can_predict():  # Core ML runs only on macOS
            continue
        data = ws.artifacts.read_bytes(ArtifactRef(kid.artifact))
        model = load_model(data, threads=threads)
        out.append(_Candidate(kid, variant, data, model.run, model.info.to_json(), None))
    if not out:
        raise InvalidInputError(
            f"nothing to benchmark for {spec}",
            expected="a model version or exported variants",
            received="no candidates (variants filtered out?)",
            fix=f"run `keel export {root.name}@{root.version}` or drop the --variant filter",
        )
    return out


def _peak_memory(candidate: _Candidate, batch: int, seq: int, threads: int) -> float | None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.bin"
        path.write_bytes(candidate.data)
        spec = {"kind": "torch" if candidate.loader else "bundle", "path": str(path),
                "loader": candidate.loader,
                "info": dict(candidate.manifest), "batch": batch, "seq": seq, "threads": threads}  # fmt: skip
        (Path(tmp) / "spec.json").write_text(json.dumps(spec), encoding="utf-8")
        done = subprocess.run(
            [sys.executable, "-m", "keelml.export.memprobe", str(Path(tmp) / "spec.json")],
            capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
    if done.returncode != 0:
        return None
    return float(json.loads(done.stdout.strip().splitlines()[-1])["peak_rss_mb"])


def _cannot_run(c: _Candidate, batch: int, seq: int, exc: Exception) -> InvalidInputError:
    served = c.manifest.get("preprocessing", {}).get("max_length")
    text = c.manifest.get("task") == "text"
    return InvalidInputError(
        f"{c.info.name}@{c.info.version} ({c.variant}) cannot run a batch of {batch}"
        + (f" x {seq} tokens" if text else ""),
        received=f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:200]}",
        fix=f"pass --seq {served} (the length the model serves) or less" if text and served else
        "check --batch against the model",
    )  # fmt: skip


def check_settings(batches: Sequence[int], seq: int, rounds: int) -> None:
    """Refuse benchmark settings that cannot give a result (callers check before expensive work)."""
    if not batches or any(b < 1 for b in batches) or seq < 1 or rounds < 3:
        raise InvalidInputError(
            "invalid benchmark settings",
            expected="batch sizes >= 1, --seq >= 1, rounds >= 3",
            received=f"batches={list(batches)}, seq={seq}, rounds={rounds}",
            fix="pass e.g. --batch 1,8,32 --seq 128 --rounds 20",
        )


def run_bench(
    ws: Workspace,
    spec: str,
    *,
    hardware: str | None = None,
    batches: Sequence[int] = (1, 8, 32),
    seq: int = 128,
    variants: Sequence[str] | None = None,
    include_torch: bool = True,
    rounds: int = 30,
    warmup: int = 3,
    memory: bool = True,
    store: bool = True,
    progress: Progress | None = None,
) -> BenchResult:
    check_settings(batches, seq, rounds)
    progress = progress or NoProgress()
    prof = profile(ws.config.model_extra, hardware)
    threads = prof.cores
    candidates = _candidates(ws, spec, threads, variants, include_torch)
    feeds = {(c.variant, b): make_inputs(c.manifest, b, seq) for c in candidates for b in batches}
    for c in candidates:  # warm-up: first calls allocate and pick kernels
        for b in batches:
            try:
                for _ in range(warmup):
                    c.run(feeds[(c.variant, b)])
            except Exception as exc:  # a shape the model cannot take: name it, not a kernel's message
                raise _cannot_run(c, b, seq, exc) from exc
    times: dict[tuple[str, int], list[float]] = {k: [] for k in feeds}
    cpu: dict[tuple[str, int], list[float]] = {k: [] for k in feeds}
    progress.stage("benchmarking (interleaved)", total=rounds)
    for r in range(rounds):
        order = candidates[r % len(candidates) :] + candidates[: r % len(candidates)]
        for c in order:
            for b in batches:
                start, cpu_start = time.perf_counter(), time.process_time()
                c.run(feeds[(c.variant, b)])
                times[(c.variant, b)].append((time.perf_counter() - start) * 1000.0)
                cpu[(c.variant, b)].append((time.process_time() - cpu_start) * 1000.0)
        progress.advance()
    largest = max(batches)
    progress.stage("peak memory (one process per variant)", total=len(candidates))
    memories: dict[str, float | None] = {}
    for c in candidates:
        memories[c.variant] = _peak_memory(c, largest, seq, threads) if memory else None
        progress.advance()
    rows: list[BenchRow] = []
    task = candidates[0].manifest["task"]
    for c in candidates:
        size = _size(c)
        for b in batches:
            ms = np.asarray(times[(c.variant, b)])
            p50, p90, p95, p99 = (float(np.percentile(ms, q)) for q in (50, 90, 95, 99))
            throughput = b / (float(ms.mean()) / 1000.0)
            cpu_p50, cpu_p90 = (float(np.percentile(cpu[(c.variant, b)], q)) for q in (50, 90))
            rows.append(BenchRow(c.info.name, c.info.version, c.variant, b, seq if task == "text" else None,
                                 p50, p90, p95, p99, throughput, memories[c.variant], size,
                                 prof.cost_per_million(throughput), len(ms), cpu_p50, cpu_p90))  # fmt: skip
    result = BenchResult(prof, threads, rounds, tuple(rows), machine())
    if store:
        for row in rows:
            store_row(ws.catalog, {
                "model": row.model, "model_version": row.version, "hardware": prof.name,
                "batch_size": row.batch_size, "seq_len": row.seq_len, "p50_ms": row.p50_ms,
                "p90_ms": row.p90_ms,
                "p99_ms": row.p99_ms, "throughput": row.throughput, "peak_memory_mb": row.peak_memory_mb,
                "size_bytes": row.size_bytes, "cost_per_million": row.cost_per_million,
                "details": {"variant": row.variant, "p95_ms": row.p95_ms, "threads": threads,
                            "cpu_p50_ms": row.cpu_p50_ms, "cpu_p90_ms": row.cpu_p90_ms,
                            "rounds": rounds,
                            "calls": row.calls, "machine": result.machine},
            })  # fmt: skip
    return result


def _size(c: _Candidate) -> int:
    if c.loader is not None:
        return len(c.data)  # the trained model's artifact (weights + config)
    from keelml.export.bundle import read_bundle

    _, files = read_bundle(c.data)
    return sum(len(v) for k, v in files.items() if k.startswith("model."))
