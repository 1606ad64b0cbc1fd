"""Who used the CPU: per-process CPU time from /proc, sampled during a benchmark (Linux only).

A soak that falls behind its schedule either lost capacity in the server or to another process on
the same cores; this tells them apart. ``CpuSampler(roles).sample(t)`` records, per interval, the CPU
seconds of each role's process tree (e.g. "server", "load") and of everything else, with the
busiest other command named, and ``probe_us``: the CPU time (not wall time, so waiting for a core does
not count) of a fixed pure-Python loop, the best of five: when it rises, the cores themselves got slower.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

TICK = os.sysconf("SC_CLK_TCK")


def probe_us(repeats: int = 5) -> float:
    """CPU microseconds of a fixed loop (~1 ms), the fastest of ``repeats``."""
    best = float("inf")
    for _ in range(repeats):
        start = time.thread_time_ns()
        total = 0
        for i in range(20_000):
            total += i * i
        best = min(best, (time.thread_time_ns() - start) / 1000.0)
    return best


def _processes() -> dict[int, tuple[int, float, str]]:
    """pid -> (parent pid, CPU seconds so far, command name)."""
    out: dict[int, tuple[int, float, str]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:  # the process ended between listing and reading
            continue
        name = raw[raw.index("(") + 1 : raw.rindex(")")]
        fields = raw[raw.rindex(")") + 2 :].split()
        out[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / TICK, name)
    return out


def _tree(procs: dict[int, tuple[int, float, str]], root: int) -> set[int]:
    members, grew = {root}, True
    while grew:
        extra = {p for p, (ppid, _, _) in procs.items() if ppid in members and p not in members}
        members |= extra
        grew = bool(extra)
    return members


class CpuSampler:
    """CPU seconds per role (a process tree) and for all other processes, between samples."""

    def __init__(self, roles: dict[str, int]) -> None:
        self.roles = roles
        self.me = os.getpid()
        self._last = _processes()
        self.samples: list[dict[str, Any]] = []

    def sample(self, t: float) -> None:
        now = _processes()
        used = {p: cpu - self._last[p][1] if p in self._last else cpu for p, (_, cpu, _) in now.items()}
        row: dict[str, Any] = {"t": round(t, 1), "probe_us": round(probe_us(), 1)}
        claimed = {self.me}
        for role, pid in self.roles.items():
            tree = _tree(now, pid)
            row[role] = round(sum(used[p] for p in tree), 2)
            claimed |= tree
        others = {p: u for p, u in used.items() if p not in claimed and u > 0}
        row["others"] = round(sum(others.values()), 2)
        if others:
            top = max(others, key=lambda p: others[p])
            row["top_other"] = f"{now[top][2]} ({others[top]:.2f} s)"
        self.samples.append(row)
        self._last = now
