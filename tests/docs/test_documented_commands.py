"""The README and docs are executable: every command they show runs, against the simulator.

Extracted: each line of every ```sh block in the README's "Quick start" and "Using it" sections
and in `docs/sync.md` and `docs/airbyte.md` (a trailing backslash joins lines; `# ...` comments
are bash's). Each document runs in a fresh temporary directory, in order, under bash, with the
installed commands on PATH (and `.venv` linked in, for the `.venv/bin/...` forms). A command
fails the test when its exit code is not 0 or its stderr holds a traceback.

What the test changes, as a user trying the docs against the simulator would:
* `config.json` holds the simulator's key and `base_url` (what the README's `echo` writes, with
  `base_url` added); every config a command writes with `echo '{...}' > file.json` gets
  `base_url` too, and `pk_...` becomes the simulator's key;
* a `postgresql://...` URL becomes the test Postgres (kit.postgres);
* `simulate --port 8700` gets a free port; it serves until stopped, so it is started, must say
  where it listens, and is stopped with Ctrl-C (it must then exit 0 without a traceback);
* `make demo` runs what it runs, `klaviyo-source demo`, and every demo runs at small scale
  without progress bars (`--scale small --progress none`), to keep the suite fast.
Not re-run here: `make test` (this suite is what it runs) and `make bench` (minutes of
benchmarks; `bench/` is run by hand); nor the Python (PyAirbyte) snippet, which
tests/conformance/test_pyairbyte.py runs.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from kit.sim import sim_fixture
from klaviyo_simulator.server import Simulator

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SECTIONS = {
    "README.md": ("## Quick start", "## Using it"),
    "docs/sync.md": None,  # None: the whole file
    "docs/airbyte.md": None,
}
NOT_RERUN = ("make test", "make bench")
SMALL_DEMO = "--scale small --progress none"
_SH_BLOCK = re.compile(r"^```sh\n(.*?)^```", re.M | re.S)
_ECHO_JSON = re.compile(r"""^echo '(\{.*\})' > (\S+\.json)""")


def sections(text: str, headings: tuple[str, ...] | None) -> str:
    if headings is None:
        return text
    parts = []
    for heading in headings:
        start = text.index(heading)
        end = text.find("\n## ", start + len(heading))
        parts.append(text[start : end if end >= 0 else len(text)])
    return "\n".join(parts)


def documented_commands(document: str) -> list[str]:
    """The shell commands of a document's ```sh blocks, continuation lines joined."""
    text = sections((ROOT / document).read_text(), SECTIONS[document])
    commands = []
    for block in _SH_BLOCK.findall(text):
        pending = ""
        for line in block.splitlines():
            if line.rstrip().endswith("\\"):
                pending += line.rstrip()[:-1] + " "
                continue
            command = (pending + line).strip()
            pending = ""
            if command and not command.startswith("#"):
                commands.append(command)
    return commands


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def for_the_simulator(command: str, sim: Simulator, postgres_url: str) -> str:
    """The command as run here (see the module docstring for every change)."""
    written = _ECHO_JSON.match(command)
    if written:
        document = json.loads(written.group(1).replace("pk_...", sim.api_key))
        if "streams" not in document:  # a config, not a catalog
            document["base_url"] = sim.base_url
        command = f"echo '{json.dumps(document)}' > {written.group(2)}" + command[written.end() :]
    command = re.sub(r"^make demo\b", f"{BIN / 'klaviyo-source'} demo", command)
    command = re.sub(r"(klaviyo-source demo)\b", rf"\1 {SMALL_DEMO}", command)
    command = command.replace("pk_...", sim.api_key)
    command = re.sub(r"postgresql://\S+", postgres_url, command)
    return re.sub(r"--port \d+", f"--port {_free_port()}", command)


sim = sim_fixture(seed=5, sizes={"events": 500, "profiles": 120, "lists": 2, "campaigns": 6})


def run_simulate(command: str, cwd: Path, env: dict[str, str]) -> tuple[int, str]:
    process = subprocess.Popen(
        ["bash", "-c", f"exec {command}"],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    first = process.stdout.readline()
    process.send_signal(signal.SIGINT)
    rest, _ = process.communicate(timeout=60)
    assert "listening on http://127.0.0.1:" in first, first + rest
    return process.wait(), first + rest


@pytest.mark.parametrize("document", list(SECTIONS))
def test_every_documented_command_runs(
    document: str, sim: Simulator, postgres_url: str, tmp_path: Path, assert_no_secret: object
) -> None:
    commands = documented_commands(document)
    assert commands, f"no ```sh commands found in {document}"
    (tmp_path / ".venv").symlink_to(BIN.parent)
    config = {"api_key": sim.api_key, "base_url": sim.base_url, "start_date": "2024-01-01"}
    (tmp_path / "config.json").write_text(json.dumps(config))
    env = {k: v for k, v in os.environ.items() if k not in ("KLAVIYO_API_KEY", "DEPLOYMENT_MODE")}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    failures = []
    for documented in commands:
        if documented.startswith(NOT_RERUN):
            continue
        command = for_the_simulator(documented, sim, postgres_url)
        simulate = " simulate " in f" {command} "
        if simulate:  # its job is to print its local key; nothing else may
            code, output = run_simulate(command, tmp_path, env)
        else:
            done = subprocess.run(
                ["bash", "-o", "pipefail", "-c", command],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
            code, output = done.returncode, done.stdout[-2000:] + done.stderr
        if code != 0 or "Traceback" in output:
            failures.append(f"$ {documented}\n  exit {code}: {output.strip()[-600:]}")
        if not simulate:
            assert_no_secret(output, extra=(sim.api_key,))  # type: ignore[operator]
    assert not failures, f"{document}: {len(failures)} documented command(s) failed:\n" + "\n".join(failures)
