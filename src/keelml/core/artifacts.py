"""A content-addressed artifact store on the local file system.

Objects live at ``objects/ab/cdef...`` named by their SHA-256; writes go to a temporary file and are
renamed into place, so a crash never leaves a half-written object under a valid name.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from keelml.core.errors import NotFoundError
from keelml.core.refs import ArtifactRef

_CHUNK = 1 << 20


class ArtifactStore:
    def __init__(self, root: Path) -> None:
        self.root = root / "objects"

    def _path(self, digest: str) -> Path:
        return self.root / digest[:2] / digest[2:]

    def put_bytes(self, data: bytes) -> ArtifactRef:
        digest = hashlib.sha256(data).hexdigest()
        self._commit(digest, lambda fh: fh.write(data))
        return ArtifactRef(digest)

    def put_file(self, source: Path) -> ArtifactRef:
        sha = hashlib.sha256()
        with source.open("rb") as fh:
            for chunk in iter(lambda: fh.read(_CHUNK), b""):
                sha.update(chunk)
        digest = sha.hexdigest()

        def copy(out: object) -> None:
            with source.open("rb") as fh:
                for chunk in iter(lambda: fh.read(_CHUNK), b""):
                    out.write(chunk)  # type: ignore[attr-defined]

        self._commit(digest, copy)
        return ArtifactRef(digest)

    def _commit(self, digest: str, write: object) -> None:
        final = self._path(digest)
        if final.exists():
            return
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=final.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                write(fh)  # type: ignore[operator]
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, final)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def path(self, ref: ArtifactRef) -> Path:
        path = self._path(ref.digest)
        if not path.is_file():
            raise NotFoundError(
                f"artifact {ref.digest[:12]} is not in the store",
                expected=f"a file at {path}",
                received="no such file",
                fix="it may have been removed by `keel gc`; pin what must survive clean-up",
            )
        return path

    def read_bytes(self, ref: ArtifactRef) -> bytes:
        return self.path(ref).read_bytes()

    def exists(self, ref: ArtifactRef) -> bool:
        return self._path(ref.digest).is_file()

    def delete(self, ref: ArtifactRef) -> None:
        self._path(ref.digest).unlink(missing_ok=True)

    def __iter__(self) -> Iterator[ArtifactRef]:
        if not self.root.is_dir():
            return
        for sub in sorted(self.root.iterdir()):
            for obj in sorted(sub.iterdir()):
                if not obj.name.startswith(".tmp-"):
                    yield ArtifactRef(sub.name + obj.name)
