from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from keelml import Workspace
from keelml.augment import AugmentConfig, SyntheticLeakError, require_real
from keelml.augment.guard import holdout_mask
from keelml.augment.report_html import write_report
from keelml.augment.utility import utility
from keelml.core.errors import InvalidInputError

from .conftest import mixed_table


def test_evaluation_reports_fidelity_utility_and_privacy(aws: Workspace, tmp_path: Path) -> None:
    result = aws.augment.run("mixed@1", AugmentConfig(target="rare", method="copula", ratio=2.0))
    report = aws.augment.evaluate(result.ref, "mixed@1")
    assert (report.train_rows, report.holdout_rows, report.synthetic_rows) == (240, 60, 60)
    assert report.rare_class == "rare" and report.target_kind == "class"
    assert 0.8 < report.quality.score <= 1.0 and set(report.quality.shapes) == {"x1", "x2", "count", "colour"}
    assert 0.0 <= report.detection.auc <= 1.0 and report.privacy is not None
    assert 0.0 <= report.privacy.membership_auc <= 1.0 and report.privacy.members == 6
    names = [u.trained_on for u in report.utility]
    assert names == ["real", "real, class weights", "augmented"]  # one synthetic class: no synthetic-only run
    assert all(u.test_rows == 60 for u in report.utility)
    assert report.utility[0].train_rows == 240 and report.utility[2].train_rows == 300
    data = json.loads(json.dumps(report.to_json()))
    assert data["fidelity"]["quality"] == report.quality.score
    html = write_report(report, tmp_path / "r.html").read_text()
    assert "Plotly.newPlot" in html and "<script src=" not in html  # plotly.js inlined: works offline
    assert len(html) > 1_000_000


def test_test_rows_are_the_unseen_real_rows(aws: Workspace) -> None:
    table = mixed_table()
    held = holdout_mask(table, label="label", exclude=("id",), fraction=0.2, seed=0)
    again = holdout_mask(
        table.take(np.arange(299, -1, -1)), label="label", exclude=("id",), fraction=0.2, seed=0
    )
    assert held.sum() == 60 and held[::-1].tolist() == again.tolist()  # by content, not storage order
    labels = np.array(table.column("label").to_pylist())
    assert (labels[held] == "rare").sum() == 6  # stratified
    marked = table.append_column("keel_synthetic", [[False] * 290 + [True] * 10])
    assert not holdout_mask(marked, label="label", exclude=("id",), fraction=0.5, seed=1)[290:].any()


def test_synthetic_rows_can_never_be_test_rows() -> None:
    frame = mixed_table().to_pandas()
    frame["keel_synthetic"] = [False] * 299 + [True]
    with pytest.raises(SyntheticLeakError):
        require_real(frame, "the test rows")
    with pytest.raises(SyntheticLeakError):
        utility("real", frame, frame, label="label", rare="rare", spec=None, text="colour")
    require_real(frame.iloc[:299], "the test rows")
    require_real(pd.DataFrame({"x": [1]}), "rows without the marker")


def test_evaluate_refuses_what_it_cannot_evaluate_honestly(
    aws: Workspace, explains: Callable[..., str]
) -> None:
    with pytest.raises(InvalidInputError) as info:
        aws.augment.evaluate("mixed@1")
    explains(info.value, "was not made by keel augment")
    full = aws.augment.run("mixed@1", AugmentConfig(target="rare", method="copula", holdout=0.0, ratio=1.0))
    with pytest.raises(InvalidInputError) as info:
        aws.augment.evaluate(full.ref)
    explains(info.value, "fitted on every real row", "--holdout 0.2")
    held = aws.augment.run("mixed@1", AugmentConfig(target="rare", method="copula", ratio=1.0))
    with pytest.raises(InvalidInputError) as info:
        aws.augment.evaluate(held.ref, "reviews@1")
    explains(info.value, "is not the version", "--real mixed@1")


def test_text_evaluation_uses_tfidf(aws: Workspace) -> None:
    result = aws.augment.run("reviews", AugmentConfig(target="other", method="text-token", ratio=1.0))
    report = aws.augment.evaluate(result.ref)
    assert set(report.quality.shapes) == {"words", "characters"}
    assert report.privacy is not None and report.privacy.exact_copies == 0.0
    assert [u.trained_on for u in report.utility][:3] == ["real", "real, class weights", "augmented"]
