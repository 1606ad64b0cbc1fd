"""Run a benchmark child under a watchdog: peak RSS of its process tree, CPU time, and limits.

The child runs in its own session (process group) with stdout/stderr sent to files. Every
``interval`` seconds the watchdog sums VmRSS over the child and all its descendants (from /proc),
and kills the whole group if that sum passes ``max_rss_gb``, if the machine's MemAvailable falls
under ``min_available_gb`` (so a runaway child cannot push other people's jobs into the OOM
killer), or if it has run (wall time minus the time it spent stopped by SIGSTOP) past
``max_minutes``. A kill is a result, not an error: the returned record says which limit fired and
what the child had reached. CPU time (user + system, all threads, reaped descendants included)
comes from ``wait4`` on the child, so it also covers a killed child.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

PAGE_MB = os.sysconf("SC_PAGE_SIZE") / 2**20
TICK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Guarded:
    returncode: int | None
    killed: str | None  # None, "rss", "available", "minutes"
    wall_seconds: float
    stopped_seconds: float  # time the child or the watchdog was seen stopped (SIGSTOP by latency runs)
    cpu_seconds: float
    user_seconds: float
    system_seconds: float
    peak_tree_rss_mb: float  # largest sampled sum of RSS over the process tree
    max_single_rss_mb: float  # ru_maxrss: the largest single process (kernel's own high-water mark)
    min_available_mb: float  # smallest MemAvailable seen while it ran
    load_start: tuple[float, float, float]
    load_end: tuple[float, float, float]
    stdout: str
    stderr: str
    timeline: list[tuple[float, float, float]] = field(default_factory=list)  # (s, tree MB, tree CPU-s)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _stat(pid: int) -> tuple[int, str, float, float] | None:
    """(ppid, state, cpu seconds, rss MB) of one process, or None if it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    rest = raw[raw.rindex(")") + 2 :].split()
    # fields after the name: state(3) ppid(4) ... utime(14) stime(15) ... rss(24); rest[0] is field 3
    return int(rest[1]), rest[0], (int(rest[11]) + int(rest[12])) / TICK, int(rest[21]) * PAGE_MB


def tree(root: int) -> tuple[float, float, bool]:
    """(RSS MB, CPU seconds, stopped) summed over ``root`` and its descendants."""
    stats: dict[int, tuple[int, str, float, float]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit() and (s := _stat(int(name))) is not None:
            stats[int(name)] = s
    members, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        for pid, s in stats.items():
            if s[0] == parent and pid not in members:
                members.add(pid)
                frontier.append(pid)
    present = [stats[p] for p in members if p in stats]
    stopped = any(s[1] in ("T", "t") for s in present) and root in stats
    return sum(s[3] for s in present), sum(s[2] for s in present), stopped


def mem_available_mb() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run_guarded(
    args: list[str],
    *,
    env: dict[str, str],
    log_prefix: Path,
    max_rss_gb: float,
    max_minutes: float,
    min_available_gb: float = 1.5,
    interval: float = 0.5,
    timeline_every: float = 5.0,
) -> Guarded:
    out, err = Path(f"{log_prefix}.out"), Path(f"{log_prefix}.err")
    load_start = os.getloadavg()
    start = last_mark = time.monotonic()
    peak, min_avail, stopped_s, killed = 0.0, float("inf"), 0.0, None
    timeline: list[tuple[float, float, float]] = []
    with out.open("w") as fo, err.open("w") as fe:
        proc = subprocess.Popen(args, stdout=fo, stderr=fe, env=env, start_new_session=True)
        while True:
            # wait4 on this pid alone: its rusage is this child's (and its reaped descendants')
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            tick = time.monotonic()
            time.sleep(interval)
            rss, cpu, stopped = tree(proc.pid)
            avail = mem_available_mb()
            now = time.monotonic()
            # the child seen stopped, or this watchdog itself stopped (its sleep overran): paused time
            stopped_s += max(interval if stopped else 0.0, now - tick - 2 * interval, 0.0)
            peak, min_avail = max(peak, rss), min(min_avail, avail)
            if now - last_mark >= timeline_every:
                timeline.append((round(now - start, 1), round(rss, 1), round(cpu, 2)))
                last_mark = now
            if rss > max_rss_gb * 1024:
                killed = "rss"
            elif avail < min_available_gb * 1024:
                killed = "available"
            elif (now - start - stopped_s) > max_minutes * 60:
                killed = "minutes"
            if killed:
                timeline.append((round(now - start, 1), round(rss, 1), round(cpu, 2)))
                os.killpg(proc.pid, signal.SIGKILL)
                _, status, usage = os.wait4(proc.pid, 0)
                break
    proc.returncode = os.waitstatus_to_exitcode(status)  # already reaped: keep Popen from waiting
    wall = time.monotonic() - start
    user, system = usage.ru_utime, usage.ru_stime
    return Guarded(
        returncode=proc.returncode,
        killed=killed,
        wall_seconds=wall,
        stopped_seconds=stopped_s,
        cpu_seconds=user + system,
        user_seconds=user,
        system_seconds=system,
        peak_tree_rss_mb=peak,
        max_single_rss_mb=usage.ru_maxrss / 1024,
        min_available_mb=min_avail,
        load_start=load_start,
        load_end=os.getloadavg(),
        stdout=str(out),
        stderr=str(err),
        timeline=timeline,
    )


def last_json_line(path: str) -> str | None:
    """The child's last stdout line that looks like a JSON object (Feast prints progress too)."""
    lines = [ln for ln in Path(path).read_text().splitlines() if ln.startswith("{")]
    return lines[-1] if lines else None
