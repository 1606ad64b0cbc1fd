"""A light HTTP/1.1 load generator for `keel serve` (and the baseline), run as its own process.

Hand-written keep-alive requests over asyncio streams keep the client's own CPU cost far below an
HTTP library's, which matters when client and server share 2 cores. Two modes:

- closed loop: ``--concurrency C`` connections each send the next request when the last answered;
- open loop: ``--rate R`` requests/s spread over the connections on a fixed schedule; latency is
  measured from each request's *scheduled* time, so a stalled server cannot hide its queueing
  (no coordinated omission).

Ends by itself after ``--seconds``; prints (and writes with ``--out``) a JSON summary.

    python benchmarks/serve_load.py --url http://127.0.0.1:8000/v1/predict --bodies bodies.jsonl \
        --seconds 10 --concurrency 4
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


def _request(host: str, port: int, path: str, body: bytes, api_key: str | None) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
    )
    if api_key:
        head += f"X-API-Key: {api_key}\r\n"
    return (head + "\r\n").encode() + body


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, float | None, float | None]:
    """(status, body, model and app milliseconds from a Server-Timing header, if any)."""
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("server closed the connection")
    status = int(status_line.split()[1])
    length = 0
    model_ms = app_ms = None
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.partition(b":")
        key = name.strip().lower()
        if key == b"content-length":
            length = int(value.strip())
        elif key == b"server-timing":
            for part in value.decode().split(","):
                metric, _, dur = part.strip().partition(";dur=")
                if metric == "model":
                    model_ms = float(dur)
                elif metric == "app":
                    app_ms = float(dur)
    return status, await reader.readexactly(length), model_ms, app_ms


async def _worker(
    url: str, requests: list[bytes], offset: int, stop: float, interval: float | None, start: float,
    latencies: list[float], statuses: Counter[int], samples: list[bytes], rows: list[int],
    overheads: list[float], inside: list[float], timeline: list[tuple[float, float]],
) -> None:  # fmt: skip
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    reader, writer = await asyncio.open_connection(host, port)
    i = offset
    next_at = start + (interval or 0) * (offset / max(1, len(requests)))
    try:
        while True:
            if interval is not None:
                now = time.perf_counter()
                if next_at > now:
                    await asyncio.sleep(next_at - now)
                scheduled = next_at
                next_at += interval
            else:
                scheduled = time.perf_counter()
            if scheduled >= stop:
                break
            writer.write(requests[i % len(requests)])
            try:
                sent = time.perf_counter()
                status, body, model_ms, app_ms = await _read_response(reader)
            except (ConnectionError, asyncio.IncompleteReadError):
                statuses[-1] += 1
                writer.close()
                reader, writer = await asyncio.open_connection(host, port)
                continue
            done = time.perf_counter()
            latencies.append((done - scheduled) * 1000.0)
            timeline.append((scheduled - start, latencies[-1]))
            if model_ms is not None:
                overheads.append((done - sent) * 1000.0 - model_ms)  # e2e beyond the model's own time
                if app_ms is not None:
                    inside.append(app_ms - model_ms)  # the handler's own work beyond the model
            statuses[status] += 1
            if status == 200:
                rows[0] += body.count(b'"prediction_id"')  # predictions the server says it served
            elif len(samples) < 3:
                samples.append(body[:300])
            i += 1
    finally:
        writer.close()


async def run_load(
    url: str, bodies: list[bytes], *, seconds: float, concurrency: int, rate: float | None = None,
    api_key: str | None = None, warmup: float = 0.0,
) -> dict[str, Any]:  # fmt: skip
    parts = urlsplit(url)
    host, port, path = parts.hostname or "127.0.0.1", parts.port or 80, parts.path or "/"
    requests = [_request(host, port, path, b, api_key) for b in bodies]
    if warmup > 0:
        await run_load(url, bodies, seconds=warmup, concurrency=concurrency, api_key=api_key)
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    samples: list[bytes] = []
    rows = [0]
    overheads: list[float] = []
    inside: list[float] = []
    timeline: list[tuple[float, float]] = []
    interval = concurrency / rate if rate else None
    start = time.perf_counter()
    stop = start + seconds
    await asyncio.gather(*(
        _worker(url, requests, k * max(1, len(requests) // concurrency), stop, interval, start, latencies,
                statuses, samples, rows, overheads, inside, timeline)
        for k in range(concurrency)
    ))  # fmt: skip
    elapsed = time.perf_counter() - start
    ok = statuses.get(200, 0)
    return {
        "requests": sum(statuses.values()),
        "ok": ok,
        "predictions": rows[0],
        "errors": sum(v for k, v in statuses.items() if k != 200),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "seconds": elapsed,
        "rps": ok / elapsed,
        "p50_ms": percentile(latencies, 50),
        "p90_ms": percentile(latencies, 90),
        "p99_ms": percentile(latencies, 99),
        "overhead_p50_ms": percentile(overheads, 50) if overheads else None,
        "overhead_p90_ms": percentile(overheads, 90) if overheads else None,
        "handler_overhead_p50_ms": percentile(inside, 50) if inside else None,
        "concurrency": concurrency,
        "rate": rate,
        "error_samples": [s.decode("utf-8", "replace") for s in samples],
        "windows": windows(timeline, WINDOW_S),
    }


WINDOW_S = 10.0


def windows(timeline: list[tuple[float, float]], width: float) -> list[dict[str, float]]:
    """Requests by scheduled time in ``width``-second windows: when a run stalled, and for how long."""
    by_window: dict[int, list[float]] = {}
    for at, ms in timeline:
        by_window.setdefault(int(at // width), []).append(ms)
    return [
        {"start_s": k * width, "requests": len(v), "p50_ms": percentile(v, 50), "p99_ms": percentile(v, 99),
         "max_ms": max(v)}
        for k, v in sorted(by_window.items())
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", required=True)
    parser.add_argument("--bodies", type=Path, required=True, help="one JSON request body per line")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--rate", type=float, default=None, help="open loop at this many requests/s")
    parser.add_argument("--warmup", type=float, default=0.0)
    parser.add_argument("--api-key-env", default=None, help="send the key in this env var as X-API-Key")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    bodies = [line.encode() for line in args.bodies.read_text().splitlines() if line.strip()]
    key = os.environ.get(args.api_key_env) if args.api_key_env else None
    result = asyncio.run(run_load(args.url, bodies, seconds=args.seconds, concurrency=args.concurrency,
                                  rate=args.rate, api_key=key, warmup=args.warmup))  # fmt: skip
    text = json.dumps(result)
    if args.out is not None:
        args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
