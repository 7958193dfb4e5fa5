"""The installed commands run as a user runs them.

`run_command` starts `.venv/bin/klaviyo-source` (or `source-klaviyo`) in a subprocess with a
clean environment, so messages, exit codes and stderr are exactly what a user sees.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from klaviyo_simulator.server import Simulator

BIN = Path(sys.executable).parent


@dataclass
class Ran:
    code: int
    out: str
    err: str


def command_env(**extra: str) -> dict[str, str]:
    """The environment of a user's shell, without the variables that change our behaviour."""
    env = {k: v for k, v in os.environ.items() if k not in ("KLAVIYO_API_KEY", "DEPLOYMENT_MODE")}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return {**env, **extra}


def run_command(
    *argv: str, cwd: Path | None = None, env: dict[str, str] | None = None, timeout: float = 120
) -> Ran:
    done = subprocess.run(
        [str(BIN / argv[0]), *argv[1:]],
        cwd=cwd,
        env=env or command_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return Ran(done.returncode, done.stdout, done.stderr)


def write_json(path: Path, document: Any) -> str:
    path.write_text(json.dumps(document))
    return str(path)


def sim_config(sim: Simulator, **extra: Any) -> dict[str, Any]:
    return {"api_key": sim.api_key, "base_url": sim.base_url, "backoff_base": 0.05, **extra}
