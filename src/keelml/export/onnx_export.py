"""torch -> ONNX: the dynamo exporter first, the legacy TorchScript exporter as the fallback.

Batch (and sequence) axes stay dynamic; the exported graph is checked against the torch module on
inputs of a different batch size, and of a different sequence length, than the example, so a shape
baked in by tracing is caught.
"""

from __future__ import annotations

import io
import re
import tempfile
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from keelml.core.errors import InvalidInputError, KeelError, missing_dependency
from keelml.export.protocol import ExportSourceLike

OUTPUT = "probabilities"
LEGACY_OPSET = 17
_OP = re.compile(r"(aten(?:::|\.)[A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)?)")


class UnsupportedModelError(KeelError, ValueError):
    """Neither exporter could convert the model; ``ops`` names the operators that failed."""

    exit_code = 4

    def __init__(self, problem: str, ops: tuple[str, ...], **kw: str) -> None:
        super().__init__(problem, **kw)
        self.ops = ops


class ParityError(KeelError, ValueError):
    """The exported graph does not reproduce the torch model's outputs within tolerance."""

    exit_code = 4


@dataclass(frozen=True, slots=True)
class OnnxGraph:
    graph: bytes
    exporter: str  # "dynamo" or "legacy"
    opset: int
    max_abs_diff: float
    fallback_reason: str | None  # why the dynamo exporter was not used, if it was not


def _ops_in(text: str) -> tuple[str, ...]:
    found = (m.replace(".", "::", 1).removesuffix(".default") for m in _OP.findall(text))
    return tuple(dict.fromkeys(found))


def _summary(message: str) -> str:
    """The informative line of an exporter error (the dynamo exporter puts it under a heading)."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", message)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if "## Exception summary" in lines:
        after = lines[lines.index("## Exception summary") + 1 :]
        if after:
            return after[0][:300]
    return lines[0][:300] if lines else ""


def _fixed_arity(module: Any, n: int) -> Any:
    """``module`` behind a forward with ``n`` named parameters (torch.export cannot map ``*args``)."""
    from torch import nn

    if n not in (1, 2, 3):
        raise InvalidInputError(
            "export supports models with one to three inputs", received=str(n), fix="wrap the model"
        )

    class Fixed(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = module

    def one(self: Any, a: Any) -> Any:
        return self.inner(a)

    def two(self: Any, a: Any, b: Any) -> Any:
        return self.inner(a, b)

    def three(self: Any, a: Any, b: Any, c: Any) -> Any:
        return self.inner(a, b, c)

    Fixed.forward = (one, two, three)[n - 1]
    return Fixed().eval()


def _dynamo(module: Any, source: ExportSourceLike) -> bytes:
    import torch

    module = _fixed_arity(module, len(source.input_names))

    axes = {name: dict(source.dynamic_axes.get(name, {})) for name in source.input_names}
    axes[OUTPUT] = {0: "batch"}
    with warnings.catch_warnings(), tempfile.TemporaryDirectory() as tmp:
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            module, tuple(source.example_inputs), dynamo=True, input_names=list(source.input_names),
            output_names=[OUTPUT], dynamic_axes=axes, report=False, verbose=False,
        )  # fmt: skip
        if program is None:
            raise RuntimeError("the dynamo exporter returned no program")
        path = Path(tmp) / "model.onnx"
        program.save(str(path), external_data=False)
        return path.read_bytes()


def _legacy(module: Any, source: ExportSourceLike) -> bytes:
    import torch

    axes = {name: dict(source.dynamic_axes.get(name, {})) for name in source.input_names}
    axes[OUTPUT] = {0: "batch"}
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        target: Any = buffer  # the legacy exporter writes to file objects too
        torch.onnx.export(
            module, tuple(source.example_inputs), target, dynamo=False, input_names=list(source.input_names),
            output_names=[OUTPUT], dynamic_axes=axes, opset_version=LEGACY_OPSET,
        )  # fmt: skip
    return buffer.getvalue()


def strip_metadata(graph: bytes) -> bytes:
    """Drop per-node debug metadata (the dynamo exporter stores source locations: ~0.7 MB on MiniLM)."""
    import onnx

    model = onnx.load_model_from_string(graph)
    for node in model.graph.node:
        del node.metadata_props[:]
        node.doc_string = ""
    out: bytes = model.SerializeToString()
    return out


def _opset(graph: bytes) -> int:
    import onnx

    model = onnx.load_model_from_string(graph)
    return next(int(o.version) for o in model.opset_import if o.domain in ("", "ai.onnx"))


def parity_inputs(source: ExportSourceLike) -> tuple[Any, ...]:
    """The example inputs repeated to a different batch size (3x), to exercise the dynamic batch axis."""
    import torch

    return tuple(torch.cat([x, x, x], dim=0) for x in source.example_inputs)


def sequence_axes(source: ExportSourceLike) -> dict[str, int]:
    """Input name -> its dynamic axis after the batch one (a text model's sequence axis)."""
    found = {name: [a for a in source.dynamic_axes.get(name, {}) if a != 0] for name in source.input_names}
    return {name: axes[0] for name, axes in found.items() if axes}


def other_length_inputs(source: ExportSourceLike) -> tuple[tuple[Any, ...], int, int] | None:
    """(inputs, length, example's length) at another sequence length; None for models without one."""
    axes = sequence_axes(source)
    if not axes:
        return None
    inputs = tuple(
        _at_other_length(x, axes[n]) if n in axes else x
        for n, x in zip(source.input_names, source.example_inputs, strict=True)
    )
    name, axis = next(iter(axes.items()))
    index = source.input_names.index(name)
    return inputs, int(inputs[index].shape[axis]), int(source.example_inputs[index].shape[axis])


def _at_other_length(x: Any, axis: int) -> Any:
    """``x`` cut to half its length along ``axis`` (a prefix keeps the tokens valid), or doubled from one."""
    import torch

    length = int(x.shape[axis])
    return x.narrow(axis, 0, length // 2) if length > 1 else torch.cat([x, x], dim=axis)


def check_parity(graph: bytes, source: ExportSourceLike, *, atol: float = 1e-4) -> float:
    """Max absolute difference of probabilities between the graph and the torch module.

    Compared at 3x the example batch and, for models with a sequence axis, at another sequence length.
    """
    from keelml.export.runtime import session

    run = session(graph)
    batch = _compare(run, source, parity_inputs(source), atol, "a batch 3x the example's", "batch axis")
    other = other_length_inputs(source)
    if other is None:
        return batch
    inputs, length, example = other
    what = f"sequence length {length} (the example's is {example})"
    return max(batch, _compare(run, source, inputs, atol, what, "sequence axis"))


def _compare(
    run: Any, source: ExportSourceLike, inputs: tuple[Any, ...], atol: float, what: str, axis: str
) -> float:
    import torch

    with torch.no_grad():
        expected = source.module(*inputs).double().numpy()
    feeds = {n: x.numpy() for n, x in zip(source.input_names, inputs, strict=True)}
    try:
        got = np.asarray(run.run([OUTPUT], feeds)[0], dtype=np.float64)
    except Exception as exc:  # ONNX Runtime's errors have no common base but Exception
        raise ParityError(
            f"the exported graph refuses inputs of {what}",
            expected=f"a graph whose {axis} is dynamic", received=" ".join(str(exc).split())[:300],
            fix=f"export with a dynamic {axis}; report the model to the keelml maintainers",
        ) from exc  # fmt: skip
    if got.shape != expected.shape:
        raise ParityError(
            f"the exported graph gives outputs of another shape than the torch model at {what}",
            expected=str(expected.shape), received=str(got.shape),
            fix=f"check that the {axis} is dynamic; report the model to the keelml maintainers",
        )  # fmt: skip
    diff = float(np.max(np.abs(got - expected))) if got.size else 0.0
    if diff > atol:
        raise ParityError(
            f"the exported graph does not match the torch model at {what}",
            expected=f"max |difference| of probabilities <= {atol:g}",
            received=f"{diff:.3g}",
            fix="export with the other exporter (exporter='legacy'), or report the model",
        )
    return diff


def to_onnx(source: ExportSourceLike, *, exporter: str = "auto", atol: float = 1e-4) -> OnnxGraph:
    """Export ``source.module``; ``exporter`` is auto (dynamo, then legacy), dynamo or legacy."""
    if exporter not in ("auto", "dynamo", "legacy"):
        raise InvalidInputError(
            "unknown exporter", expected="auto, dynamo or legacy", received=exporter, fix="pass one of those"
        )
    try:
        import onnx  # noqa: F401
        import torch  # noqa: F401
    except ImportError as exc:
        raise missing_dependency(exc.name or "onnx", "export", "ONNX export") from exc
    module = source.module.eval()
    failures: dict[str, str] = {}
    order = ["dynamo", "legacy"] if exporter == "auto" else [exporter]
    mismatch: ParityError | None = None
    for name in order:
        try:
            graph = strip_metadata((_dynamo if name == "dynamo" else _legacy)(module, source))
        except Exception as exc:  # any exporter failure: record it, try the next exporter
            failures[name] = f"{type(exc).__name__}: {exc}"
            continue
        try:
            diff = check_parity(graph, source, atol=atol)
        except ParityError as exc:  # a graph that computes something else is a failed export too
            failures[name] = f"ParityError: {exc}"
            mismatch = mismatch or exc
            continue
        reason = _summary(failures["dynamo"]) if "dynamo" in failures else None
        return OnnxGraph(graph, name, _opset(graph), diff, reason)
    if mismatch is not None:  # some exporter made a graph, and none reproduced the model
        raise mismatch
    ops = _ops_in("\n".join(failures.values()))
    tried = " then ".join(order)
    firsts = "; ".join(f"{k}: {_summary(v)}" for k, v in failures.items())
    raise UnsupportedModelError(
        f"the model cannot be exported to ONNX: unsupported operator {', '.join(ops) or '(not named)'}",
        ops,
        expected="a model whose operators ONNX supports",
        received=f"tried {tried}: {firsts}",
        fix="replace the operator in the model, or register a custom ONNX symbolic for it",
    )


def validate_axes(axes: Mapping[str, Mapping[int, str]], names: tuple[str, ...]) -> None:
    unknown = sorted(set(axes) - set(names))
    if unknown:
        raise InvalidInputError(
            "dynamic axes name inputs the model does not have",
            expected=", ".join(names),
            received=", ".join(unknown),
            fix="name dynamic axes by input name",
        )
