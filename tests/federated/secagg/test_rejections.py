"""Tampered, replayed, misdirected and out-of-round messages are rejected; bad input is refused."""

from __future__ import annotations

import json

import numpy as np
import pytest

from keelml.core.errors import ConfigError, InvalidInputError
from keelml.federated.secagg import (
    MessageRejectedError,
    SecAggClient,
    SecAggConfig,
    ThresholdNotMetError,
    UpdateOutOfRangeError,
    secure_sum,
)
from keelml.federated.secagg.wire import Message, Phase

from .conftest import Round, vectors


def _edit_body(data: bytes, edit: object) -> bytes:
    msg = Message.from_bytes(data)
    body = json.loads(json.dumps(msg.body))
    edit(body)  # type: ignore[operator]
    return Message(msg.phase, msg.round_id, msg.sender, msg.receiver, body, msg.payload).to_bytes()


def test_tampered_share_ciphertext_is_rejected_by_its_receiver() -> None:
    r = Round(vectors(5, 6))
    r.run_to(Phase.MASKED_INPUT)
    requests = r.ask()

    def flip(body: dict[str, dict[str, str]]) -> None:
        sender, sealed = next(iter(body["sealed"].items()))
        raw = bytearray(bytes.fromhex(sealed))
        raw[20] ^= 1
        body["sealed"][sender] = raw.hex()

    with pytest.raises(MessageRejectedError, match="failed authentication") as info:
        r.clients[0].handle(_edit_body(requests[0], flip), r.updates[0])
    assert "tampered" in str(info.value)


def test_ciphertext_redirected_to_another_client_is_rejected() -> None:
    r = Round(vectors(5, 6))
    r.run_to(Phase.MASKED_INPUT)
    requests = r.ask()
    for_client_1 = Message.from_bytes(requests[1]).body["sealed"]["2"]

    def swap(body: dict[str, dict[str, str]]) -> None:
        body["sealed"]["2"] = for_client_1  # client 2 sealed this for client 1, not for client 0

    with pytest.raises(MessageRejectedError, match="share from client 2 failed authentication"):
        r.clients[0].handle(_edit_body(requests[0], swap), r.updates[0])


def test_replayed_reply_is_rejected_by_the_server() -> None:
    r = Round(vectors(4, 3))
    r.ask()
    replies = r.answer()
    r.server.accept(0, replies[0])
    with pytest.raises(MessageRejectedError, match="second reply from client 0"):
        r.server.accept(0, replies[0])
    r.server.collect({c: b for c, b in replies.items() if c != 0})
    with pytest.raises(MessageRejectedError, match="phase ADVERTISE instead of SHARE_KEYS"):
        r.server.accept(1, replies[1])  # an earlier phase's message replayed


def test_message_from_another_round_is_rejected() -> None:
    old, new = Round(vectors(4, 3)), Round(vectors(4, 3))
    old.ask()
    stale = old.answer()
    new.ask()
    new.answer()
    with pytest.raises(MessageRejectedError, match="out-of-round"):
        new.server.accept(0, stale[0])
    new.step()
    # a client in the new round refuses a server request stamped with the old round id
    old.server.collect(stale)
    with pytest.raises(MessageRejectedError, match="round"):
        new.clients[1].handle(old.server.requests()[1])


def test_client_refuses_out_of_order_and_replayed_requests() -> None:
    client = SecAggClient(0)
    r = Round(vectors(4, 3))
    r.ask()
    r.server.collect(r.answer())
    share_request = r.ask()[0]
    with pytest.raises(MessageRejectedError, match="outside a round"):
        client.handle(share_request)  # this client never saw ADVERTISE
    r.server.collect(r.answer())
    masked_request = r.ask()[0]
    with pytest.raises(MessageRejectedError, match="phase SHARE_KEYS instead of MASKED_INPUT"):
        SecAggClient.from_bytes(r.clients[0].to_bytes()).handle(share_request)  # replay of a done phase
    r.server.collect(r.answer())
    unmask_request = r.ask()[0]
    r.answer()
    with pytest.raises(MessageRejectedError, match="outside a round"):
        r.clients[0].handle(unmask_request)  # unmask answered once; a second answer could leak
    assert masked_request != unmask_request


def test_client_refuses_to_reveal_both_secrets_of_one_client() -> None:
    r = Round(vectors(5, 3))
    r.run_to(Phase.UNMASK)
    request = r.ask()[0]

    def overlap(body: dict[str, list[int]]) -> None:
        body["dropped"] = [body["survivors"][0]]

    with pytest.raises(MessageRejectedError, match="inconsistent unmask request"):
        r.clients[0].handle(_edit_body(request, overlap))


def test_malformed_bytes_are_rejected() -> None:
    with pytest.raises(MessageRejectedError, match="malformed"):
        Message.from_bytes(b"garbage")
    with pytest.raises(MessageRejectedError, match="magic"):
        Message.from_bytes(b"XXXX" + bytes(60))


def test_out_of_range_and_non_finite_updates_raise() -> None:
    updates = vectors(4, 5)
    updates[2][3] = 1e9
    with pytest.raises(UpdateOutOfRangeError, match="index 3") as info:
        secure_sum(updates, SecAggConfig(clip_bound=100.0))
    assert isinstance(info.value, ValueError) and "clip_bound" in str(info.value)
    updates[2][3] = np.nan
    with pytest.raises(UpdateOutOfRangeError):
        secure_sum(updates, SecAggConfig())


def test_below_threshold_client_view_fails_clearly() -> None:
    r = Round(vectors(5, 3), SecAggConfig(full_graph=True, threshold=4))
    r.step()
    r.step()
    request = r.ask()[0]

    def starve(body: dict[str, dict[str, str]]) -> None:
        body["sealed"] = dict(list(body["sealed"].items())[:2])

    with pytest.raises(ThresholdNotMetError, match="neighbours that sent shares"):
        r.clients[0].handle(_edit_body(request, starve), r.updates[0])


def test_timeout_counts_late_clients_as_dropped() -> None:
    config = SecAggConfig(full_graph=True, threshold=2, phase_timeout_s=1e-9)
    with pytest.raises(ThresholdNotMetError, match="ADVERTISE"):
        secure_sum(vectors(4, 3), config)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"clip_bound": 0.0}, "clip_bound"),
        ({"modulus_bits": 70}, "modulus_bits"),
        ({"precision_bits": 63}, "precision_bits"),
        ({"neighbours": 1}, "neighbours"),
        ({"threshold": 1}, "threshold"),
        ({"phase_timeout_s": 0}, "phase_timeout_s"),
    ],
)
def test_config_validation(kwargs: dict[str, float], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        SecAggConfig(**kwargs)  # type: ignore[arg-type]


def test_plan_refuses_overflow_and_too_few_clients() -> None:
    with pytest.raises(ConfigError, match="wrap around"):
        SecAggConfig(clip_bound=2.0**30, precision_bits=32).plan(10)
    with pytest.raises(ConfigError, match="at least 3 clients"):
        SecAggConfig().plan(2)
    with pytest.raises(ConfigError, match="exceeds the number of neighbours"):
        SecAggConfig(threshold=9).plan(5)


def test_bad_inputs_to_secure_sum() -> None:
    with pytest.raises(InvalidInputError, match="different shapes"):
        secure_sum([np.zeros(3), np.zeros(3), np.zeros(4)], SecAggConfig())
    with pytest.raises(InvalidInputError, match="both before and after"):
        secure_sum(vectors(4, 2), SecAggConfig(), dropped_after_masking={1}, dropped_before_masking={1})
    with pytest.raises(InvalidInputError, match="do not exist"):
        secure_sum(vectors(4, 2), SecAggConfig(), dropped_after_masking={7})


def test_client_state_round_trips_and_refuses_foreign_bytes() -> None:
    from keelml.federated.secagg.client import ClientState

    rnd = Round(vectors(5, 3))
    rnd.run_to(Phase.UNMASK)
    for client in rnd.clients.values():
        state = client.state
        assert state.shares and state.peer_keys and state.channel_keys and state.next_phase == Phase.UNMASK
        assert ClientState.from_bytes(state.to_bytes()) == state
        assert SecAggClient.from_bytes(client.to_bytes()).state == state
    assert ClientState.from_bytes(ClientState(7).to_bytes()) == ClientState(7)
    with pytest.raises(ValueError, match="not a keelml SecAgg client state"):
        ClientState.from_bytes(b'{"cid": 1}' + bytes(16))
