from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.serve.fakes import FakeModel, FakeSource, fake_app


@pytest.fixture
def source() -> FakeSource:
    return FakeSource({1: FakeModel(weight=1.0), 2: FakeModel(weight=-1.0)})


@pytest.fixture
def client(tmp_path: Path, source: FakeSource) -> Iterator[TestClient]:
    with TestClient(fake_app(tmp_path, source)) as c:
        yield c
