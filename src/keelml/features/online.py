"""Online stores: the latest feature row per entity, behind one small protocol.

Values are opaque bytes keyed by (view, entity key); the feature store encodes rows as JSON. SQLite
(embedded, the default) and Redis (for teams) are chosen by the URI scheme.

>>> store = open_online_store("sqlite:///:memory:", namespace="doc")
>>> store.put("v", [("[1]", b'{"x": 1}')])
1
>>> store.get("v", ["[1]", "[2]"])
[b'{"x": 1}', None]
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from keelml.core.errors import BackendUnavailableError, ConfigError, missing_dependency


@runtime_checkable
class OnlineStore(Protocol):
    """put/get of encoded rows per view; ``meta`` holds small strings such as watermarks."""

    uri: str

    def put(self, view: str, items: Iterable[tuple[str, bytes]]) -> int: ...

    def get(self, view: str, keys: Sequence[str]) -> list[bytes | None]: ...

    def clear(self, view: str) -> None: ...

    def get_meta(self, key: str) -> str | None: ...

    def set_meta(self, key: str, value: str) -> None: ...

    def close(self) -> None: ...


class SQLiteOnlineStore:
    """One table per store, ``(view, key) -> value``, in WAL mode."""

    def __init__(self, path: str, namespace: str = "keel") -> None:
        self.uri = f"sqlite:///{path}"
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self._con = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._con.execute("PRAGMA journal_mode=WAL")
            self._con.execute("PRAGMA synchronous=NORMAL")
            self._con.execute(
                "CREATE TABLE IF NOT EXISTS online_features (view TEXT NOT NULL, key TEXT NOT NULL, "
                "value BLOB NOT NULL, PRIMARY KEY (view, key)) WITHOUT ROWID"
            )
            self._con.execute("CREATE TABLE IF NOT EXISTS online_meta (key TEXT PRIMARY KEY, value TEXT)")
        except sqlite3.Error as exc:
            raise BackendUnavailableError(
                "cannot open the SQLite online store",
                expected=f"a writable SQLite file at {path}",
                received=str(exc),
                fix="fix `online_store` in keel.toml",
            ) from exc
        self._one = "SELECT value FROM online_features WHERE view = ? AND key = ?"

    def put(self, view: str, items: Iterable[tuple[str, bytes]]) -> int:
        rows = [(view, k, v) for k, v in items]
        with self._con:
            self._con.execute("BEGIN")
            self._con.executemany("INSERT OR REPLACE INTO online_features VALUES (?, ?, ?)", rows)
        return len(rows)

    def get(self, view: str, keys: Sequence[str]) -> list[bytes | None]:
        if len(keys) == 1:
            row = self._con.execute(self._one, (view, keys[0])).fetchone()
            return [row[0] if row else None]
        found: dict[str, bytes] = {}
        for start in range(0, len(keys), 500):
            chunk = list(keys[start : start + 500])
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT key, value FROM online_features WHERE view = ? AND key IN ({marks})"
            found.update(self._con.execute(sql, (view, *chunk)).fetchall())
        return [found.get(k) for k in keys]

    def clear(self, view: str) -> None:
        with self._con:
            self._con.execute("DELETE FROM online_features WHERE view = ?", (view,))

    def get_meta(self, key: str) -> str | None:
        row = self._con.execute("SELECT value FROM online_meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        with self._con:
            self._con.execute("INSERT OR REPLACE INTO online_meta VALUES (?, ?)", (key, value))

    def close(self) -> None:
        self._con.close()


class RedisOnlineStore:
    """Keys ``NAMESPACE:VIEW:KEY`` holding the encoded row; reads are one MGET."""

    def __init__(self, url: str, namespace: str = "keel") -> None:
        try:
            import redis
        except ImportError as exc:
            raise missing_dependency("redis", "features", "a Redis online store") from exc
        self.uri = url
        self._ns = namespace
        self._client: Any = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)
        try:
            self._client.ping()
        except redis.RedisError as exc:
            safe = url.split("@")[-1]
            raise BackendUnavailableError(
                "cannot reach the Redis online store",
                expected=f"a Redis server at {safe}",
                received=f"{type(exc).__name__}: {exc}",
                fix="start Redis (redis-server), or set `online_store` in keel.toml to "
                "sqlite:///.keel/online.db for the embedded store",
            ) from exc

    def _key(self, view: str, key: str) -> str:
        return f"{self._ns}:{view}:{key}"

    def put(self, view: str, items: Iterable[tuple[str, bytes]]) -> int:
        count = 0
        pipe = self._client.pipeline(transaction=False)
        for key, value in items:
            pipe.set(self._key(view, key), value)
            count += 1
            if count % 5000 == 0:
                pipe.execute()
        pipe.execute()
        return count

    def get(self, view: str, keys: Sequence[str]) -> list[bytes | None]:
        if len(keys) == 1:
            return [self._client.get(self._key(view, keys[0]))]
        return list(self._client.mget([self._key(view, k) for k in keys]))

    def clear(self, view: str) -> None:
        batch = list(self._client.scan_iter(match=f"{self._ns}:{view}:*", count=1000))
        for start in range(0, len(batch), 1000):
            self._client.delete(*batch[start : start + 1000])

    def get_meta(self, key: str) -> str | None:
        value = self._client.get(f"{self._ns}:__meta__:{key}")
        return None if value is None else bytes(value).decode()

    def set_meta(self, key: str, value: str) -> None:
        self._client.set(f"{self._ns}:__meta__:{key}", value)

    def close(self) -> None:
        self._client.close()


def open_online_store(uri: str, *, namespace: str = "keel") -> OnlineStore:
    """The store for ``uri``: ``sqlite:///PATH`` (absolute, or ``:memory:``) or ``redis://...``."""
    if uri.startswith("sqlite:///"):
        return SQLiteOnlineStore(uri[len("sqlite:///") :], namespace)
    if uri.startswith(("redis://", "rediss://")):
        return RedisOnlineStore(uri, namespace)
    raise ConfigError(
        f"unsupported online store {uri!r}",
        expected="sqlite:///PATH or redis://HOST:PORT/DB",
        received=uri,
        fix="set `online_store` in keel.toml",
    )
