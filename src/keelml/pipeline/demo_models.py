"""Demo steps over models: targeted augmentation of the rare class, LoRA fine-tuning with tracking,
a differentially private variant, export and quantization, compression, benchmarks with cost, and
promotion through the gates of keel.toml."""

from __future__ import annotations

from keelml.pipeline.demo import Demo, Step

# Appended once to the demo workspace's keel.toml: the gates, budgets, monitor and alert rules the
# later steps use. Each section is what a team would write for its own project.
DEMO_CONFIG = """
# --- added by `keel demo` ---
[gates]
min_metric = { test_accuracy = 0.6 }
max_latency_ms = 250

[privacy.budget]
credit = { epsilon = 10.0, delta = 1e-5 }

[monitor.credit-default]
reference = "credit@1"
features = ["student", "balance", "income"]
categorical = ["student"]
target = "default"
prediction = "label"
sensitive = "student"
positive_class = "Yes"
window = "1h"
min_rows = 50
bootstrap = 200

[[monitor.credit-default.alerts]]
name = "feature-drift"
metric = "data_drift.alarm:*"
condition = "== 1"
severity = "warning"
cooldown = "1h"
channels = ["log"]
"""
MARKER = "# --- added by `keel demo` ---"


def configure(d: Demo) -> None:
    path = d.ws.root / "keel.toml"
    text = path.read_text(encoding="utf-8")
    if MARKER not in text:
        path.write_text(text + DEMO_CONFIG, encoding="utf-8")
    d.reopen()
    d.say("keel.toml: promotion gates, a privacy budget for credit, a monitor with an alert rule")


def augment(d: Demo) -> None:
    from keelml.augment.config import AugmentConfig

    result = d.ws.augment.run("credit@1", AugmentConfig(target="Yes", method="smote-nc", ratio=1.0))
    d.saved["credit_augmented"] = str(result.ref)
    d.say(f"{result.ref}: +{result.synthetic_rows} synthetic 'Yes' rows (SMOTE-NC), marked in keel_synthetic")
    d.say(f"lineage: dataset:credit@1 -> {result.ref.node_id}; evaluation splits take real rows only")


def text_model(d: Demo) -> None:
    from keelml.pipeline.training import train_and_register
    from keelml.train.config import TextConfig

    config = TextConfig(
        text="review", peft="lora", epochs=1 if d.quick else 2, max_length=64 if d.quick else 96,
        learning_rate=2e-3,
    )  # fmt: skip
    run = train_and_register(d.ws, "reviews@1", name="reviews-clf", config=config)
    metrics = run.trained.metrics()
    result = run.trained.result
    share = getattr(result, "trainable_parameters", 0) / max(getattr(result, "total_parameters", 1), 1)
    d.say(
        f"LoRA on MiniLM: {share:.2%} of the parameters trained; test accuracy "
        f"{metrics['test_accuracy']:.3f} (MLflow run {run.run_id[:8]})"
    )
    d.saved["text_max_length"] = config.max_length
    if run.registered is not None:
        d.saved["text_model"] = str(run.registered.ref)
        d.say(f"registered {run.registered.ref} with its adapter and head")


def dp_model(d: Demo) -> None:
    from keelml.pipeline.training import train_tabular
    from keelml.train.config import TabularConfig

    config = TabularConfig(
        features=("student", "balance", "income"), epochs=5 if d.quick else 15, dp_epsilon=3.0, dp_delta=1e-5
    )
    run = train_tabular(d.ws, "credit@1", name="credit-default-dp", config=config)
    metrics = run.trained.metrics()
    d.say(f"DP-SGD at epsilon 3, delta 1e-5: test accuracy {metrics['test_accuracy']:.3f}")
    status = d.ws.privacy.remaining("credit")
    left = status.remaining_epsilon
    budget = (
        "no budget"
        if status.budget is None or left is None
        else f"{left:.2f} of {status.budget.epsilon:g} left"
    )
    d.say(
        f"privacy ledger for credit: {status.entries} private run(s), epsilon spent "
        f"{status.spent_epsilon:.2f} ({status.composition} composition), {budget}"
    )


def export(d: Demo) -> None:
    for key, spec in (("text", d.saved["text_model"]), ("credit", "credit-default@1")):
        result = d.ws.exports.export(spec, variants=("fp32", "int8"))
        d.say(
            f"{spec}: exported with the {result.exporter} exporter, parity max |diff| "
            f"{result.parity_max_abs_diff:.1e} vs torch"
        )
        for v in result.variants:
            d.say(
                f"  {v.variant:<5} -> {v.ref}: {v.size_bytes / 1e6:.2f} MB, test accuracy "
                f"{v.metrics.get('test_accuracy', float('nan')):.3f} (drop {v.accuracy_drop:+.3f}"
                f"{'' if v.within_budget else ', over budget: never served'})"
            )
        int8 = result.variant("int8")
        if int8.within_budget and int8.ref is not None:
            d.saved[f"{key}_served"] = str(int8.ref)
        else:
            d.saved[f"{key}_served"] = str(result.variant("fp32").ref)


def compress(d: Demo) -> None:
    report = d.ws.root / "reports" / "compress-reviews.html"
    result = d.ws.compress.run(
        d.saved["text_model"], accuracy_budget=0.02, methods=("quantize", "distill"), report=report,
        rounds=10, seq=d.saved.get("text_max_length", 128),  # the length the model serves
    )  # fmt: skip
    for c in result.candidates:
        latency = "-" if c.p50_ms is None else f"{c.p50_ms:.1f} ms"
        d.say(f"{c.label:<24} accuracy {c.accuracy:.3f} (drop {c.accuracy_drop:+.3f}), p50 {latency}")
    d.say(f"winner within budget: {result.winner.label if result.winner else 'none'}")
    d.say(f"Pareto plot: {report.relative_to(d.ws.root)}")


def bench(d: Demo) -> None:
    for spec, seq in ((d.saved["text_model"], 64 if d.quick else 128), ("credit-default@1", None)):
        result = d.ws.exports.bench(
            spec, batches=(1, 8) if d.quick else (1, 8, 32), seq=seq or 1, rounds=8 if d.quick else 20
        )
        d.say(
            f"{spec} on hardware profile {result.hardware.name}: {result.threads} threads, "
            f"{result.rounds} rounds, variants interleaved"
        )
        torch_rows = {r.batch_size: r for r in result.rows if r.variant == "torch-fp32"}
        for r in result.rows:
            base = torch_rows.get(r.batch_size)
            speedup = f", {base.p50_ms / r.p50_ms:.1f}x vs torch" if base and r is not base else ""
            d.say(
                f"  {r.variant:<10} batch {r.batch_size:>2}: p50 {r.p50_ms:.2f} ms, p99 {r.p99_ms:.2f} ms, "
                f"{r.throughput:,.0f}/s, {r.size_bytes / 1e6:.2f} MB, "
                f"${r.cost_per_million:.3f} per 1M{speedup}"
            )
        if spec == d.saved["text_model"]:
            d.saved["bench"] = [r.to_json() for r in result.rows]


def promote(d: Demo) -> None:
    for key in ("text", "credit"):
        spec = d.saved[f"{key}_served"]
        promotion = d.ws.models.promote(spec, "production")
        gates = ", ".join(f"{g.name}: {g.status}" for g in promotion.gates)
        d.say(f"{spec} ({key} model, its int8 ONNX export) -> production ({gates})")


STEPS = [
    Step("configure", "9. configure gates, a privacy budget and a monitor in keel.toml", configure),
    Step("augment", "10. targeted augmentation of the rare class (SMOTE-NC on credit 'Yes')", augment),
    Step("text-model", "11. LoRA fine-tune of MiniLM on the reviews, tracked in MLflow", text_model),
    Step("dp-model", "12. a differentially private variant of the credit model (epsilon 3)", dp_model),
    Step("export", "13. export to ONNX and quantize to int8 (accuracy checked per variant)", export),
    Step("bench", "14. benchmark latency, throughput, size and cost per 1M predictions", bench),
    Step("promote", "15. promote through the gates of keel.toml", promote),
]
FULL_ONLY = [
    Step("compress", "13b. compress: quantize and distil + quantize, Pareto table", compress),
]
