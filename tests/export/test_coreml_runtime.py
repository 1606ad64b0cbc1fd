"""Core ML prediction: a real bundle off macOS, and the macOS path against a stand-in for coremltools.

No Mac runs these tests: on "Darwin" (``platform.system`` patched) ``coremltools`` is a fake module whose
``MLModel`` checks it was given an unpacked ``.mlpackage`` folder, records the arrays it was fed, and
answers with the fp32 ONNX graph's probabilities (or a function of its inputs), so values flow through.
"""

from __future__ import annotations

import gc
import io
import platform
import sys
import tarfile
import tempfile
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from keelml import Workspace
from keelml.core.errors import InvalidInputError, MissingDependencyError
from keelml.export import ExportResult
from keelml.export import flow as export_flow
from keelml.export.bundle import read_bundle, write_bundle
from keelml.export.coreml_runtime import CoreMlModel, coreml_can_predict
from keelml.export.runtime import OnnxModel, load_model
from keelml.export.targets import COREML_MAX_BATCH, PlatformUnavailableError
from tests.train.conftest import loans

Respond = Callable[[dict[str, Any]], Any]


@dataclass
class Record:
    loaded: list[Path] = field(default_factory=list)
    calls: list[dict[str, tuple[str, tuple[int, ...]]]] = field(default_factory=list)


def fake_coremltools(respond: Respond, record: Record) -> types.ModuleType:
    class MLModel:  # the part of coremltools.models.MLModel that keelml uses
        def __init__(self, path: str) -> None:
            package = Path(path)
            assert package.name == "model.mlpackage" and package.is_dir(), path
            assert (package / "Manifest.json").is_file(), sorted(package.rglob("*"))
            record.loaded.append(package)

        def get_spec(self) -> Any:
            outputs = [types.SimpleNamespace(name="var_42"), types.SimpleNamespace(name="logits")]
            return types.SimpleNamespace(description=types.SimpleNamespace(output=outputs))

        def predict(self, data: dict[str, Any]) -> dict[str, Any]:
            record.calls.append({k: (str(v.dtype), tuple(v.shape)) for k, v in data.items()})
            probs = np.asarray(respond(data), dtype=np.float32)  # Core ML answers in float32
            return {"logits": np.full_like(probs, -1.0), "var_42": probs}

    module = types.ModuleType("coremltools")
    module.models = types.SimpleNamespace(MLModel=MLModel)  # type: ignore[attr-defined]
    return module


@pytest.fixture(scope="module")
def coreml_bundle(exported: tuple[Workspace, ExportResult]) -> bytes:
    """A real Core ML bundle, converted here on Linux (not registered)."""
    ws, _ = exported
    result = ws.exports.export("loan-clf@1", variants=("coreml",), register=False)
    return ws.artifacts.read_bytes(result.variants[0].artifact)


@pytest.fixture(scope="module")
def fp32(exported: tuple[Workspace, ExportResult]) -> OnnxModel:
    ws, result = exported
    return OnnxModel.from_bytes(ws.exports.bundle(str(result.variant("fp32").ref)))


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where the runtime's temporary folders go, so a test can see what is left behind."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


@pytest.fixture
def on_macos(monkeypatch: pytest.MonkeyPatch) -> Callable[[Respond], Record]:
    monkeypatch.setattr(platform, "system", lambda: "Darwin")

    def install(respond: Respond) -> Record:
        record = Record()
        monkeypatch.setitem(sys.modules, "coremltools", fake_coremltools(respond, record))
        return record

    return install


def onnx_answers(model: OnnxModel) -> Respond:
    return lambda data: model.run(data)


def test_off_macos_a_real_core_ml_bundle_refuses_to_load_and_names_macos(
    coreml_bundle: bytes, scratch: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(platform, "system", lambda: "Linux")  # coremltools is installed here
    assert read_bundle(coreml_bundle)[0].format == "coreml" and not coreml_can_predict()
    for load in (load_model, CoreMlModel.from_bytes):
        with pytest.raises(PlatformUnavailableError, match="predict only on macOS") as err:
            load(coreml_bundle)
        assert "macOS" in str(err.value.expected) and "Linux" in str(err.value.received)
        assert "Mac" in str(err.value.fix)
    assert list(scratch.iterdir()) == []  # refused before unpacking anything


def test_on_macos_a_core_ml_bundle_predicts_through_mlmodel(
    coreml_bundle: bytes, fp32: OnnxModel, on_macos: Callable[[Respond], Record], scratch: Path
) -> None:
    record = on_macos(onnx_answers(fp32))
    assert coreml_can_predict()
    model = load_model(coreml_bundle)
    assert isinstance(model, CoreMlModel) and model.classes == ("bad", "good")
    folder = model.folder
    assert folder.parent == scratch and record.loaded == [folder / "model.mlpackage"]
    assert model.size_bytes == len(read_bundle(coreml_bundle)[1]["model.mlpackage.tar"])
    rows = loans(COREML_MAX_BATCH + 6, seed=3)
    proba = model.predict_proba(rows)
    assert proba.dtype == np.float64 and proba.shape == (COREML_MAX_BATCH + 6, 2)
    # the first declared output, not another one, with the ONNX graph's values (rounded to float32)
    np.testing.assert_allclose(proba, fp32.predict_proba(rows).astype(np.float32), rtol=0, atol=1e-7)
    (name,) = fp32.info.input_names
    width = fp32.preprocess(rows)[name].shape[1]
    # float features as float32, in chunks the package's batch range accepts
    assert record.calls == [
        {name: ("float32", (COREML_MAX_BATCH, width))},
        {name: ("float32", (6, width))},
    ]
    labels = model.predict(rows)
    assert labels == [model.classes[i] for i in proba.argmax(axis=1)] and set(labels) == {"bad", "good"}
    empty = model.predict_proba(rows.slice(0, 0))
    assert empty.shape == (0, 2) and len(record.calls) == 4  # no call for an empty batch
    del model
    gc.collect()
    assert not folder.exists() and list(scratch.iterdir()) == []


def test_integer_feeds_reach_core_ml_as_int32_and_close_removes_the_package(
    coreml_bundle: bytes, on_macos: Callable[[Respond], Record], scratch: Path
) -> None:
    def counts(data: dict[str, Any]) -> Any:
        return np.stack([data["input_ids"].sum(axis=1), data["attention_mask"].sum(axis=1)], axis=1)

    record = on_macos(counts)
    model = CoreMlModel.from_bytes(coreml_bundle, threads=4)
    ids = np.arange(12, dtype=np.int64).reshape(3, 4)
    out = model.run({"input_ids": ids, "attention_mask": np.ones((3, 4), dtype=np.int64)})
    assert record.calls == [{"input_ids": ("int32", (3, 4)), "attention_mask": ("int32", (3, 4))}]
    assert out.dtype == np.float64 and out.tolist() == [[6.0, 4.0], [22.0, 4.0], [38.0, 4.0]]
    model.run(
        {"features": np.ones((2, 3), dtype=np.float64), "input_ids": ids[:2], "attention_mask": ids[:2]}
    )
    assert record.calls[-1]["features"] == ("float32", (2, 3))
    assert model.folder.exists()
    model.close()
    model.close()  # a second close does nothing
    assert not model.folder.exists() and list(scratch.iterdir()) == []


def _tar(members: list[tarfile.TarInfo]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for member in members:
            tar.addfile(member, io.BytesIO(b"x" * member.size) if member.isfile() else None)
    return buffer.getvalue()


def _file(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = 1
    return info


def _link(name: str, target: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = tarfile.SYMTYPE, target
    return info


@pytest.mark.parametrize(
    "evil",
    [
        lambda root: _file("../evil"),
        lambda root: _file("model.mlpackage/../../evil"),
        lambda root: _file(f"{root}/abs-evil"),
        lambda root: _link("model.mlpackage/evil-link", "../../../evil-target"),
        lambda root: _link("model.mlpackage/evil-abs-link", f"{root}/evil-target"),
    ],
    ids=["dot-dot", "nested-dot-dot", "absolute", "link-out", "absolute-link"],
)
def test_a_package_member_outside_its_folder_is_refused_and_nothing_is_written(
    evil: Callable[[Path], tarfile.TarInfo],
    coreml_bundle: bytes,
    on_macos: Callable[[Respond], Record],
    scratch: Path,
    tmp_path: Path,
) -> None:
    record = on_macos(lambda data: np.zeros((1, 2)))
    info, files = read_bundle(coreml_bundle)
    archive = _tar([_file("model.mlpackage/Manifest.json"), evil(tmp_path)])
    bundle = write_bundle(info, {**files, "model.mlpackage.tar": archive})
    with pytest.raises(InvalidInputError, match="unsafe or damaged") as err:
        load_model(bundle)
    assert "evil" in str(err.value.received) and "re-export" in str(err.value.fix)
    assert record.loaded == []  # never handed to Core ML
    assert list(scratch.iterdir()) == []  # the temporary folder is gone too
    assert [p for p in tmp_path.rglob("*") if "evil" in p.name] == []


def test_a_bundle_without_its_package_folder_is_refused(
    coreml_bundle: bytes, on_macos: Callable[[Respond], Record], scratch: Path
) -> None:
    on_macos(lambda data: np.zeros((1, 2)))
    info, files = read_bundle(coreml_bundle)
    bundle = write_bundle(info, {**files, "model.mlpackage.tar": _tar([_file("other/Manifest.json")])})
    with pytest.raises(InvalidInputError, match="unsafe or damaged") as err:
        load_model(bundle)
    assert "no model.mlpackage/ folder" in str(err.value.received)
    assert list(scratch.iterdir()) == []


def test_on_macos_without_coremltools_the_error_names_the_extra(
    coreml_bundle: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(platform, "system", lambda: "Darwin")
    monkeypatch.setitem(sys.modules, "coremltools", None)  # makes `import coremltools` fail
    assert not coreml_can_predict()
    with pytest.raises(MissingDependencyError, match="coremltools") as err:
        load_model(coreml_bundle)
    assert "keelml[coreml]" in str(err.value.fix)


def test_on_macos_export_measures_core_ml_accuracy_and_serving_and_bench_use_it(
    exported: tuple[Workspace, ExportResult],
    coreml_bundle: bytes,
    fp32: OnnxModel,
    on_macos: Callable[[Respond], Record],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ws, first = exported
    record = on_macos(onnx_answers(fp32))
    package = read_bundle(coreml_bundle)[1]["model.mlpackage.tar"]
    monkeypatch.setattr(export_flow, "coreml_package", lambda source: {"model.mlpackage.tar": package})
    result = ws.exports.export("loan-clf@1", variants=("coreml",), accuracy_budget=0.01)
    (coreml,) = result.variants
    assert coreml.note == "" and record.calls  # measured through MLModel.predict
    reference = first.variant("fp32").metrics["test_accuracy"]
    assert coreml.metrics["test_accuracy"] == pytest.approx(reference, abs=0.01)
    assert coreml.within_budget and coreml.metrics["accuracy_drop"] <= 0.01
    assert ws.models.show(str(coreml.ref)).tags["keel.within_budget"] == "true"
    info, model = ws.exports.serving_model(str(coreml.ref))
    assert isinstance(model, CoreMlModel) and info.version == coreml.ref.version  # type: ignore[union-attr]
    assert len(model.predict(loans(3, seed=9))) == 3
    bench = dict(variants=("coreml",), include_torch=False, memory=False, store=False, rounds=3, batches=(2,))
    rows = ws.exports.bench(str(coreml.ref), **bench).rows
    assert [(r.variant, r.batch_size, r.version) for r in rows] == [("coreml", 2, coreml.ref.version)]  # type: ignore[union-attr]
    monkeypatch.setattr(platform, "system", lambda: "Linux")  # elsewhere the variant is skipped
    with pytest.raises(InvalidInputError, match="nothing to benchmark"):
        ws.exports.bench(str(coreml.ref), **bench)
    with pytest.raises(PlatformUnavailableError, match="only on macOS"):
        ws.exports.serving_model(str(coreml.ref))
