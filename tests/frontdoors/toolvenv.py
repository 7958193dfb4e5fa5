"""Cached virtualenvs for the real clients the front-door tests drive (Meltano, Singer targets,
airbyte-cdk, dagster): each pins its own stack, so each gets its own venv, installed from PyPI on
first use into `~/.cache/klaviyo-source/venvs/<name>-<hash of the requirements>` and reused
afterwards (a fresh CI clone creates it; a changed pin makes a new one).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import venv
from collections.abc import Sequence
from pathlib import Path

CACHE = Path(os.environ.get("KLAVIYO_SOURCE_VENV_CACHE", Path.home() / ".cache" / "klaviyo-source" / "venvs"))
INSTALL_TIMEOUT = 1800


def tool_venv(name: str, requirements: Sequence[str]) -> Path:
    """The bin/ folder of a venv holding `requirements` (installed once, under a lock)."""
    key = hashlib.sha256("\n".join([sys.version, *requirements]).encode()).hexdigest()[:12]
    root = CACHE / f"{name}-{key}"
    stamp = root / ".installed"
    if stamp.exists():
        return root / "bin"
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another test process may be installing the same venv
        if stamp.exists():
            return root / "bin"
        shutil.rmtree(root, ignore_errors=True)
        venv.create(root, with_pip=True)
        pip = [str(root / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        try:
            subprocess.run([*pip, *requirements], check=True, timeout=INSTALL_TIMEOUT)
        except BaseException:
            shutil.rmtree(root, ignore_errors=True)
            raise
        stamp.write_text("\n".join(requirements) + "\n")
    return root / "bin"


if __name__ == "__main__":  # python tests/frontdoors/toolvenv.py NAME REQ... (pre-warm the cache)
    print(tool_venv(sys.argv[1], sys.argv[2:]))
