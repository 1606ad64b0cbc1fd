"""An in-process Flower Grid: every node's ClientApp runs in this process, messages are deep-copied.

Used by the tests and the benchmark to run Flower server workflows (keelml's and Flower's own SecAgg+)
without Ray or network start-up. ``offline(node_id, message)`` returning True makes a node vanish for
that message, which is how dropouts are simulated; replies that take longer than the timeout are lost.
"""

from __future__ import annotations

import copy
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flwr.app import Message, RecordDict
    from flwr.clientapp import ClientApp
    from flwr.server.compat.legacy_context import LegacyContext
    from flwr.server.strategy import Strategy
    from flwr.supercore.run import Run

Offline = Callable[[int, "Message"], bool]


def local_grid(app: ClientApp, node_ids: Sequence[int], offline: Offline | None = None) -> Any:
    """A ``flwr.serverapp.Grid`` running ``app`` for each of ``node_ids`` in this process."""
    from flwr.app import Context, Error, RecordDict
    from flwr.app import Message as FlowerMessage
    from flwr.common.constant import SUPERLINK_NODE_ID
    from flwr.serverapp import Grid
    from flwr.supercore.run import Run
    from flwr.supercore.task_identity import TaskIdentity

    if TaskIdentity._run_id is None:  # what the ServerApp runtime sets for its process
        TaskIdentity.task_id, TaskIdentity.run_id, TaskIdentity.node_id = 1, 1, SUPERLINK_NODE_ID

    class LocalGrid(Grid):
        def __init__(self) -> None:
            self._run = Run.create_empty(run_id=1)
            self.contexts = {nid: Context(1, nid, {}, RecordDict(), {}) for nid in node_ids}
            self._replies: dict[str, FlowerMessage] = {}

        def set_run(self, run: Run) -> None:
            self._run = run

        @property
        def run(self) -> Run:
            return self._run

        def create_message(
            self,
            content: RecordDict,
            message_type: str,
            dst_node_id: int,
            group_id: str,
            ttl: float | None = None,
        ) -> FlowerMessage:
            return FlowerMessage(content, dst_node_id, message_type, group_id=group_id, ttl=ttl)

        def get_node_ids(self) -> Iterable[int]:
            return list(self.contexts)

        def push_messages(self, messages: Iterable[FlowerMessage]) -> Iterable[str]:
            return [self._deliver(m) for m in messages]

        def _deliver(self, message: FlowerMessage) -> str:
            mid = str(uuid.uuid4())
            message.metadata.__dict__["_message_id"] = mid
            message.metadata.__dict__["_src_node_id"] = SUPERLINK_NODE_ID
            nid = message.metadata.dst_node_id
            if nid not in self.contexts or (offline is not None and offline(nid, message)):
                return mid
            delivered = copy.deepcopy(message)
            try:
                reply = app(delivered, self.contexts[nid])
            except Exception as exc:  # a crashing ClientApp becomes an error reply, as in deployment
                reply = FlowerMessage(
                    Error(code=0, reason=f"{type(exc).__name__}: {exc}"), reply_to=delivered
                )
            reply.metadata.__dict__["_message_id"] = str(uuid.uuid4())
            self._replies[mid] = copy.deepcopy(reply)
            return mid

        def pull_messages(self, message_ids: Iterable[str]) -> Iterable[FlowerMessage]:
            return [self._replies.pop(m) for m in message_ids if m in self._replies]

        def send_and_receive(
            self, messages: Iterable[FlowerMessage], *, timeout: float | None = None
        ) -> Iterable[FlowerMessage]:
            deadline = None if timeout is None else time.monotonic() + timeout
            ids = []
            for m in messages:
                mid = self._deliver(m)
                if deadline is None or time.monotonic() <= deadline:
                    ids.append(mid)  # a reply computed after the deadline is never pulled
            return self.pull_messages(ids)

    return LocalGrid()


def legacy_context(grid: Any, strategy: Strategy, parameters: Any, server_round: int = 1) -> LegacyContext:
    """A LegacyContext with every grid node registered and the global ``parameters`` set for a round."""
    from flwr.app import ConfigRecord, Context, RecordDict
    from flwr.compat.common import recorddict_compat as compat
    from flwr.server.compat.grid_client_proxy import GridClientProxy
    from flwr.server.compat.legacy_context import LegacyContext
    from flwr.server.workflow.constant import MAIN_CONFIGS_RECORD, MAIN_PARAMS_RECORD
    from flwr.server.workflow.constant import Key as WorkflowKey

    context = LegacyContext(Context(1, 0, {}, RecordDict(), {}), strategy=strategy)
    for nid in grid.get_node_ids():
        context.client_manager.register(GridClientProxy(nid, grid, 1))
    context.state.array_records[MAIN_PARAMS_RECORD] = compat.parameters_to_arrayrecord(parameters, True)
    context.state.config_records[MAIN_CONFIGS_RECORD] = ConfigRecord(
        {WorkflowKey.CURRENT_ROUND: server_round}
    )
    return context
