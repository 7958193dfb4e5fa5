"""`check` under the same faults: it retries once, caps its waits, and always answers with one
CONNECTION_STATUS (exit 0) that says what is wrong — it never hangs on a long Retry-After."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from kit.cli import run_cli
from kit.documents import make_config
from kit.sim import simulator

CASES: list[tuple[list[Any], dict[str, Any], str, str]] = [
    (["reset", "reset", "ok"], {}, "SUCCEEDED", ""),
    ([{"kind": "hang", "seconds": 30}, "ok"], {"request_timeout": 1}, "SUCCEEDED", ""),
    ([503, "ok"], {}, "SUCCEEDED", ""),
    ([503, 503, 503], {}, "FAILED", "not answering normally"),
    (["invalid_json", "invalid_json"], {}, "FAILED", "Malformed"),
    ([{"status": 429, "retry_after": 3600}], {}, "FAILED", "max_rate_limit_wait"),
]


@pytest.mark.parametrize(
    ("script", "overrides", "status", "says"),
    CASES,
    ids=["resets", "hang then ok", "503 then ok", "503 persists", "garbage persists", "Retry-After 1 h"],
)
def test_check_answers_once_under_faults(
    tmp_path: Path, script: list[Any], overrides: dict[str, Any], status: str, says: str
) -> None:
    with simulator() as sim:
        sim.controls.script("/api/metrics", script)
        result = run_cli(tmp_path, "check", in_process=True, config=make_config(sim, **overrides))
    messages = result.messages
    assert result.code == 0
    assert [m["type"] for m in messages] == ["CONNECTION_STATUS"]
    verdict = messages[0]["connectionStatus"]
    assert verdict["status"] == status, verdict
    assert says in (verdict.get("message") or "")
