"""The peer: PyAirbyte running Airbyte's own Klaviyo connector into its DuckDB cache.

    .venv/bin/python -m bench.peer [--events 20000] [--streams events|all] [--connector-alone]

Two venvs of their own, never dependencies of the project, built on first use and reused:

* `.venv-pyairbyte`: PyAirbyte (`airbyte==0.71.3`, the one `tests/conformance/test_pyairbyte.py`
  builds; its airbyte-cdk 7 cannot run the connector);
* `.venv-peer`: the connector, `airbyte-source-klaviyo==2.13.1` from PyPI (the version issues 15
  and 16 measured; it requires airbyte-cdk >=6,<7).

Pointing it at the simulator: 2.13.1 is a declarative connector whose `manifest.yaml` hard-codes
`url_base: "https://a.klaviyo.com/api/"` (and `campaigns_detailed`'s custom transformation its own
`url_base`); its config has no base-URL field. Each run copies the installed `source_klaviyo`
package into a temporary directory, replaces both with the simulator's `<base_url>/api/`, and
hands PyAirbyte (`local_executable=`) a wrapper script that runs the venv's python with that copy
first on `PYTHONPATH`. Nothing else changes: its paging, concurrency (`num_workers`), API budget
and record transformations are the connector's own.

Measured like our sync: one process tree started and reaped with `os.wait4`, whose rusage on
Linux covers the process and every descendant it waited for (PyAirbyte reaps the connector), so
CPU is the tree's; peak RSS is `ru_maxrss` (the largest single process) and the peak of the sum
of the tree's resident sets, sampled from /proc every 0.25 s.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import tempfile
import venv
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.harness import Sampler

ROOT = Path(__file__).resolve().parents[1]
PYAIRBYTE_VENV = ROOT / ".venv-pyairbyte"
PYAIRBYTE_REQUIREMENT = "airbyte==0.71.3"
PEER_VENV = ROOT / ".venv-peer"
PEER_REQUIREMENT = "airbyte-source-klaviyo==2.13.1"
KLAVIYO_URL_BASE = "https://a.klaviyo.com/api/"
# What 2.13.1's manifest declares, in its order (its catalog; no segments, no report streams).
PEER_STREAMS = (
    "profiles",
    "global_exclusions",
    "events",
    "events_detailed",
    "email_templates",
    "campaigns",
    "campaigns_detailed",
    "flows",
    "metrics",
    "lists",
    "lists_detailed",
)
PATCHED_FILES = ("manifest.yaml", "components/campaign_details_transformations.py")

SCRIPT = """
import json, sys
import airbyte as ab

config, executable, workdir = json.loads(sys.argv[1]), sys.argv[2], sys.argv[4]
streams = sys.argv[3].split(",")
source = ab.get_source("source-klaviyo", config=config, local_executable=executable)
source.select_streams(streams)
cache = ab.DuckDBCache(db_path=workdir + "/cache.duckdb", cache_dir=workdir + "/cache")
result = source.read(cache=cache, force_full_refresh=True)
counts = {name: len(dataset) for name, dataset in result.streams.items()}
with open(workdir + "/result.json", "w") as out:
    json.dump({"counts": counts, "processed": result.processed_records}, out)
"""


class PeerUnavailable(RuntimeError):
    """The peer could not be installed or pointed at the simulator (the reason is the message)."""


def _ensure_venv(path: Path, requirement: str, *, timeout: float = 1800.0) -> Path:
    """The venv's python with `requirement` installed (pip, once; a stamp file records it)."""
    python, stamp = path / "bin" / "python", path / ".installed"
    if python.exists() and stamp.exists() and stamp.read_text() == requirement:
        return python
    try:
        venv.create(path, with_pip=True, clear=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", requirement],
            check=True,
            timeout=timeout,
            capture_output=True,
        )
    except (OSError, subprocess.SubprocessError) as error:
        detail = getattr(error, "stderr", b"") or b""
        tail = " ".join(detail.decode(errors="replace").strip().splitlines()[-1:]) if detail else ""
        what = f"exit {error.returncode}" if isinstance(error, subprocess.CalledProcessError) else str(error)
        raise PeerUnavailable(f"cannot install {requirement} into {path.name} ({what}): {tail}") from error
    stamp.write_text(requirement)
    return python


def ensure_peer() -> tuple[Path, Path]:
    """(PyAirbyte's python, the connector venv's python), building either venv if missing."""
    return _ensure_venv(PYAIRBYTE_VENV, PYAIRBYTE_REQUIREMENT), _ensure_venv(PEER_VENV, PEER_REQUIREMENT)


def connector_versions(peer_python: Path) -> str:
    """`airbyte-source-klaviyo X, airbyte-cdk Y` as installed in the connector's venv."""
    code = (
        "from importlib.metadata import version as v; "
        "print(f\"airbyte-source-klaviyo {v('airbyte-source-klaviyo')}, airbyte-cdk {v('airbyte-cdk')}\")"
    )
    done = subprocess.run([str(peer_python), "-c", code], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def patched_connector(peer_python: Path, base_url: str, workdir: Path) -> Path:
    """A copy of the installed connector whose URL base is the simulator's; returns its executable."""
    where = "import source_klaviyo, os; print(os.path.dirname(source_klaviyo.__file__))"
    found = subprocess.run(
        [str(peer_python), "-c", where],
        capture_output=True,
        text=True,
        check=True,
    )
    source = Path(found.stdout.strip())
    target = workdir / "connector" / "source_klaviyo"
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
    url_base = base_url.rstrip("/") + "/api/"
    for name in PATCHED_FILES:
        path = target / name
        text = path.read_text()
        if KLAVIYO_URL_BASE not in text:
            raise PeerUnavailable(f"{name} of the installed connector has no {KLAVIYO_URL_BASE!r} to replace")
        path.write_text(text.replace(KLAVIYO_URL_BASE, url_base))
    executable = workdir / "source-klaviyo"
    executable.write_text(
        "#!/bin/sh\n"
        f"PYTHONPATH='{target.parent}' exec '{peer_python}' -c "
        "'from source_klaviyo.run import run; run()' \"$@\"\n"
    )
    executable.chmod(0o755)
    return executable


def _parents() -> dict[int, list[int]]:
    """pid -> child pids, from /proc/<pid>/stat (field 4 is the parent)."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    return children


def tree_rss_mb(root: int) -> float:
    """The sum of the resident sets of a process and all its descendants, MB."""
    children, page = _parents(), os.sysconf("SC_PAGE_SIZE")
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        todo.extend(children.get(pid, ()))
        try:
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * page
        except OSError:
            continue
    return total / (1 << 20)


class TreeRssSampler(Sampler):
    """The peak of `tree_rss_mb(pid)`, sampled every `every` seconds."""

    def __init__(self, pid: int, every: float = 0.25) -> None:
        super().__init__(every)
        self.pid, self.peak = pid, 0.0

    def sample(self) -> bool:
        self.peak = max(self.peak, tree_rss_mb(self.pid))
        return True


@dataclass(frozen=True)
class PeerUsage:
    wall: float
    cpu: float  # user + sys of the whole tree (PyAirbyte and the connector it reaped)
    peak_rss_mb: float  # ru_maxrss: the largest single process of the tree
    tree_rss_mb: float  # peak of the tree's summed resident sets (sampled)
    exit_code: int
    rows: int = 0  # rows in the cache's stream tables
    counts: dict[str, int] = field(default_factory=dict)
    stderr_tail: str = ""


def run_peer(
    base_url: str,
    api_key: str,
    streams: Sequence[str],
    *,
    workers: int,
    timeout: float = 3600.0,
    pythons: tuple[Path, Path] | None = None,
) -> PeerUsage:
    """One PyAirbyte read of `streams` from the simulator into a fresh DuckDB cache, measured."""
    from bench.harness import run_child

    pyairbyte, peer = pythons or ensure_peer()
    unknown = sorted(set(streams) - set(PEER_STREAMS))
    if unknown:
        raise PeerUnavailable(f"Airbyte's connector 2.13.1 has no stream {', '.join(unknown)}")
    with tempfile.TemporaryDirectory(prefix="klaviyo-bench-peer-") as tmp:
        workdir = Path(tmp)
        executable = patched_connector(peer, base_url, workdir)
        script = workdir / "read_with_pyairbyte.py"
        script.write_text(SCRIPT)
        config: Mapping[str, Any] = {"api_key": api_key, "num_workers": workers}
        env = {k: v for k, v in os.environ.items() if k not in ("KLAVIYO_API_KEY", "PYTHONPATH")}
        env |= {
            "DO_NOT_TRACK": "1",
            "AIRBYTE_OFFLINE_MODE": "1",
            "AIRBYTE_LOGGING_ROOT": str(workdir / "logs"),
            "AIRBYTE_CACHE_ROOT": str(workdir / "cache"),
        }
        command = [str(pyairbyte), str(script), json.dumps(config), str(executable), ",".join(streams), tmp]
        samplers: list[TreeRssSampler] = []

        def sample(process: subprocess.Popen[bytes]) -> TreeRssSampler:
            samplers.append(TreeRssSampler(process.pid))
            return samplers[0]

        # wait4: the rusage of this child and of every descendant it reaped (the connector).
        run = run_child(command, workdir, timeout=timeout, env=env, cwd=Path(tmp), watch=sample)
        sampler = samplers[0]
        result_path = workdir / "result.json"
        result = json.loads(result_path.read_text()) if result_path.exists() else {"counts": {}}
    counts = {str(k): int(v) for k, v in result["counts"].items()}
    return PeerUsage(
        wall=run.wall,
        cpu=run.usage.ru_utime + run.usage.ru_stime,
        peak_rss_mb=run.usage.ru_maxrss / 1024,
        tree_rss_mb=max(sampler.peak, run.usage.ru_maxrss / 1024),
        exit_code=run.exit_code,
        rows=sum(counts.values()),
        counts=counts,
        stderr_tail=run.stderr_tail,
    )


def run_connector_read(
    base_url: str, api_key: str, streams: Sequence[str], *, workers: int, peer_python: Path
) -> PeerUsage:
    """The connector alone, without PyAirbyte: `source-klaviyo read` of the patched copy, its
    stdout's RECORD lines counted in a thread of the bench (where the peer's cost goes)."""
    from bench.harness import catalog, counting_records, run_child

    with tempfile.TemporaryDirectory(prefix="klaviyo-bench-peer-") as tmp:
        workdir = Path(tmp)
        executable = patched_connector(peer_python, base_url, workdir)
        config, cat = workdir / "config.json", workdir / "catalog.json"
        config.write_text(json.dumps({"api_key": api_key, "num_workers": workers}))
        cat.write_text(json.dumps(catalog(streams)))
        command = [str(executable), "read", "--config", str(config), "--catalog", str(cat)]
        env = {k: v for k, v in os.environ.items() if k not in ("KLAVIYO_API_KEY", "PYTHONPATH")}
        counted: list[int] = []
        run = run_child(
            command,
            workdir,
            timeout=3600.0,
            env=env,
            cwd=workdir,
            stdout=subprocess.PIPE,
            watch=lambda process: counting_records(process, counted),
        )
    return PeerUsage(
        wall=run.wall,
        cpu=run.usage.ru_utime + run.usage.ru_stime,
        peak_rss_mb=run.usage.ru_maxrss / 1024,
        tree_rss_mb=run.usage.ru_maxrss / 1024,
        exit_code=run.exit_code,
        rows=counted[0] if counted else 0,
        stderr_tail=run.stderr_tail,
    )


def describe(usage: PeerUsage) -> str:
    return (
        f"exit {usage.exit_code}: {usage.rows:,} rows in {usage.wall:.1f} s "
        f"({usage.rows / usage.wall:,.0f}/s), CPU {usage.cpu:.1f} s "
        f"({usage.cpu * 1e6 / max(usage.rows, 1):,.0f} us/row), peak RSS {usage.peak_rss_mb:.0f} MB "
        f"(tree {usage.tree_rss_mb:.0f} MB); load {os.getloadavg()[0]:.1f}"
    )


def main(argv: Sequence[str] | None = None) -> None:
    from bench.harness import fresh_account, simulator
    from klaviyo_simulator.server import DEFAULT_KEY

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--streams", default="events", help="'events', 'all' (its catalog) or a comma list")
    parser.add_argument("--scale", default="small")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--workers", type=int, default=30)
    parser.add_argument(
        "--connector-alone",
        action="store_true",
        help="also run the connector without PyAirbyte (`read`, stdout counted), on the same simulator",
    )
    args = parser.parse_args(argv)
    streams = list(PEER_STREAMS) if args.streams == "all" else args.streams.split(",")
    pythons = ensure_peer()
    print(connector_versions(pythons[1]), flush=True)
    flags = ["--seed", str(args.seed), "--scale", args.scale, "--events", str(args.events)]
    with simulator(*flags) as sim:
        fresh_account(sim.base_url)
        usage = run_peer(sim.base_url, DEFAULT_KEY, streams, workers=args.workers, pythons=pythons)
        print(f"PyAirbyte + connector: {describe(usage)}\n{json.dumps(usage.counts)}", flush=True)
        if usage.exit_code:
            print(usage.stderr_tail)
        if args.connector_alone:
            fresh_account(sim.base_url)
            alone = run_connector_read(
                sim.base_url, DEFAULT_KEY, streams, workers=args.workers, peer_python=pythons[1]
            )
            print(f"connector alone:       {describe(alone)}")
            if alone.exit_code:
                print(alone.stderr_tail)


if __name__ == "__main__":
    main()
