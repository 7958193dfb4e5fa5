"""Connector CPU per event: engine.read of events (and events_detailed) into the Airbyte sink.

The simulator runs as `klaviyo-source simulate` in its own process, so this process's CPU time
(`time.process_time()`) is the connector's alone: HTTP client, JSON parsing, shaping, engine,
and the front's JSON output (AirbyteSink writing to /dev/null). Prints numbers, asserts nothing.

    .venv/bin/python -m bench.read_cpu [--scale medium] [--streams events,events_detailed] [--workers 10]
        [--raw]                                          # sink takes pre-serialized events
        [--latency-ms 200 --latency-per-record-ms 0.2]   # wall time shows what concurrency buys
"""

from __future__ import annotations

import argparse
import asyncio
import re
import resource
import socket
import subprocess
import sys
import time
from typing import Any

from klaviyo_simulator.server import DEFAULT_KEY
from klaviyo_source.airbyte.sink import AirbyteSink
from klaviyo_source.config import Config
from klaviyo_source.engine import read
from klaviyo_source.engine.contract import StreamSelection


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class DictsOnly:
    """The Airbyte sink without `raw_records`: the engine passes every record as a dict."""

    def __init__(self, sink: AirbyteSink) -> None:
        self.records, self.state, self.status = sink.records, sink.state, sink.status
        self.log, self.error = sink.log, sink.error


async def measure(base: str, streams: list[str], workers: int, raw: bool = False) -> None:
    config = Config(api_key=DEFAULT_KEY, base_url=base, num_workers=workers)
    with open("/dev/null", "wb") as devnull:
        airbyte = AirbyteSink(out=devnull, secrets=(DEFAULT_KEY,))
        sink: Any = airbyte if raw else DictsOnly(airbyte)
        wall, cpu = time.monotonic(), time.process_time()
        outcomes = await read(config, [StreamSelection(s, incremental=False) for s in streams], {}, sink)
        wall, cpu = time.monotonic() - wall, time.process_time() - cpu
    records = sum(o.stats.records for o in outcomes)
    events = max(o.stats.records for o in outcomes)
    requests = max(o.stats.requests for o in outcomes)
    print(f"streams={','.join(streams)} workers={workers} raw={raw}: "
          f"{records:,} records ({events:,} events), "
          f"{requests} listing requests, wall {wall:.2f} s, connector CPU {cpu:.2f} s")  # fmt: skip
    print(f"  CPU per record {cpu / records * 1e6:.2f} us; per event fetched {cpu / events * 1e6:.2f} us; "
          f"{records / wall:,.0f} records/s wall")  # fmt: skip
    for outcome in outcomes:
        print(f"  {outcome.name}: {outcome.status.value} {outcome.stats}")
    print(f"  peak RSS of this process {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", default="medium")
    parser.add_argument("--streams", default="events")
    parser.add_argument("--workers", type=int, default=10)
    parser.add_argument("--latency-ms", type=float, default=0.0, help="simulated latency per response")
    parser.add_argument("--latency-per-record-ms", type=float, default=0.0)
    parser.add_argument("--raw", action="store_true", help="sink accepts pre-serialized events (fast path)")
    args = parser.parse_args()
    port = free_port()
    command = [sys.executable, "-m", "klaviyo_source", "simulate", "--port", str(port), "--scale", args.scale]
    command += [
        "--latency-ms",
        str(args.latency_ms),
        "--latency-per-record-ms",
        str(args.latency_per_record_ms),
    ]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        base = re.search(r"http://\S+", line)
        assert base, line
        asyncio.run(measure(base.group(0), args.streams.split(","), args.workers, args.raw))
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
