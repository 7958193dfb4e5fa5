"""Conformance harness: the real CLI in a subprocess, its output validated; simulator keys and config.

`run_cli` runs `python -m klaviyo_source <verb> ...` exactly as the platform would, validates
every stdout line against the Airbyte protocol models and checks that the API key appears in
neither stdout nor stderr.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kit.protocol_check import parse_output

FULL_KEY = "pk_conformance_full_0123456789abcdef"
NO_METRICS_KEY = "pk_conformance_nometrics_0123456789"
NO_EVENTS_KEY = "pk_conformance_noevents_01234567890"
SECRETS = (FULL_KEY, NO_METRICS_KEY, NO_EVENTS_KEY)
CLI_TIMEOUT = 240


@dataclass
class CliResult:
    code: int
    messages: list[Any]
    stdout: bytes
    stderr: bytes

    def of_type(self, kind: str) -> list[Any]:
        return [m for m in self.messages if m.type.value == kind]


def scoped_keys() -> dict[str, list[str] | None]:
    from klaviyo_simulator.spec import all_scopes

    everything = sorted(all_scopes())
    return {
        FULL_KEY: None,
        NO_METRICS_KEY: [s for s in everything if s != "metrics:read"],
        NO_EVENTS_KEY: [s for s in everything if s != "events:read"],
    }


def make_config(sim: Any, **overrides: Any) -> dict[str, Any]:
    config = {
        "api_key": FULL_KEY,
        "base_url": sim.base_url,
        "start_date": "2020-01-01T00:00:00Z",
        "num_workers": 4,
        "max_retries": 1,
        "backoff_base": 0.01,
        "request_timeout": 10,
        "max_rate_limit_wait": 5,
    }
    config.update(overrides)
    return config


def run_cli(tmp_path: Path, verb: str, *, env: dict[str, str] | None = None, **documents: Any) -> CliResult:
    """Run the CLI; documents (config, catalog, state) are written to files (str = raw text)."""
    argv = [sys.executable, "-m", "klaviyo_source", verb]
    for name, document in documents.items():
        path = tmp_path / f"{verb}-{name}.json"
        path.write_text(document if isinstance(document, str) else json.dumps(document))
        argv += [f"--{name}", str(path)]
    environment = {k: v for k, v in os.environ.items() if k != "KLAVIYO_API_KEY"} | (env or {})
    done = subprocess.run(argv, capture_output=True, timeout=CLI_TIMEOUT, env=environment, check=False)
    for secret in SECRETS:
        assert secret.encode() not in done.stdout, "API key leaked to stdout"
        assert secret.encode() not in done.stderr, "API key leaked to stderr"
    assert b"Traceback" not in done.stdout
    return CliResult(done.returncode, parse_output(done.stdout), done.stdout, done.stderr)


def configured_catalog(streams: list[str], mode: str) -> dict[str, Any]:
    return {
        "streams": [
            {
                "stream": {"name": name, "json_schema": {}, "supported_sync_modes": [mode]},
                "sync_mode": mode,
                "destination_sync_mode": "append",
            }
            for name in streams
        ]
    }
