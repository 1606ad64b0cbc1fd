from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from keelml.cli.main import run


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def keel(capsys: pytest.CaptureFixture[str]) -> Callable[..., Result]:
    """Run `keel ARGS...` in-process; returns exit code, stdout and stderr."""

    def call(*args: str | Path) -> Result:
        capsys.readouterr()
        code = run([str(a) for a in args])
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return call


@pytest.fixture
def wsdir(tmp_path: Path, keel: Callable[..., Result]) -> Path:
    root = tmp_path / "ws"
    assert keel("init", root).code == 0
    return root


@pytest.fixture
def csvs(tmp_path: Path) -> dict[str, Path]:
    files = {
        "base": "id,x,cat,label\n1,0.5,a,yes\n2,1.5,b,no\n3,2.5,a,yes\n",
        "more": "id,x,cat,label\n4,3.5,c,no\n5,4.5,a,yes\n",
        "conflict": "id,x,other\n6,1.0,z\n",
        "dupes": "id,x,cat,label\n1,9.9,a,no\n",
        "empty": "",
        "header_only": "id,x,cat,label\n",
    }
    out = {}
    for name, text in files.items():
        path = tmp_path / f"{name}.csv"
        path.write_text(text)
        out[name] = path
    return out
