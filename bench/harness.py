"""Benchmark machinery shared by every connector benchmark.

* `simulator(...)`: `klaviyo-source simulate` in its **own process** (its CPU is never counted as
  the connector's), plus `stats`, `post` for its `/__sim/` admin calls.
* `run_read(...)`: `source-klaviyo read` in a subprocess, stdout to /dev/null; the child's own
  user+sys CPU and peak RSS come from `os.wait4` (the kernel's rusage of exactly that child).
* `InFlightSampler`: polls `/__sim/stats` while a read runs (requests in flight over time).
* `median_of`: the median of each numeric figure over several runs.
"""

from __future__ import annotations

import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

from klaviyo_simulator.server import DEFAULT_KEY
from klaviyo_source.streams.table import DEFAULT_STREAMS

# Every stream but the Reporting API's (as `sync` by default): their POST tier (2/min) and daily
# quota would make every catalog figure a report backfill; tests/engine/test_report_streams.py
# measures their calls.
ALL_STREAMS = DEFAULT_STREAMS
READY_TIMEOUT = 300.0  # generating a million events takes a while on a busy machine


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class Simulator:
    base_url: str
    pid: int
    flags: tuple[str, ...]
    events: int  # as the simulator announced them: what a full events read must emit
    profiles: int


def _command(verb: str) -> list[str]:
    """The console script next to this interpreter (what users run), else `python -m`."""
    script = Path(sys.executable).parent / ("source-klaviyo" if verb == "read" else "klaviyo-source")
    if script.exists():
        return [str(script), verb]
    return [sys.executable, "-m", "klaviyo_source", verb]


@contextmanager
def simulator(*flags: str) -> Iterator[Simulator]:
    """Serve `klaviyo-source simulate <flags>` on a free port of 127.0.0.1 until the block ends."""
    command = [*_command("simulate"), "--host", "127.0.0.1", "--port", str(free_port()), *flags]
    # stderr to a file: an unread pipe could fill up and stall the server mid-benchmark.
    with tempfile.TemporaryFile("w+") as errors:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=errors, text=True)
        try:
            assert process.stdout is not None
            ready = threading.Timer(READY_TIMEOUT, process.kill)
            ready.start()
            line = process.stdout.readline()
            ready.cancel()
            found = re.search(r"http://\S+", line)
            if found is None:
                process.wait(timeout=10)
                errors.seek(0)
                raise RuntimeError(f"simulator did not start: {line!r} {errors.read()[-2000:]}")
            # The next line names the (fake, local) key: read it so the pipe never fills; never print it.
            process.stdout.readline()
            sizes = re.search(r"(\d+) events, (\d+) profiles", line)
            events, profiles = (int(sizes.group(1)), int(sizes.group(2))) if sizes else (0, 0)
            yield Simulator(found.group(0), process.pid, tuple(flags), events, profiles)
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def process_cpu(pid: int) -> float:
    """User+sys CPU seconds a live process has used so far (/proc/<pid>/stat, fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _admin(base_url: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(base_url + path, data=data, method="GET" if body is None else "POST")
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"null")


def stats(base_url: str) -> dict[str, Any]:
    result: dict[str, Any] = _admin(base_url, "/__sim/stats")
    return result


def post(base_url: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
    """POST to an admin route (`/__sim/stats/reset`, `/__sim/options`, `/__sim/rate-limits/reset`)."""
    return _admin(base_url, path, body if body is not None else {})


def fresh_account(base_url: str) -> None:
    """Empty the rate-limit windows and the stats: the next read starts like an idle account's."""
    post(base_url, "/__sim/rate-limits/reset")
    post(base_url, "/__sim/stats/reset")


class Sampler:
    """Calls `sample()` every `every` seconds in a thread of the bench process (which, not the
    measured child, pays for it) while the `with` block runs; a `sample()` returning False stops."""

    def __init__(self, every: float) -> None:
        self.every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=type(self).__name__, daemon=True)

    def sample(self) -> bool:
        raise NotImplementedError

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            if not self.sample():
                return

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


class InFlightSampler(Sampler):
    """The simulator's `in_flight` (from `/__sim/stats`), every `every` seconds."""

    def __init__(self, base_url: str, every: float = 0.2) -> None:
        super().__init__(every)
        self.base_url = base_url
        self.samples: list[int] = []

    def sample(self) -> bool:
        try:
            self.samples.append(int(stats(self.base_url)["in_flight"]))
        except OSError:
            return False
        return True

    def mean(self) -> float:
        return statistics.fmean(self.samples) if self.samples else float("nan")


@dataclass(frozen=True)
class ReadUsage:
    """What one `source-klaviyo read` cost: its own process only (the simulator is another one)."""

    wall: float  # seconds
    started: (
        float  # time.monotonic() when the process was started (CLOCK_MONOTONIC, shared with the simulator)
    )
    user: float  # CPU seconds
    system: float
    peak_rss_mb: float  # ru_maxrss of the child
    exit_code: int
    stderr_tail: str = ""
    extra: dict[str, float] = field(default_factory=dict)
    records: int = 0  # RECORD lines written (run_read(count=True) only)

    @property
    def cpu(self) -> float:
        return self.user + self.system


def read_config(base_url: str, *, workers: int, **overrides: Any) -> dict[str, Any]:
    """A config for the simulator (its default fake key); no start_date = all history."""
    return {"api_key": DEFAULT_KEY, "base_url": base_url, "num_workers": workers, **overrides}


def catalog(streams: Sequence[str]) -> dict[str, Any]:
    return {
        "streams": [
            {
                "stream": {"name": name, "json_schema": {}, "supported_sync_modes": ["full_refresh"]},
                "sync_mode": "full_refresh",
                "destination_sync_mode": "overwrite",
            }
            for name in streams
        ]
    }


RECORD_MARK = b'{"type":"RECORD"'


def _count_records(stream: Any, counted: list[int]) -> None:
    """Count RECORD lines of the read's stdout (in chunks; a mark split across chunks is kept)."""
    total, carry = 0, b""
    while chunk := stream.read(1 << 20):
        buffer = carry + chunk
        total += buffer.count(RECORD_MARK)
        carry = buffer[-(len(RECORD_MARK) - 1) :]
    counted.append(total)


@dataclass(frozen=True)
class ChildRun:
    """One measured child process: its wall time, exit code, rusage (`os.wait4`: that child and the
    descendants it reaped) and the end of its stderr."""

    started: float
    wall: float
    exit_code: int
    usage: Any  # resource.struct_rusage
    stderr_tail: str


def run_child(
    command: Sequence[str],
    workdir: Path,
    *,
    timeout: float,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    watch: Callable[[subprocess.Popen[bytes]], AbstractContextManager[object]] | None = None,
    stdout: Any = None,
) -> ChildRun:
    """Run `command` (stdout to /dev/null unless given, stderr to a file in `workdir`), killed after
    `timeout` s; `watch(process)` is entered while it runs (RSS samplers, a stdout reader)."""
    if env is None:
        env = {k: v for k, v in os.environ.items() if k != "KLAVIYO_API_KEY"}
    with open(os.devnull, "wb") as devnull, open(workdir / "stderr", "w+b") as errors:
        started = time.monotonic()
        process = subprocess.Popen(
            command, stdout=devnull if stdout is None else stdout, stderr=errors, env=env, cwd=cwd
        )
        killer = threading.Timer(timeout, process.kill)
        killer.start()
        with watch(process) if watch is not None else nullcontext():
            # wait4 reports the rusage of exactly this child (RUSAGE_CHILDREN would add every child).
            _, status, usage = os.wait4(process.pid, 0)
        wall = time.monotonic() - started
        killer.cancel()
        process.returncode = os.waitstatus_to_exitcode(status)
        errors.seek(0)
        tail = errors.read()[-2000:].decode(errors="replace")
    return ChildRun(started, wall, process.returncode, usage, tail)


@contextmanager
def counting_records(process: subprocess.Popen[bytes], counted: list[int]) -> Iterator[None]:
    """While the block runs, count the RECORD lines of the process's stdout into `counted`."""
    reader = threading.Thread(target=_count_records, args=(process.stdout, counted))
    reader.start()
    try:
        yield
    finally:
        reader.join()


def run_read(
    config: Mapping[str, Any], streams: Sequence[str], *, timeout: float = 3600.0, count: bool = False
) -> ReadUsage:
    """Run one full-refresh `source-klaviyo read` to /dev/null and measure that process alone.
    `count`: stdout goes to a pipe instead and its RECORD lines are counted (`records`)."""
    with tempfile.TemporaryDirectory(prefix="klaviyo-bench-") as tmp:
        config_path, catalog_path = Path(tmp, "config.json"), Path(tmp, "catalog.json")
        config_path.write_text(json.dumps(config))
        catalog_path.write_text(json.dumps(catalog(streams)))
        command = [*_command("read"), "--config", str(config_path), "--catalog", str(catalog_path)]
        counted: list[int] = []
        run = run_child(
            command,
            Path(tmp),
            timeout=timeout,
            stdout=subprocess.PIPE if count else None,
            watch=(lambda process: counting_records(process, counted)) if count else None,
        )
    return ReadUsage(
        wall=run.wall,
        started=run.started,
        user=run.usage.ru_utime,
        system=run.usage.ru_stime,
        peak_rss_mb=run.usage.ru_maxrss / 1024,  # KiB on Linux
        exit_code=run.exit_code,
        stderr_tail=run.stderr_tail,
        records=counted[0] if counted else 0,
    )


def median_of(runs: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """Per key, the median over runs (keys missing in some runs use the runs that have them)."""
    keys = {k for run in runs for k in run}
    return {k: statistics.median(run[k] for run in runs if k in run) for k in sorted(keys)}


def served_records(snapshot: Mapping[str, Any], operation: str) -> int:
    return int(snapshot.get("records", {}).get(operation, 0))


def throttled_share(snapshot: Mapping[str, Any]) -> float:
    total = int(snapshot.get("requests_total", 0))
    return int(snapshot.get("throttled_total", 0)) / total if total else 0.0


def describe_failure(usage: ReadUsage) -> str:
    return f"read exited {usage.exit_code}: {usage.stderr_tail.strip()[-300:]}"
