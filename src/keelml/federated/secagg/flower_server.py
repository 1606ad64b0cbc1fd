"""keelml's SecAgg+ as a Flower server workflow: a drop-in for Flower's ``SecAggPlusWorkflow``.

    from flwr.server.workflow import DefaultWorkflow
    workflow = DefaultWorkflow(fit_workflow=KeelSecAggWorkflow(SecAggConfig()))

Clients need :func:`keelml.federated.secagg.flower_client.keelml_secagg_mod` on their ClientApp. Each
protocol message travels as bytes in the ConfigRecord ``keelml.secagg`` of a Flower TRAIN message; the
fit instructions ride along with the MASKED_INPUT request, so local training happens in that phase and
only the masked ``[w * params, w]`` vector leaves the client. flwr is imported when a round runs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from keelml.federated.secagg.config import SecAggConfig
from keelml.federated.secagg.errors import ThresholdNotMetError
from keelml.federated.secagg.fixedpoint import decode
from keelml.federated.secagg.server import SecAggServer
from keelml.federated.secagg.wire import Phase

if TYPE_CHECKING:
    from flwr.app import Context
    from flwr.serverapp import Grid

RECORD = "keelml.secagg"
FITRES = "fitres"  # the record prefix of Flower's FitRes (flwr.compat.common.recorddict_compat)
Weighting = Literal["num_examples", "uniform"]
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RoundReport:
    """What one secure round did, kept on the workflow for callers and tests."""

    server_round: int
    survivors: tuple[int, ...]
    dropped: tuple[int, ...]
    unmasked_via_shares: tuple[int, ...]
    failures: tuple[str, ...]
    server_seconds: float


@dataclass
class KeelSecAggWorkflow:
    """Fit workflow running keelml's SecAgg+ round; the strategy sees only the aggregate.

    ``weighting="num_examples"`` gives FedAvg's weighted mean (the weight is summed securely as one more
    coordinate); ``"uniform"`` the plain mean. ``on_failure="raise"`` stops the run when too few clients
    remain; ``"skip"`` logs the reason and keeps the previous global model for this round.
    """

    config: SecAggConfig = field(default_factory=SecAggConfig)
    weighting: Weighting = "num_examples"
    on_failure: Literal["raise", "skip"] = "raise"
    reports: list[RoundReport] = field(default_factory=list)

    def __call__(self, grid: Grid, context: Context) -> None:
        from flwr.app import ConfigRecord, Message, MessageType, RecordDict
        from flwr.common import ndarrays_to_parameters, parameters_to_ndarrays
        from flwr.compat.common import recorddict_compat as compat
        from flwr.server.compat.legacy_context import LegacyContext
        from flwr.server.workflow.constant import MAIN_CONFIGS_RECORD, MAIN_PARAMS_RECORD
        from flwr.server.workflow.constant import Key as WorkflowKey

        if not isinstance(context, LegacyContext):
            raise TypeError(f"KeelSecAggWorkflow needs a LegacyContext, got {type(context).__name__}")
        server_round = int(context.state.config_records[MAIN_CONFIGS_RECORD][WorkflowKey.CURRENT_ROUND])  # type: ignore[arg-type]
        parameters = compat.arrayrecord_to_parameters(
            context.state.array_records[MAIN_PARAMS_RECORD], keep_input=True
        )
        sampled = context.strategy.configure_fit(server_round, parameters, context.client_manager)
        if not sampled:
            log.info("round %s: the strategy sampled no clients", server_round)
            return
        proxies = {proxy.node_id: proxy for proxy, _ in sampled}
        fitins = {proxy.node_id: fit for proxy, fit in sampled}
        template = parameters_to_ndarrays(parameters)
        server = SecAggServer(self.config, sorted(proxies))
        fitres: dict[int, Any] = {}
        failures: list[str] = []
        try:
            for phase in Phase:
                messages = []
                for nid, data in server.requests().items():
                    # the fit instructions ride with the masked-input request: clients train in that phase
                    train = phase == Phase.MASKED_INPUT
                    content = compat.fitins_to_recorddict(fitins[nid], True) if train else RecordDict()
                    content[RECORD] = ConfigRecord({"msg": data, "weighting": self.weighting})
                    messages.append(Message(content, nid, MessageType.TRAIN, group_id=str(server_round)))
                replies: dict[int, bytes] = {}
                for reply in grid.send_and_receive(messages, timeout=self.config.phase_timeout_s):
                    nid = reply.metadata.src_node_id
                    if reply.has_error():
                        failures.append(f"client {nid} in {phase.name}: {reply.error.reason}")
                        continue
                    carried = reply.content.get(RECORD)  # not .config_records: that view copies every record
                    payload = carried.get("msg") if isinstance(carried, ConfigRecord) else None
                    if not isinstance(payload, bytes):
                        failures.append(f"client {nid} in {phase.name}: reply without a keelml.secagg record")
                        continue
                    replies[nid] = payload
                    if phase == Phase.MASKED_INPUT:
                        fitres[nid] = _fitres(reply.content)
                server.collect(replies)
            total = decode(server.unmask(), server.plan)
        except ThresholdNotMetError as err:
            if self.on_failure == "raise":
                raise
            log.error(
                "round %s: secure aggregation failed, keeping the previous model\n%s", server_round, err
            )
            return
        failures += [f"client {c}: {err.problem}" for c, err in server.rejections]
        averaged = _unflatten(total, template, self.weighting)
        aggregate = ndarrays_to_parameters(averaged)
        results = []
        for nid in sorted(server.masked):
            res = fitres[nid]
            res.parameters = aggregate  # the strategy's weighted mean of identical arrays is the aggregate
            results.append((proxies[nid], res))
        new_parameters, metrics = context.strategy.aggregate_fit(server_round, results, [])
        if new_parameters is not None:
            params_record = compat.parameters_to_arrayrecord(new_parameters, True)
            context.state.array_records[MAIN_PARAMS_RECORD] = params_record
            context.history.add_metrics_distributed_fit(server_round=server_round, metrics=metrics)
        self.reports.append(
            RoundReport(
                server_round,
                tuple(sorted(server.masked)),
                tuple(sorted(set(proxies) - server.masked)),
                tuple(sorted(server.masked - server.responders)),
                tuple(failures),
                sum(server.server_seconds.values()),
            )
        )
        for line in failures:
            log.warning("round %s: %s", server_round, line)


def _fitres(content: Any) -> Any:
    """The FitRes of a masked-input reply, without parameters (the client cleared them).

    Read straight from the records ``flwr.compat`` writes (``fitres.status``, ``.num_examples``,
    ``.metrics``), since ``recorddict_to_fitres`` rebuilds a view of every record per field.
    """
    from flwr.common import Code, FitRes, Parameters, Status

    status = content[f"{FITRES}.status"]
    count = content[f"{FITRES}.num_examples"]["num_examples"]
    return FitRes(
        status=Status(code=Code(int(status["code"])), message=str(status["message"])),
        parameters=Parameters(tensors=[], tensor_type=""),
        num_examples=int(count),
        metrics=dict(content[f"{FITRES}.metrics"]),
    )


def _unflatten(
    total: np.ndarray[Any, Any], template: list[np.ndarray[Any, Any]], weighting: Weighting
) -> list[Any]:
    """Split the decoded ``[sum w * params, sum w]`` vector back into the model's arrays."""
    size = sum(a.size for a in template)
    if total.size != size + 1:
        raise ValueError(f"aggregate has {total.size - 1} parameters, the global model {size}")
    weight = float(total[-1])
    if weight <= 0:
        raise ValueError(f"total client weight is {weight}; with weighting={weighting!r} it must be positive")
    flat = total[:-1] / weight
    out, start = [], 0
    for a in template:
        out.append(flat[start : start + a.size].reshape(a.shape).astype(a.dtype))
        start += a.size
    return out
