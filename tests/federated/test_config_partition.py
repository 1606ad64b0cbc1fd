from __future__ import annotations

import numpy as np
import pytest

from keelml.core.errors import ConfigError, EmptySourceError, InvalidInputError
from keelml.federated.config import FederatedConfig, Partition
from keelml.federated.partition import partition_rows


def test_partition_specs_parse_and_bad_ones_explain(explains) -> None:  # type: ignore[no-untyped-def]
    assert Partition.parse("iid") == Partition("iid")
    assert Partition.parse("dirichlet:0.3") == Partition("dirichlet", alpha=0.3)
    assert Partition.parse("by:region") == Partition("by", column="region")
    for bad in ("dirichlet:0", "dirichlet:x", "by:", "shards", "iid:2"):
        with pytest.raises(InvalidInputError) as info:
            Partition.parse(bad)
        explains(info.value, bad, "dirichlet:ALPHA")


@pytest.mark.parametrize(
    ("values", "needle"),
    [
        ({"robust": "median", "secure_agg": "keelml"}, "secure aggregation hides"),
        ({"secure_agg": "flower", "secagg_shares": 4}, "odd number of shares"),
        ({"client_dp": (0.0, 1.0)}, "positive clipping norm"),
        ({"client_dp": (1.0, 0.0)}, "positive noise multiplier"),
        ({"clients": 1}, "at least 2 clients"),
        ({"min_clients": 5, "clients": 3}, "min_clients"),
        ({"strategy": "fedsgd"}, "unknown strategy"),
        ({"dropout": 1.0}, "dropout"),
    ],
)
def test_invalid_configs_are_refused_with_a_fix(values: dict[str, object], needle: str, explains) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidInputError) as info:
        FederatedConfig(**values)  # type: ignore[arg-type]
    explains(info.value, needle)


def test_config_round_trips_and_unknown_keys_are_named() -> None:
    config = FederatedConfig(clients=4, client_dp=(1.0, 0.5), hidden=(8,))
    assert FederatedConfig.from_mapping(config.to_json()) == config
    with pytest.raises(ConfigError, match="rounds_x"):
        FederatedConfig.from_mapping({"rounds_x": 3})


def test_iid_partition_is_a_balanced_disjoint_cover() -> None:
    y = np.repeat([0, 1, 2], 40)
    parts = partition_rows(y, Partition("iid"), 7, seed=1)
    flat = np.concatenate(parts)
    assert sorted(flat.tolist()) == list(range(120))
    assert max(map(len, parts)) - min(map(len, parts)) <= 1


def test_dirichlet_small_alpha_skews_labels_large_alpha_does_not() -> None:
    y = np.repeat([0, 1, 2, 3], 250)

    def skew(alpha: float) -> float:
        parts = partition_rows(y, Partition("dirichlet", alpha=alpha), 10, seed=0)
        assert sorted(np.concatenate(parts).tolist()) == list(range(1000))
        shares = [np.bincount(y[p], minlength=4) / len(p) for p in parts]
        return float(np.mean([np.abs(s - 0.25).sum() for s in shares]))

    assert skew(0.1) > 0.8 > 0.3 > skew(100.0)


def test_by_column_keeps_each_value_on_one_client_and_explains_too_few_values(explains) -> None:  # type: ignore[no-untyped-def]
    groups = np.array(["a", "b", "c", "a", "b", "c", "d", "d"] * 5, dtype=object)
    parts = partition_rows(np.zeros(40, dtype=np.int64), Partition("by", column="g"), 3, groups=groups)
    owners = {v: {i for i, p in enumerate(parts) if v in set(groups[p])} for v in "abcd"}
    assert all(len(o) == 1 for o in owners.values())
    with pytest.raises(InvalidInputError) as info:
        partition_rows(np.zeros(40, dtype=np.int64), Partition("by", column="g"), 5, groups=groups)
    explains(info.value, "4 distinct values", "--clients 4")


def test_too_few_rows_for_the_clients_is_an_empty_partition_error() -> None:
    with pytest.raises(EmptySourceError, match="fewer --clients"):
        partition_rows(np.zeros(5, dtype=np.int64), Partition("iid"), 4)
