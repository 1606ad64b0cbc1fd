"""Denormal flushing around ONNX Runtime calls: on inside the call, the caller's state untouched outside."""

from __future__ import annotations

import platform
import sys
import threading

import numpy as np
import pytest
from onnx import TensorProto, helper

from keelml.export import denormals
from keelml.export.runtime import FlushingSession, session

TINY = np.float32(1e-39)  # a denormal float32 (the smallest normal one is 1.18e-38)


def _denormal_survives() -> bool:
    """True when this thread keeps denormals (FTZ and DAZ off)."""
    return bool(TINY * np.float32(1.0) > 0)


def _multiply() -> bytes:
    x, y = (helper.make_tensor_value_info(n, TensorProto.FLOAT, [1]) for n in "xy")
    out = helper.make_tensor_value_info("z", TensorProto.FLOAT, [1])
    graph = helper.make_graph([helper.make_node("Mul", ["x", "y"], ["z"])], "mul", [x, y], [out])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


FEEDS = {"x": np.array([TINY], np.float32), "y": np.array([1.0], np.float32)}


def test_supported_on_x86_64_linux() -> None:
    # CI runs on x86-64 Linux: there the flush must really work, not silently do nothing
    if platform.machine() == "x86_64" and sys.platform.startswith("linux"):
        assert denormals.SUPPORTED


@pytest.mark.skipif(not denormals.SUPPORTED, reason="MXCSR is x86-64 only")
def test_flushed_is_scoped_to_the_block() -> None:
    assert _denormal_survives()
    with denormals.flushed():
        assert not _denormal_survives()
    assert _denormal_survives()


@pytest.mark.skipif(not denormals.SUPPORTED, reason="MXCSR is x86-64 only")
def test_flushed_restores_after_an_error() -> None:
    with pytest.raises(RuntimeError), denormals.flushed():
        raise RuntimeError("boom")
    assert _denormal_survives()


@pytest.mark.skipif(not denormals.SUPPORTED, reason="MXCSR is x86-64 only")
def test_preserved_undoes_what_the_block_set() -> None:
    with denormals.preserved():
        denormals._FUNCTIONS[0](denormals.FTZ_DAZ)  # type: ignore[index]
        assert not _denormal_survives()
    assert _denormal_survives()


@pytest.mark.skipif(not denormals.SUPPORTED, reason="MXCSR is x86-64 only")
@pytest.mark.parametrize("threads", [1, 2])
def test_session_flushes_inside_run_only(threads: int) -> None:
    flushing = session(_multiply(), threads=threads)
    assert isinstance(flushing, FlushingSession)
    assert flushing.run(None, FEEDS)[0][0] == 0.0  # the denormal input read as zero
    assert _denormal_survives()  # neither creating nor running the session changed this thread
    plain = session(_multiply(), threads=threads, flush_denormals=False)
    assert not isinstance(plain, FlushingSession)
    assert plain.run(None, FEEDS)[0][0] == TINY


@pytest.mark.skipif(not denormals.SUPPORTED, reason="MXCSR is x86-64 only")
def test_session_flushes_in_any_calling_thread() -> None:
    flushing = session(_multiply())
    out: list[float] = []
    worker = threading.Thread(target=lambda: out.append(float(flushing.run(None, FEEDS)[0][0])))
    worker.start()
    worker.join()
    assert out == [0.0]


def test_flushing_session_delegates_the_session_api() -> None:
    flushing = session(_multiply())
    assert [i.name for i in flushing.get_inputs()] == ["x", "y"]
    assert flushing.get_outputs()[0].name == "z"
    with pytest.raises(AttributeError):
        _ = flushing.no_such_method
