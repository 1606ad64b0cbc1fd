"""Core ML runtime (macOS only): a bundle's ``model.mlpackage`` predicted by coremltools' ``MLModel``.

Conversion (:func:`keelml.export.targets.coreml_package`) works anywhere; Core ML itself is Apple's, so
:meth:`CoreMlModel.from_bytes` raises :func:`keelml.export.targets.coreml_unavailable` on other systems.
The package is unpacked into a private temporary folder that lives as long as the model.
"""

from __future__ import annotations

import io
import platform
import shutil
import tarfile
import tempfile
import weakref
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import numpy.typing as npt

from keelml.core.errors import InvalidInputError, missing_dependency
from keelml.export.bundle import BundleInfo, read_bundle
from keelml.export.runtime import Preprocess, RowPredictor
from keelml.export.targets import COREML_MAX_BATCH, coreml_unavailable

PACKAGE = "model.mlpackage"


def coreml_can_predict() -> bool:
    """True on macOS with coremltools installed: only there can a Core ML export be run."""
    if platform.system() != "Darwin":
        return False
    try:
        import coremltools  # type: ignore[import-untyped]  # noqa: F401
    except ImportError:
        return False
    return True


class CoreMlModel(RowPredictor):
    """A Core ML bundle loaded by coremltools; same preprocessing and outputs as the ONNX runtime."""

    def __init__(
        self, info: BundleInfo, mlmodel: Any, preprocess: Preprocess, size_bytes: int, folder: Path
    ) -> None:
        self.info = info
        self.mlmodel = mlmodel
        self.preprocess = preprocess
        self.size_bytes = size_bytes
        self.folder = folder  # the unpacked package's temporary folder, removed with the model
        self.output_name = str(mlmodel.get_spec().description.output[0].name)
        self._cleanup = weakref.finalize(self, shutil.rmtree, str(folder), ignore_errors=True)

    @classmethod
    def from_bytes(cls, data: bytes, *, threads: int = 1) -> CoreMlModel:
        """``threads`` is accepted for a common signature; Core ML schedules its own work."""
        if platform.system() != "Darwin":
            raise coreml_unavailable()
        try:
            import coremltools as ct
        except ImportError as exc:
            raise missing_dependency("coremltools", "coreml", "running Core ML exports") from exc
        info, files = read_bundle(data)
        if info.format != "coreml" or info.graph not in files:
            raise InvalidInputError(
                "this bundle holds no Core ML model",
                expected=f"format coreml with {info.graph}",
                received=f"{info.format}: {', '.join(sorted(files))}",
                fix="load it with keelml.export.runtime.load_model, which picks the runtime of its format",
            )  # fmt: skip
        folder = Path(tempfile.mkdtemp(prefix="keel-coreml-"))
        try:
            package = extract_package(files[info.graph], folder)
            mlmodel = ct.models.MLModel(str(package))
            return cls(info, mlmodel, Preprocess(info, files), len(files[info.graph]), folder)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise

    def close(self) -> None:
        """Remove the unpacked package now (otherwise done when the model is garbage-collected)."""
        self._cleanup()

    def run(self, feeds: Mapping[str, npt.NDArray[Any]]) -> npt.NDArray[np.float64]:
        """Probabilities for preprocessed inputs, cast to the int32 / float32 the converter declared."""
        arrays = {name: _declared(np.asarray(value)) for name, value in feeds.items()}
        n = len(next(iter(arrays.values())))
        # the package accepts batches of 1..COREML_MAX_BATCH rows: larger ones go in chunks
        outs = [self._chunk({k: v[s : s + COREML_MAX_BATCH] for k, v in arrays.items()})
                for s in range(0, n, COREML_MAX_BATCH)]  # fmt: skip
        return np.concatenate(outs) if outs else np.zeros((0, len(self.classes)))

    def _chunk(self, inputs: dict[str, npt.NDArray[Any]]) -> npt.NDArray[np.float64]:
        return np.asarray(self.mlmodel.predict(inputs)[self.output_name], dtype=np.float64)


def _declared(array: npt.NDArray[Any]) -> npt.NDArray[Any]:
    return array.astype(np.int32 if array.dtype.kind in "iub" else np.float32, copy=False)


def extract_package(archive: bytes, into: Path) -> Path:
    """Unpack ``model.mlpackage.tar`` into ``into``; a member that would land outside it is refused."""

    def refused(received: str) -> InvalidInputError:
        return InvalidInputError(
            "the Core ML package in this bundle is unsafe or damaged",
            expected=f"a tar of {PACKAGE}/ with relative paths inside it", received=received,
            fix="re-export the model (`keel export MODEL --variant coreml`); load only bundles you made",
        )  # fmt: skip

    try:
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            members = tar.getmembers()
            outside = [m.name for m in members if _escapes(m.name)]
            if outside:
                raise refused(f"members outside the folder: {', '.join(outside[:3])}")
            # the "data" filter also refuses links out of the folder, devices and special files
            tar.extractall(into, filter="data")
    except tarfile.TarError as exc:
        raise refused(f"{type(exc).__name__}: {exc}") from exc
    package = into / PACKAGE
    if not package.is_dir():
        raise refused(f"no {PACKAGE}/ folder: {', '.join(sorted(m.name for m in members)[:5]) or 'empty'}")
    return package


def _escapes(name: str) -> bool:
    path = PurePosixPath(name.replace("\\", "/"))
    return path.is_absolute() or ".." in path.parts
