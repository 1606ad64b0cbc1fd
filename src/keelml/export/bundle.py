"""The serving bundle: one tar artifact with the graph, ``keel-bundle.json`` and preprocessing files.

``keel-bundle.json`` says everything a runtime needs without torch: the task, class names, the raw
input fields and their kinds, the variant, the parent model, the opset and the preprocessing.
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from keelml.core.errors import InvalidInputError

FORMAT_VERSION = 1
MANIFEST = "keel-bundle.json"
VARIANTS = ("fp32", "int8", "int8-static", "int4", "fp16", "openvino", "coreml")
FORMATS = ("onnx", "openvino", "coreml")


@dataclass(frozen=True, slots=True)
class InputField:
    name: str
    kind: str  # text | number | category


@dataclass(frozen=True, slots=True)
class BundleInfo:
    """The manifest of a bundle (``keel-bundle.json``)."""

    task: str
    classes: tuple[str, ...]
    fields: tuple[InputField, ...]
    variant: str
    parent: str | None
    opset: int | None
    input_names: tuple[str, ...]
    preprocessing: Mapping[str, Any] = field(hash=False)
    format: str = "onnx"
    graph: str = "model.onnx"
    exporter: str | None = None
    format_version: int = FORMAT_VERSION

    def to_json(self) -> dict[str, Any]:
        return {
            "format_version": self.format_version,
            "format": self.format,
            "task": self.task,
            "classes": list(self.classes),
            "fields": [{"name": f.name, "kind": f.kind} for f in self.fields],
            "variant": self.variant,
            "parent": self.parent,
            "opset": self.opset,
            "exporter": self.exporter,
            "graph": self.graph,
            "input_names": list(self.input_names),
            "preprocessing": dict(self.preprocessing),
        }

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> BundleInfo:
        version = raw.get("format_version")
        if version != FORMAT_VERSION:
            raise InvalidInputError(
                "unsupported keel bundle version",
                expected=f"format_version {FORMAT_VERSION}",
                received=repr(version),
                fix="re-export the model with this keelml (`keel export MODEL`)",
            )
        return cls(
            task=str(raw["task"]),
            classes=tuple(str(c) for c in raw["classes"]),
            fields=tuple(InputField(str(f["name"]), str(f["kind"])) for f in raw["fields"]),
            variant=str(raw["variant"]),
            parent=raw.get("parent"),
            opset=raw.get("opset"),
            input_names=tuple(str(n) for n in raw["input_names"]),
            preprocessing=dict(raw["preprocessing"]),
            format=str(raw.get("format", "onnx")),
            graph=str(raw.get("graph", "model.onnx")),
            exporter=raw.get("exporter"),
        )


def write_bundle(info: BundleInfo, files: Mapping[str, bytes]) -> bytes:
    """Tar bytes (deterministic: sorted names, mtime 0) with the manifest and ``files``."""
    members = {MANIFEST: json.dumps(info.to_json(), indent=2, sort_keys=True).encode("utf-8"), **files}
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name in sorted(members):
            data = members[name]
            entry = tarfile.TarInfo(name)
            entry.size = len(data)
            entry.mtime = 0
            tar.addfile(entry, io.BytesIO(data))
    return buffer.getvalue()


def read_bundle(data: bytes) -> tuple[BundleInfo, dict[str, bytes]]:
    """(manifest, the other files by name) of bundle bytes; a clear error for anything else."""
    try:
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            files: dict[str, bytes] = {}
            for member in tar.getmembers():
                if member.isfile():
                    handle = tar.extractfile(member)
                    files[member.name] = handle.read() if handle is not None else b""
    except tarfile.TarError as exc:
        raise InvalidInputError(
            "not a keel serving bundle",
            expected=f"a tar archive with {MANIFEST}",
            received=f"{len(data)} bytes that are not a tar archive ({exc})",
            fix="pass the artifact of an exported version (`keel export MODEL`)",
        ) from exc
    if MANIFEST not in files:
        raise InvalidInputError(
            "not a keel serving bundle",
            expected=f"a tar archive with {MANIFEST}",
            received=", ".join(sorted(files)) or "an empty archive",
            fix="pass the artifact of an exported version (`keel export MODEL`)",
        )
    info = BundleInfo.from_json(json.loads(files.pop(MANIFEST)))
    return info, files
