"""What an augmentation run does: method, target, how many rows; frozen and validated on construction.

>>> AugmentConfig(target="yes", method="smote").k_neighbors
5
>>> AugmentConfig(target="yes", method="gan")
Traceback (most recent call last):
...
keelml.core.errors.InvalidInputError: unknown augmentation method 'gan'
  expected: one of smote, borderline-smote, adasyn, smote-nc, copula, text-token, text-embedding
  received: gan
  fix: pass --method smote (numeric), smote-nc (mixed), copula, text-token or text-embedding
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal, get_args

from keelml.core.errors import InvalidInputError

Method = Literal["smote", "borderline-smote", "adasyn", "smote-nc", "copula", "text-token", "text-embedding"]
METHODS: tuple[str, ...] = get_args(Method)
OVERSAMPLERS = ("smote", "borderline-smote", "adasyn", "smote-nc")
TEXT_METHODS = ("text-token", "text-embedding")

# The column that marks synthetic rows in an augmented version; evaluation refuses rows marked True.
SYNTHETIC_COLUMN = "keel_synthetic"


def _check(ok: bool, problem: str, expected: str, received: object, fix: str) -> None:
    if not ok:
        raise InvalidInputError(problem, expected=expected, received=str(received), fix=fix)


@dataclass(frozen=True, slots=True)
class AugmentConfig:
    """``target`` is a label value or a slice (a name from keel.toml ``[slices]`` or a predicate).

    ``ratio``: synthetic rows per real target row; ``None`` balances a class target with the largest
    class and doubles a slice target. ``holdout``: share of real rows kept out of the fit so that
    ``keel augment evaluate`` has unseen real rows (0 fits on everything and disables evaluation).
    """

    target: str
    method: Method = "smote"
    ratio: float | None = None
    k_neighbors: int = 5
    seed: int = 0
    holdout: float = 0.2
    text: str | None = None  # the text column of the text methods (default: the only long string column)
    dp_epsilon: float | None = None  # copula only: a differentially private fit
    token_rate: float = 0.15  # text methods: share of tokens changed per synthetic text

    def __post_init__(self) -> None:
        _check(
            self.method in METHODS,
            f"unknown augmentation method {self.method!r}",
            "one of " + ", ".join(METHODS),
            self.method,
            "pass --method smote (numeric), smote-nc (mixed), copula, text-token or text-embedding",
        )
        _check(
            bool(self.target.strip()), "no augmentation target", "--target CLASS or SLICE", "''", "name one"
        )
        if self.ratio is not None:
            _check(
                0 < self.ratio <= 100,
                "ratio must be above 0 and at most 100",
                "synthetic rows per real target row, e.g. 1.0 doubles the target",
                self.ratio,
                "pass --ratio 1",
            )
        _check(
            1 <= self.k_neighbors <= 100,
            "k_neighbors must be between 1 and 100",
            "an integer in 1..100",
            self.k_neighbors,
            "pass --k-neighbors 5",
        )
        _check(
            0 <= self.holdout < 0.9,
            "holdout must be at least 0 and below 0.9",
            "a share of real rows, e.g. 0.2",
            self.holdout,
            "pass --holdout 0.2",
        )
        _check(
            0 < self.token_rate <= 0.5,
            "token_rate must be above 0 and at most 0.5",
            "a share of tokens, e.g. 0.15",
            self.token_rate,
            "pass --token-rate 0.15",
        )
        if self.dp_epsilon is not None:
            _check(
                self.method == "copula",
                f"--dp-epsilon needs the copula method, not {self.method}",
                "--method copula --dp-epsilon E",
                self.method,
                "use --method copula, or drop --dp-epsilon",
            )
            _check(
                0 < self.dp_epsilon <= 100,
                "dp_epsilon must be above 0 and at most 100",
                "a privacy budget such as 1 or 3",
                self.dp_epsilon,
                "pass --dp-epsilon 3",
            )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
