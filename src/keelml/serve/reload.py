"""Hot reload: poll where the alias points, load the new version aside, swap one reference.

A request reads ``holder.current`` once and keeps that :class:`LoadedModel` to the end, so a swap
never changes the model under a request in flight; the old model is freed when its last request
finishes. Rollback is the same path: the alias moves back, the poll sees another version, it swaps.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from keelml.serve.model import LoadedModel, ModelSource

log = logging.getLogger("keelml.serve")


class ModelHolder:
    """The model being served; replaced only as a whole."""

    def __init__(
        self, spec: str, source: ModelSource, on_swap: Callable[[LoadedModel], None] = lambda m: None
    ) -> None:
        self.spec = spec
        self.source = source
        self.on_swap = on_swap
        self._current: LoadedModel | None = None
        self._lock = threading.Lock()  # one load at a time; readers never take it
        self.last_error: str | None = None

    @property
    def current(self) -> LoadedModel | None:
        return self._current

    def load(self) -> LoadedModel:
        with self._lock:
            loaded = self.source.load(self.spec)
            self._current = loaded
            return loaded

    def check(self) -> bool:
        """Load and swap if the alias names another version now; True when it swapped."""
        with self._lock:
            try:
                version = self.source.version_of(self.spec)
                current = self._current
                if current is not None and version == current.alias_version:
                    self.last_error = None
                    return False
                loaded = self.source.load(self.spec)
            except Exception as exc:  # keep serving the old model; report on /readyz and in the log
                self.last_error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                log.warning("reload of %s failed, still serving the loaded version: %s", self.spec,
                            self.last_error)  # fmt: skip
                raise
            self._current = loaded
            self.last_error = None
        log.info("now serving %s@%d (was %s)", loaded.name, loaded.version,
                 "none" if current is None else current.version)  # fmt: skip
        self.on_swap(loaded)
        return True


class Reloader:
    """A daemon thread calling :meth:`ModelHolder.check` every ``seconds``."""

    def __init__(
        self,
        holder: ModelHolder,
        seconds: float,
        on_error: Callable[[], None],
    ) -> None:
        self._holder = holder
        self._seconds = seconds
        self._on_error = on_error
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="keel-reload", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._seconds):
            try:
                self._holder.check()
            except Exception:  # already logged by check(); the loop must survive a registry outage
                self._on_error()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
