"""Text augmentation from the corpus itself: token dropout, swap and insertion (no download).

Each synthetic text comes from one real target text by one operation, chosen at random, applied to
about ``rate`` of its whitespace tokens: drop tokens, swap pairs of tokens, or insert words drawn
from the corpus vocabulary in proportion to their frequency.

>>> import numpy as np
>>> texts, sources = token_augment(["the soup was cold and bland"], 3, rate=0.2, rng=np.random.default_rng(0),
...                                corpus=["the soup was cold and bland", "great bread"])
>>> len(texts), sources
(3, [0, 0, 0])
>>> all(t != "the soup was cold and bland" for t in texts)
True
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

import numpy as np

from keelml.core.errors import InvalidInputError

MIN_TOKENS = 3  # shorter texts lose their meaning when a token is dropped or moved
OPERATIONS = ("dropout", "swap", "insert")
_TRIES = 5


class TextTooShortError(InvalidInputError):
    """No target text has enough tokens (or known words) to augment."""


def tokens(text: str | None) -> list[str]:
    return [] if text is None else text.split()


def eligible_rows(texts: Sequence[str | None], *, needed: int = MIN_TOKENS, what: str) -> list[int]:
    rows = [i for i, t in enumerate(texts) if len(tokens(t)) >= needed]
    if not rows:
        longest = max((len(tokens(t)) for t in texts), default=0)
        raise TextTooShortError(
            f"every target text of {what} is too short to augment: each needs at least {needed} tokens",
            expected=f"texts of >= {needed} whitespace-separated tokens",
            received=f"{len(texts)} text(s), the longest has {longest} token(s)",
            fix="target a class or slice with longer texts (e.g. word_count(text) >= 3), or use "
            "a tabular method",
        )
    return rows


def vocabulary(corpus: Sequence[str | None]) -> tuple[list[str], np.ndarray]:
    """Words of the corpus (tokens with a letter) and their frequencies, for insertion."""
    counts = Counter(t for text in corpus for t in tokens(text) if any(ch.isalpha() for ch in t))
    words = sorted(counts)
    freq = np.array([counts[w] for w in words], dtype=np.float64)
    return words, freq / max(freq.sum(), 1.0)


def _change(
    words: list[str], rng: np.random.Generator, rate: float, vocab: tuple[list[str], np.ndarray]
) -> list[str]:
    out = list(words)
    n = max(1, round(rate * len(out)))
    operation = OPERATIONS[int(rng.integers(len(OPERATIONS)))]
    if operation == "dropout":
        keep = np.ones(len(out), dtype=bool)
        keep[rng.choice(len(out), size=min(n, len(out) - 1), replace=False)] = False
        return [w for w, k in zip(out, keep, strict=True) if k]
    if operation == "swap":
        for _ in range(n):
            i, j = rng.choice(len(out), size=2, replace=False)
            out[i], out[j] = out[j], out[i]
        return out
    pool, p = vocab
    if not pool:
        return out
    for _ in range(n):
        out.insert(int(rng.integers(len(out) + 1)), pool[int(rng.choice(len(pool), p=p))])
    return out


def generate(
    texts: Sequence[str | None],
    n_new: int,
    rng: np.random.Generator,
    change: Callable[[list[str], np.random.Generator], list[str] | None],
    *,
    eligible: list[int],
) -> tuple[list[str], list[int]]:
    """``n_new`` changed texts, taking the eligible sources in turn (shuffled); the source of each."""
    order = rng.permutation(eligible)
    out: list[str] = []
    sources: list[int] = []
    attempts = 0
    while len(out) < n_new and attempts < n_new * _TRIES + len(eligible):
        source = int(order[attempts % len(order)])
        attempts += 1
        words = tokens(texts[source])
        changed = change(words, rng)
        if changed is None or changed == words:
            continue  # a copy is no augmentation: try the next source
        out.append(" ".join(changed))
        sources.append(source)
    return out, sources


def token_augment(
    texts: Sequence[str | None],
    n_new: int,
    *,
    rate: float,
    rng: np.random.Generator,
    corpus: Sequence[str | None],
    what: str = "the target",
) -> tuple[list[str], list[int]]:
    eligible = eligible_rows(texts, what=what)
    vocab = vocabulary(corpus)
    return generate(texts, n_new, rng, lambda w, r: _change(w, r, rate, vocab), eligible=eligible)
