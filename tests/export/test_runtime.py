from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from keelml import Workspace
from keelml.core.errors import InvalidInputError
from keelml.export import ExportResult
from keelml.export.bundle import BundleInfo, read_bundle, write_bundle
from keelml.export.features import tabular_features
from keelml.export.runtime import OnnxModel
from keelml.train.preprocess import Preprocessor

NO_TORCH = """
import json, sys
from pathlib import Path
from keelml.export.runtime import OnnxModel
model = OnnxModel.from_bytes(Path(sys.argv[1]).read_bytes(), threads=1)
proba = model.predict_proba([{"x": 0.5, "noise": 0.1, "region": "north"}, {"x": -2.0, "noise": None, "region": "zz"}])
heavy = [m for m in ("torch", "transformers", "peft", "mlflow") if m in sys.modules]
print(json.dumps({"shape": list(proba.shape), "heavy": heavy, "classes": list(model.info.classes)}))
"""


def test_serving_runtime_never_imports_torch(
    exported: tuple[Workspace, ExportResult], tmp_path: pytest.TempPathFactory
) -> None:
    ws, _ = exported
    path = tmp_path / "bundle.tar"  # type: ignore[operator]
    path.write_bytes(ws.exports.bundle("loan-clf@3"))
    done = subprocess.run(
        [sys.executable, "-c", NO_TORCH, str(path)], capture_output=True, text=True, check=True
    )
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out == {"shape": [2, 2], "heavy": [], "classes": ["bad", "good"]}


def test_numpy_preprocessing_matches_the_training_preprocessor() -> None:
    frame = pd.DataFrame({
        "n": [1.0, None, 3.5, -2.0, float("nan")], "i": [1, 2, 3, 4, 5],
        "c": ["a", "b", None, "zz", "a"], "flag": [True, False, True, True, False],
    })  # fmt: skip
    pre = Preprocessor.fit(frame.iloc[:4], max_categories=2)
    expected = pre.transform(frame)
    got = tabular_features(pre.to_json(), {k: frame[k].tolist() for k in frame.columns})
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_rows_as_dicts_arrow_or_pandas_agree_and_missing_fields_are_named(
    exported: tuple[Workspace, ExportResult],
) -> None:
    ws, _ = exported
    model = OnnxModel.from_bytes(ws.exports.bundle("loan-clf@2"))
    rows = [{"x": 0.3, "noise": 1.0, "region": "south"}, {"x": 1.3, "noise": -1.0, "region": "north"}]
    a = model.predict_proba(rows)
    np.testing.assert_allclose(model.predict_proba(pa.Table.from_pylist(rows)), a)
    np.testing.assert_allclose(model.predict_proba(pd.DataFrame(rows)), a)
    assert model.predict_proba([]).shape == (0, 2)
    with pytest.raises(InvalidInputError, match="row 1 lacks fields") as info:
        model.predict_proba([rows[0], {"x": 1.0}])
    assert "noise, region" in str(info.value)
    with pytest.raises(InvalidInputError, match="lack fields"):
        model.predict_proba(pa.table({"x": [1.0]}))
    with pytest.raises(InvalidInputError, match="mappings"):
        model.predict_proba([1, 2])


def test_bad_bundles_get_clear_errors(exported: tuple[Workspace, ExportResult]) -> None:
    ws, _ = exported
    with pytest.raises(InvalidInputError, match="not a keel serving bundle"):
        OnnxModel.from_bytes(b"not a tar file at all")
    info, files = read_bundle(ws.exports.bundle("loan-clf@2"))
    raw = info.to_json() | {"format_version": 99}
    with pytest.raises(InvalidInputError, match="unsupported keel bundle version"):
        BundleInfo.from_json(raw)
    assert read_bundle(write_bundle(info, files))[0] == info


def _add_layernorm_graph() -> bytes:
    from onnx import TensorProto, helper, numpy_helper

    shape = [2, 3, 8]
    scale = numpy_helper.from_array(np.linspace(0.5, 1.5, 8).astype(np.float32), "scale")
    bias = numpy_helper.from_array(np.linspace(-0.1, 0.1, 8).astype(np.float32), "bias")
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "skip"], ["sum"]),
         helper.make_node("LayerNormalization", ["sum", "scale", "bias"], ["y"], axis=-1, epsilon=1e-12)],
        "add_ln",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape),
         helper.make_tensor_value_info("skip", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)],
        [scale, bias],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    return bytes(model.SerializeToString())


def test_sessions_keep_residual_add_and_layernorm_unfused(
    tmp_path: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    import onnx
    import onnxruntime as ort

    from keelml.export import runtime

    graph = _add_layernorm_graph()
    seen: dict[str, object] = {}
    real = ort.InferenceSession

    def spy(*args: object, **kwargs: object) -> object:
        seen.update(kwargs)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ort, "InferenceSession", spy)
    sess = runtime.session(graph)
    assert seen["disabled_optimizers"] == ["SkipLayerNormFusion"]
    rng = np.random.default_rng(0)
    feeds = {k: rng.standard_normal((2, 3, 8)).astype(np.float32) for k in ("x", "skip")}
    total = feeds["x"] + feeds["skip"]
    mean, std = total.mean(-1, keepdims=True), total.std(-1, keepdims=True)
    expected = (total - mean) / std * np.linspace(0.5, 1.5, 8) + np.linspace(-0.1, 0.1, 8)
    np.testing.assert_allclose(sess.run(None, feeds)[0], expected, atol=1e-5)
    # ONNX Runtime knows the optimizer by that name: with it off the saved graph keeps Add + LayerNorm,
    # with it on (ONNX Runtime's default) the two become one SkipLayerNormalization
    ops = {}
    for disabled in (list(runtime.DISABLED_OPTIMIZERS), []):
        options = ort.SessionOptions()
        path = tmp_path / f"optimized-{len(disabled)}.onnx"  # type: ignore[operator]
        options.optimized_model_filepath = str(path)
        real(graph, options, providers=["CPUExecutionProvider"], disabled_optimizers=disabled)
        ops[len(disabled)] = {n.op_type for n in onnx.load(str(path)).graph.node}
    assert "SkipLayerNormalization" not in ops[1] and "LayerNormalization" in ops[1]
    assert "SkipLayerNormalization" in ops[0]


def test_spinning_can_be_turned_off_for_serving() -> None:
    """Servers under steady load turn ONNX Runtime's spin-waiting off (it burned ~40 ms of CPU per
    request on 2 cores); benchmarks keep the default."""
    from onnx import TensorProto, helper

    from keelml.export.runtime import session

    node = helper.make_node("Relu", ["x"], ["y"])
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    data = model.SerializeToString()
    key = "session.intra_op.allow_spinning"
    quiet = session(data, threads=2, spinning=False)
    assert quiet.get_session_options().get_session_config_entry(key) == "0"
    busy = session(data, threads=2)
    with pytest.raises(RuntimeError, match="does not have configuration"):  # unset: ORT spins
        busy.get_session_options().get_session_config_entry(key)
    assert quiet.run(None, {"x": np.array([-1.0], np.float32)})[0].tolist() == [0.0]
