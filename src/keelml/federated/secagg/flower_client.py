"""The client side of keelml's SecAgg+ on Flower: a ClientApp mod.

    app = ClientApp(client_fn=..., mods=[keelml_secagg_mod])

The mod answers keelml.secagg TRAIN messages itself and calls the wrapped ClientApp only in the
MASKED_INPUT phase, where it turns the FitRes into ``[w * flatten(params), w]``, masks it, and clears
the plain parameters from the reply. Keys and shares persist in the node's context state (which never
leaves the node) between the four messages of a round.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from keelml.federated.secagg.client import SecAggClient
from keelml.federated.secagg.wire import Message as WireMessage
from keelml.federated.secagg.wire import Phase

if TYPE_CHECKING:
    from flwr.app import Context, Message
    from flwr.clientapp.typing import ClientAppCallable

RECORD = "keelml.secagg"
STATE = "keelml.secagg.state"


def keelml_secagg_mod(msg: Message, ctxt: Context, call_next: ClientAppCallable) -> Message:
    from flwr.app import ConfigRecord, MessageType, RecordDict
    from flwr.app import Message as FlowerMessage
    from flwr.common import parameters_to_ndarrays
    from flwr.compat.common import recorddict_compat as compat

    if msg.metadata.message_type != MessageType.TRAIN or RECORD not in msg.content.config_records:
        return call_next(msg, ctxt)
    record = msg.content.config_records[RECORD]
    data = record["msg"]
    if not isinstance(data, bytes):
        raise TypeError(f"{RECORD}['msg'] must be bytes, got {type(data).__name__}")
    node = msg.metadata.dst_node_id
    stored = ctxt.state.config_records.get(STATE)
    client = SecAggClient(node)
    if stored is not None and isinstance(stored.get("state"), bytes):
        client = SecAggClient.from_bytes(stored["state"])  # type: ignore[arg-type]
    out_content = RecordDict()
    if WireMessage.from_bytes(data).phase == Phase.MASKED_INPUT:
        del msg.content.config_records[RECORD]  # the wrapped app sees ordinary fit instructions
        out = call_next(msg, ctxt)
        if out.has_error():
            return out
        out_content = out.content
        fitres = compat.recorddict_to_fitres(out_content, keep_input=True)
        arrays = parameters_to_ndarrays(fitres.parameters)
        weight = (
            float(fitres.num_examples) if record.get("weighting", "num_examples") == "num_examples" else 1.0
        )
        vector = np.concatenate(
            [weight * np.asarray(a, dtype=np.float64).ravel() for a in arrays] + [[weight]]
        )
        reply = client.handle(data, vector)
        for arrays_record in out_content.array_records.values():
            arrays_record.clear()  # the plain parameters must not leave the node
    else:
        reply = client.handle(data)
    ctxt.state.config_records[STATE] = ConfigRecord({"state": client.to_bytes()})
    out_content.config_records[RECORD] = ConfigRecord({"msg": reply})
    return FlowerMessage(out_content, reply_to=msg)
