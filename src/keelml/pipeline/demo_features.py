"""Demo step over the feature store: one feature view on the credit customers, offline and online.

The ISLR Default rows have no time, so the step derives monthly statements from them (balance drifting
around the recorded value, income fixed): a small customer-events dataset with an event time. A view
with a derived feature (balance / income) then builds a point-in-time training set, is materialized
to the embedded SQLite online store, looked up online, and checked for training/serving parity.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from keelml.pipeline.demo import Demo, Step

STATEMENTS = (
    dt.datetime(2024, 1, 31, tzinfo=dt.UTC),
    dt.datetime(2024, 2, 29, tzinfo=dt.UTC),
    dt.datetime(2024, 3, 31, tzinfo=dt.UTC),
)
LABEL_TIME = dt.datetime(2024, 3, 15, tzinfo=dt.UTC)  # between the February and the March statement
NOW = dt.datetime(2024, 4, 1, tzinfo=dt.UTC)


def statements(credit: pa.Table) -> pa.Table:
    """Three month-end statements per customer; the last one's balance is the recorded balance."""
    rng = np.random.default_rng(0)
    n = credit.num_rows
    balance = np.asarray(credit.column("balance").to_numpy(zero_copy_only=False), dtype=np.float64)
    drift = np.stack([rng.uniform(0.8, 1.1, n), rng.uniform(0.9, 1.05, n), np.ones(n)])
    return pa.table(
        {
            "customer_id": pa.concat_arrays([credit.column("customer_id").combine_chunks()] * 3),
            "statement_time": pa.array([t for t in STATEMENTS for _ in range(n)], pa.timestamp("us", "UTC")),
            "balance": pa.array(np.round((drift * balance).ravel(), 2)),
            "income": pa.concat_arrays([pc.cast(credit.column("income"), pa.float64()).combine_chunks()] * 3),
        }
    )


def balance_to_income(batch: pa.Table) -> pa.Array:
    """The same function runs over training batches and over each online request."""
    income = pc.if_else(pc.greater(batch["income"], 0), batch["income"], None)
    return pc.round(pc.divide(batch["balance"], income), 4)


def feature_view(d: Demo) -> None:
    from keelml.features import DerivedFeature, Entity, FeatureRepo, FeatureView

    credit = d.ws.datasets.read("credit@1", columns=["customer_id", "default", "balance", "income"])
    events = d.ws.datasets.add(
        "credit_statements", statements(credit), time="statement_time", source_name="derived:credit@1"
    )
    customer = Entity("customer", keys=("customer_id",))
    view = FeatureView(
        "statements",
        entity=customer,
        source="credit_statements",
        timestamp="statement_time",
        ttl=dt.timedelta(days=45),
        features=("balance", "income"),
    )
    ratio = DerivedFeature("balance_to_income", balance_to_income, inputs=("balance", "income"))
    d.ws.features.use(FeatureRepo(entities=(customer,), views=(view,), derived=(ratio,)))
    applied = d.ws.features.apply()
    d.say(f"{events}: {credit.num_rows:,} customers x {len(STATEMENTS)} statements")
    d.say("applied: " + ", ".join(f"{r.kind} {r.name} ({r.status})" for r in applied.registered))

    features = ["balance", "income", "balance_to_income"]
    labels = credit.select(["customer_id", "default"]).append_column(
        "label_time", pa.array([LABEL_TIME] * credit.num_rows, pa.timestamp("us", "UTC"))
    )
    ref = d.ws.features.create_training_dataset(
        "credit_training", labels, features, timestamp="label_time", label="default"
    )
    train = d.ws.datasets.read(ref)
    first = train.slice(0, 1).to_pylist()[0]
    months = events_of(d, first["customer_id"])
    d.say(
        f"{ref}: {train.num_rows:,} rows; customer {first['customer_id']} labelled {LABEL_TIME:%Y-%m-%d} "
        f"gets balance {first['balance']} (statements {months}: the March one is not seen yet)"
    )

    result = d.ws.features.materialize(now=NOW)
    for v in result.views:
        d.say(f"materialized {v.view}: {v.entities_written:,} entities to the SQLite online store")
    wanted = [{"customer_id": k} for k in credit.column("customer_id").slice(0, 3).to_pylist()]
    online = d.ws.features.get_online_features(wanted, features, now=NOW)
    for key, row in zip(wanted, online.rows, strict=True):
        d.say(
            f"online customer {key['customer_id']}: " + ", ".join(f"{k}={_short(row[k])}" for k in features)
        )
    parity = d.ws.features.check_parity(sample=50 if d.quick else 200, now=NOW)
    verdict = "no mismatch" if parity.ok else f"MISMATCHES {parity.per_feature()}"
    d.say(f"parity offline vs online on {parity.entities} sampled customers: {verdict}")
    d.saved["feature_parity_ok"] = parity.ok


def _short(value: object) -> object:
    return round(value, 4) if isinstance(value, float) else value


def events_of(d: Demo, customer_id: object) -> str:
    table = d.ws.datasets.read("credit_statements")
    mine = table.filter(
        pc.equal(table["customer_id"], pa.scalar(customer_id, table.schema.field("customer_id").type))
    )
    return ", ".join(
        f"{t:%b} {b}"
        for t, b in zip(mine["statement_time"].to_pylist(), mine["balance"].to_pylist(), strict=True)
    )


STEPS = [
    Step(
        "features",
        "8b. a feature view on credit: point-in-time training set, online store, parity",
        feature_view,
    ),
]
