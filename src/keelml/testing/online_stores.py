"""Conformance checks for online feature stores (:class:`keelml.features.OnlineStore`).

``check_online_store(factory)`` takes a zero-argument callable that returns a new, empty store (a fresh
namespace on a shared server is fine) and raises :class:`OnlineStoreCheckError` on the first broken rule.

>>> from keelml.features import SQLiteOnlineStore
>>> check_online_store(lambda: SQLiteOnlineStore(":memory:"))
"""

from __future__ import annotations

from collections.abc import Callable

from keelml.features.online import OnlineStore


class OnlineStoreCheckError(AssertionError):
    """An online store broke the protocol; the message names the rule and a fix."""


def _expect(cond: bool, store: OnlineStore, rule: str, fix: str) -> None:
    if not cond:
        raise OnlineStoreCheckError(f"online store {store.uri!r}: {rule}\n  fix: {fix}")


def check_online_store(factory: Callable[[], OnlineStore]) -> None:
    store = factory()
    try:
        _expect(isinstance(store, OnlineStore), store, "does not implement OnlineStore", "add the methods")
        _expect(store.get("v", ["[1]"]) == [None], store, "a new store returns a value", "start empty")
        _expect(store.get_meta("m") is None, store, "a new store has metadata", "start empty")
        n = store.put("v", [("[1]", b"one"), ("[2]", b"two")])
        _expect(n == 2, store, f"put returned {n} for 2 items", "return the number of items written")
        got = store.get("v", ["[2]", "[3]", "[1]"])
        _expect(got == [b"two", None, b"one"], store, f"get returned {got!r}", "answer in the keys' order")
        _expect(store.get("v", ["[1]"]) == [b"one"], store, "a single-key get differs", "same for one key")
        store.put("v", [("[1]", b"uno")])
        _expect(store.get("v", ["[1]"]) == [b"uno"], store, "put does not overwrite", "replace the value")
        store.put("w", [("[1]", b"other view")])
        _expect(store.get("v", ["[1]"]) == [b"uno"], store, "views share keys", "key by (view, key)")
        _expect(store.get("v", []) == [], store, "an empty get is not []", "return an empty list")
        many = [(f"[{i}]", str(i).encode()) for i in range(1200)]
        store.put("big", iter(many))
        keys = [k for k, _ in many]
        _expect(store.get("big", keys) == [v for _, v in many], store, "a large get loses rows", "chunk")
        store.clear("v")
        _expect(store.get("v", ["[1]", "[2]"]) == [None, None], store, "clear leaves values", "delete all")
        _expect(store.get("w", ["[1]"]) == [b"other view"], store, "clear removes another view", "scope it")
        store.set_meta("m", "x")
        store.set_meta("m", "y")
        _expect(store.get_meta("m") == "y", store, "metadata is not replaced", "overwrite metadata")
    finally:
        store.close()
