"""Simulator serving benchmark: start-up time, server RSS and events/s at page size 1000.

The server runs as `klaviyo-source simulate` in its own process (one core); this process pages
through /api/events with aiohttp. Prints numbers, asserts nothing.

    .venv/bin/python -m bench.simulator_serving [--scale large] [--pages 200] [--include]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import orjson

from klaviyo_simulator.server import DEFAULT_KEY
from klaviyo_source.revision import REVISION

NEXT = re.compile(rb'"next":("[^"]*"|null)')


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (from /proc), robust to a shared, busy machine."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def page_events(base: str, pages: int, include: bool) -> tuple[int, float, float]:
    headers = {"Authorization": f"Klaviyo-API-Key {DEFAULT_KEY}", "revision": REVISION}
    query = "page[size]=1000&sort=datetime" + ("&include=metric&fields[metric]=name" if include else "")
    url: str | None = f"{base}/api/events?{query}"
    records, first = 0, 0.0
    async with aiohttp.ClientSession() as session:
        t0 = time.monotonic()
        for _ in range(pages):
            if url is None:
                break
            async with session.get(url, headers=headers) as response:
                raw = await response.read()
            first = first or time.monotonic() - t0
            # Keep the client cheap so the number reflects the server: count records and read
            # links.next from the top-level links object without parsing the whole page.
            records += raw.count(b'{"type":"event"')
            found = NEXT.search(raw, raw.rfind(b'"next":'))  # only the top-level links have "next"
            url = orjson.loads(found.group(1)) if found else None
        return records, time.monotonic() - t0, first


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", default="large")
    parser.add_argument("--pages", type=int, default=200)
    parser.add_argument("--include", action="store_true")
    args = parser.parse_args()
    port = free_port()
    command = [sys.executable, "-m", "klaviyo_source", "simulate", "--port", str(port), "--scale", args.scale]
    started = time.monotonic()
    server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        ready = time.monotonic() - started
        base = re.search(r"http://\S+", line)
        assert base, line
        print(f"scale={args.scale}: start-up (process start to listening) {ready:.2f} s, "
              f"server RSS {rss_mb(server.pid):.0f} MB")  # fmt: skip
        cpu_before = cpu_seconds(server.pid)
        records, took, first = asyncio.run(page_events(base.group(0), args.pages, args.include))
        cpu = cpu_seconds(server.pid) - cpu_before
        print(f"first page {first * 1000:.0f} ms; {records:,} events in {took:.2f} s = "
              f"{records / took:,.0f} events/s at page size 1000 (include={args.include})")  # fmt: skip
        print(f"server CPU {cpu:.2f} s -> {records / cpu:,.0f} events per server CPU-second (one core)")
        print(f"server RSS after paging: {rss_mb(server.pid):.0f} MB")
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
