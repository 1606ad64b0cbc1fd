from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pytest

from keelml import Workspace
from keelml.augment import SYNTHETIC_COLUMN, AugmentConfig, TextTooShortError
from keelml.augment.text_embed import load_neighbours
from keelml.augment.text_tokens import token_augment


def test_token_operations_change_texts_with_corpus_words() -> None:
    corpus = ["alpha beta gamma delta epsilon", "zeta eta theta"]
    texts, sources = token_augment(corpus[:1], 30, rate=0.4, rng=np.random.default_rng(0), corpus=corpus)
    assert len(texts) == 30 and sources == [0] * 30
    vocabulary = set(" ".join(corpus).split())
    assert all(t != corpus[0] and set(t.split()) <= vocabulary for t in texts)
    lengths = {len(t.split()) for t in texts}
    assert {3, 5, 7} <= lengths  # dropout (2 of 5 dropped), swap (same length), insertion (2 added)


def test_text_token_writes_a_version_with_labels_and_other_columns_copied(aws: Workspace) -> None:
    result = aws.augment.run("reviews", AugmentConfig(target="other", method="text-token", ratio=1.0))
    table = aws.datasets.read(result.ref)
    synthetic = table.filter(table.column(SYNTHETIC_COLUMN))
    assert result.synthetic_rows == synthetic.num_rows == 20
    assert set(synthetic.column("score").to_pylist()) == {"other"}
    real = set(table.filter(pa.compute.invert(table.column(SYNTHETIC_COLUMN))).column("review").to_pylist())
    assert not set(synthetic.column("review").to_pylist()) & real


def test_embedding_neighbours_substitute_similar_words(aws: Workspace) -> None:
    neighbours = load_neighbours()
    assert "horrible" in neighbours.of("terrible") and neighbours.of("xqzv") == []
    result = aws.augment.run(
        "reviews", AugmentConfig(target="great", method="text-embedding", ratio=0.5, token_rate=0.2)
    )
    table = aws.datasets.read(result.ref)
    synthetic = table.filter(table.column(SYNTHETIC_COLUMN)).column("review").to_pylist()
    originals = table.column("review").to_pylist()[:40]
    assert len(synthetic) == result.synthetic_rows == 10  # half of the 20 real 'great' rows
    for text in synthetic:  # same length, some words replaced
        closest = min(
            originals, key=lambda o: sum(a != b for a, b in zip(o.split(), text.split(), strict=False))
        )
        assert len(closest.split()) == len(text.split()) and closest != text


def test_text_too_short_is_refused(aws: Workspace, explains: Callable[..., str]) -> None:
    table = pa.table(
        {"id": [1, 2, 3, 4], "note": ["ok", "fine thanks", "a" * 60, "b" * 60], "y": ["a", "a", "b", "b"]}
    )
    aws.datasets.add("notes", table, label="y", id="id")
    with pytest.raises(TextTooShortError) as info:
        aws.augment.run(
            "notes", AugmentConfig(target="a", method="text-token", text="note", holdout=0.0, ratio=1.0)
        )
    explains(info.value, "too short to augment", "at least 3 tokens", "the longest has 2 token(s)")
    with pytest.raises(TextTooShortError):
        aws.augment.run(
            "notes", AugmentConfig(target="b", method="text-embedding", text="note", holdout=0.0, ratio=1.0)
        )
