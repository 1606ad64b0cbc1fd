"""keelml's SecAgg+ over Flower messages: workflow + client mod on an in-process Flower grid."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from keelml.federated.secagg import SecAggConfig, ThresholdNotMetError
from keelml.federated.secagg.flower_client import RECORD, keelml_secagg_mod
from keelml.federated.secagg.flower_local import legacy_context, local_grid
from keelml.federated.secagg.flower_server import KeelSecAggWorkflow
from keelml.federated.secagg.wire import Message as WireMessage
from keelml.federated.secagg.wire import Phase

SHAPES = [(3, 4), (4,)]
NODES = [101, 2**40 + 7, 33, 4444, 5, 9_000_000_001]


def _local_params(node: int) -> list[np.ndarray[Any, Any]]:
    rng = np.random.default_rng(node % 2**32)
    return [rng.normal(size=s).astype(np.float32) for s in SHAPES]


def _examples(node: int) -> int:
    return 10 + node % 17


def _app() -> Any:
    from flwr.client import NumPyClient
    from flwr.clientapp import ClientApp

    class Local(NumPyClient):
        def __init__(self, node: int) -> None:
            self.node = node

        def fit(self, parameters: Any, config: Any) -> tuple[list[Any], int, dict[str, Any]]:
            return _local_params(self.node), _examples(self.node), {"node": self.node % 1000}

    return ClientApp(client_fn=lambda ctx: Local(ctx.node_id).to_client(), mods=[keelml_secagg_mod])


def _run(offline: Any = None, config: SecAggConfig | None = None, **kw: Any) -> tuple[Any, Any, list[Any]]:
    from flwr.common import ndarrays_to_parameters, parameters_to_ndarrays
    from flwr.compat.common import recorddict_compat as compat
    from flwr.server.strategy import FedAvg
    from flwr.server.workflow.constant import MAIN_PARAMS_RECORD

    seen: list[Any] = []

    def spy(nid: int, message: Any) -> bool:
        seen.append(message)
        return bool(offline and offline(nid, message))

    grid = local_grid(_app(), NODES, spy)
    strategy = FedAvg(fraction_fit=1.0, min_fit_clients=3, min_available_clients=3)
    zeros = ndarrays_to_parameters([np.zeros(s, dtype=np.float32) for s in SHAPES])
    context = legacy_context(grid, strategy, zeros)
    workflow = KeelSecAggWorkflow(config or SecAggConfig(full_graph=True, threshold=3), **kw)
    workflow(grid, context)
    params = parameters_to_ndarrays(
        compat.arrayrecord_to_parameters(context.state.array_records[MAIN_PARAMS_RECORD], True)
    )
    return workflow, params, seen


def _fedavg(nodes: list[int]) -> list[np.ndarray[Any, Any]]:
    weights = np.array([_examples(n) for n in nodes], dtype=np.float64)
    return [
        sum(w * _local_params(n)[i].astype(np.float64) for n, w in zip(nodes, weights, strict=True))
        / weights.sum()
        for i in range(len(SHAPES))
    ]


def test_workflow_gives_fedavg_weighted_mean() -> None:
    workflow, params, seen = _run()
    for got, want in zip(params, _fedavg(NODES), strict=True):
        assert got.dtype == np.float32 and got.shape == want.shape
        assert np.allclose(got, want, atol=1e-5)
    report = workflow.reports[-1]
    assert report.survivors == tuple(sorted(NODES)) and not report.failures
    assert {WireMessage.from_bytes(m.content.config_records[RECORD]["msg"]).phase for m in seen} == set(Phase)


def test_dropout_after_masking_is_recovered_and_plain_params_never_leave() -> None:
    gone = NODES[1]

    def offline(nid: int, message: Any) -> bool:
        data = message.content.config_records[RECORD]["msg"]
        return nid == gone and WireMessage.from_bytes(data).phase == Phase.UNMASK

    workflow, params, _ = _run(offline)
    for got, want in zip(params, _fedavg(NODES), strict=True):
        assert np.allclose(got, want, atol=1e-5)  # its masked input arrived, so it is in the mean
    assert workflow.reports[-1].unmasked_via_shares == (gone,)


def test_dropout_before_masking_leaves_the_client_out() -> None:
    gone = NODES[0]

    def offline(nid: int, message: Any) -> bool:
        data = message.content.config_records[RECORD]["msg"]
        return nid == gone and WireMessage.from_bytes(data).phase == Phase.MASKED_INPUT

    workflow, params, _ = _run(offline)
    for got, want in zip(params, _fedavg([n for n in NODES if n != gone]), strict=True):
        assert np.allclose(got, want, atol=1e-5)
    assert workflow.reports[-1].dropped == (gone,)


def test_too_many_dropouts_raise_or_skip() -> None:
    def offline(nid: int, message: Any) -> bool:
        data = message.content.config_records[RECORD]["msg"]
        return nid in NODES[:3] and WireMessage.from_bytes(data).phase == Phase.UNMASK

    config = SecAggConfig(full_graph=True, threshold=4)
    with pytest.raises(ThresholdNotMetError):
        _run(offline, config)
    workflow, params, _ = _run(offline, config, on_failure="skip")
    assert all(not p.any() for p in params) and not workflow.reports  # previous (zero) model kept


def test_replies_carry_no_plain_parameters() -> None:
    from flwr.app import Context, Message
    from flwr.clientapp import ClientApp
    from flwr.common import ndarrays_to_parameters
    from flwr.server.strategy import FedAvg

    app, replies = _app(), []

    def recording(message: Message, ctxt: Context) -> Message:
        reply: Message = app(message, ctxt)
        replies.append(reply)
        return reply

    wrapped = ClientApp()
    wrapped._call = recording  # record everything that leaves each node
    grid = local_grid(wrapped, NODES)
    context = legacy_context(
        grid, FedAvg(), ndarrays_to_parameters([np.zeros(s, np.float32) for s in SHAPES])
    )
    KeelSecAggWorkflow(SecAggConfig(full_graph=True, threshold=3))(grid, context)
    assert len(replies) == 4 * len(NODES)
    assert all(rec.count_bytes() == 0 for r in replies for rec in r.content.array_records.values())


def test_out_of_range_client_is_reported_and_left_out(monkeypatch: pytest.MonkeyPatch) -> None:
    bad = NODES[2]
    original = _local_params

    def params(node: int) -> list[np.ndarray[Any, Any]]:
        return [p * 1e6 for p in original(node)] if node == bad else original(node)

    monkeypatch.setattr(f"{__name__}._local_params", params)
    workflow, got, _ = _run()
    report = workflow.reports[-1]
    assert report.dropped == (bad,)
    assert any("UpdateOutOfRangeError" in f and str(bad) in f for f in report.failures)
    # the default range (+-1024): the error names the range that would hold the update
    assert any("declare a wider range: SecAggConfig(clip_bound=" in f for f in report.failures)
    for g, want in zip(got, _fedavg([n for n in NODES if n != bad]), strict=True):
        assert np.allclose(g, want, atol=1e-5)


def test_workflow_on_the_32_bit_ring() -> None:
    config = SecAggConfig(full_graph=True, threshold=3, clip_bound=256.0, precision_bits=16)
    assert config.plan(len(NODES)).modulus_bits == 32
    workflow, params, _ = _run(config=config)
    for got, want in zip(params, _fedavg(NODES), strict=True):
        assert np.allclose(got, want, atol=1e-4)
    assert workflow.reports[-1].survivors == tuple(sorted(NODES))


@pytest.mark.parametrize(
    "array",
    [
        np.arange(12, dtype=np.float32).reshape(3, 4),
        np.asfortranarray(np.arange(12.0).reshape(3, 4)),  # column-major bytes
        np.array(2.5),
        np.arange(6, dtype=">i4"),  # big-endian
        np.zeros((0, 3), dtype=np.float16),
        np.array([(1, 2.0)], dtype=[("a", "<i4"), ("b", "<f8")]),  # not a plain header: np.load path
    ],
)
def test_serialised_parameters_are_read_like_np_load(array: np.ndarray[Any, Any]) -> None:
    from flwr.common import bytes_to_ndarray, ndarray_to_bytes

    from keelml.federated.secagg.flower_client import _flat_array, _npy_view

    data = ndarray_to_bytes(array)
    got = _flat_array(data, "numpy.ndarray")
    want = bytes_to_ndarray(data).reshape(-1)
    assert got.dtype == want.dtype and np.array_equal(got, want)
    assert (_npy_view(data) is None) == (array.dtype.names is not None)
    assert np.array_equal(_flat_array(data, "other"), want)  # an unknown tensor type goes to np.load
