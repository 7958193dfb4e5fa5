"""Pre-flight: a rejected key or an unreachable base_url stops a run at once with one message,
on both faces; `check` reports which streams the key cannot read and the scopes they need.
Everything over real sockets: the simulator (with a wrong or a scoped key) or a closed port."""

from __future__ import annotations

import io
import json
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from http_sim import GRANTED, SCOPED_KEY, SIZES

from kit.sim import simulator
from klaviyo_simulator.server import Simulator
from klaviyo_simulator.spec import all_scopes
from klaviyo_source.airbyte.entrypoint import main as airbyte_main
from klaviyo_source.endpoints import scopes_for
from klaviyo_source.http.access import probes_for
from klaviyo_source.streams.table import STREAMS, endpoint_paths
from klaviyo_source.sync.command import main as sync_main

WRONG_KEY = "pk_preflight_wrong_key_0123456789abcdef"


def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def _config(tmp_path: Path, api_key: str, base_url: str) -> str:
    config = {
        "api_key": api_key,
        "base_url": base_url,
        "start_date": "2020-01-01T00:00:00Z",
        "max_retries": 5,
    }
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    return str(path)


def _catalog(tmp_path: Path) -> str:
    streams = [
        {
            "stream": {"name": row.name, "json_schema": {}, "supported_sync_modes": ["full_refresh"]},
            "sync_mode": "full_refresh",
            "destination_sync_mode": "overwrite",
        }
        for row in STREAMS
    ]
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps({"streams": streams}))
    return str(path)


def _airbyte(argv: list[str]) -> tuple[int, list[dict[str, Any]]]:
    out = io.BytesIO()
    code = airbyte_main(argv, out=out)
    return code, [orjson.loads(line) for line in out.getvalue().splitlines()]


BadSetup = tuple[str, str, str]  # key, base_url, what the one message says


@pytest.fixture(params=["wrong key", "closed port"])
def bad_setup(
    request: pytest.FixtureRequest, sim: Simulator, register_secret: Callable[[str], None]
) -> BadSetup:
    """A key the simulator rejects, or a base_url nothing listens on."""
    if request.param == "wrong key":
        register_secret(WRONG_KEY)
        return WRONG_KEY, sim.base_url, "rejected the API key (401 on /api/tags)"
    return "pk_preflight_any_0123456789", f"http://127.0.0.1:{closed_port()}", "Could not reach Klaviyo at"


def test_airbyte_read_stops_at_once_with_one_config_error(tmp_path: Path, bad_setup: BadSetup) -> None:
    key, base_url, says = bad_setup
    started = time.monotonic()
    code, messages = _airbyte(
        ["read", "--config", _config(tmp_path, key, base_url), "--catalog", _catalog(tmp_path)]
    )
    assert time.monotonic() - started < 10  # no retries (max_retries 5 would back off for ~30 s)
    assert code == 1
    assert [m["type"] for m in messages] == ["TRACE"], messages
    error = messages[0]["trace"]["error"]
    assert error["failure_type"] == "config_error" and says in error["message"], error
    assert key not in json.dumps(messages)


def test_sync_stops_at_once_with_one_line(
    tmp_path: Path, bad_setup: BadSetup, capsys: pytest.CaptureFixture[str]
) -> None:
    key, base_url, says = bad_setup
    config = _config(tmp_path, key, base_url)
    destination = f"duckdb:///{tmp_path}/k.duckdb"
    code = sync_main(["sync", "--config", config, "--destination", destination])
    captured = capsys.readouterr()
    assert code == 1
    # (the plain progress display may print its final "0/11 streams done" tick first)
    lines = [line for line in captured.err.splitlines() if line.startswith("klaviyo-source sync: ")]
    assert len(lines) == 1 and says in lines[0], captured.err
    assert (
        "retrying" not in captured.err and f"{len(STREAMS)}/{len(STREAMS)} streams done" not in captured.err
    )
    assert "Traceback" not in captured.err and key not in captured.out + captured.err


def _check(tmp_path: Path, key: str, base_url: str) -> dict[str, Any]:
    code, messages = _airbyte(["check", "--config", _config(tmp_path, key, base_url)])
    assert code == 0 and [m["type"] for m in messages] == ["CONNECTION_STATUS"], messages
    verdict: dict[str, Any] = messages[0]["connectionStatus"]
    return verdict


def test_check_names_the_streams_a_scoped_key_cannot_read(
    tmp_path: Path, sim: Simulator, register_secret: Callable[[str], None]
) -> None:
    register_secret(SCOPED_KEY)
    before = sim.controls.stats()["requests_total"]
    verdict = _check(tmp_path, SCOPED_KEY, sim.base_url)
    assert verdict["status"] == "SUCCEEDED"
    message = verdict["message"]
    needs = {r.name: {s for path in endpoint_paths(r.name) for s in scopes_for(path)} for r in STREAMS}
    unreadable = [name for name, scopes in needs.items() if not scopes <= set(GRANTED)]
    assert f"cannot read {len(unreadable)} of {len(STREAMS)} streams" in message, message
    assert "events, events_detailed (need events:read)" in message
    assert "lists, lists_detailed" in message and "(need lists:read)" in message
    assert (
        "campaigns, campaigns_detailed, campaign_messages" in message and "(need campaigns:read)" in message
    )
    for readable in ("profiles", "global_exclusions", "email_templates", "metrics", "flows"):
        assert f"{readable}," not in message and f"{readable} (" not in message
    # one pre-flight plus one request per distinct scope the streams need
    assert sim.controls.stats()["requests_total"] - before == 1 + len(probes_for([r.name for r in STREAMS]))


def test_check_fails_when_no_stream_is_readable_and_succeeds_quietly_with_every_scope(
    tmp_path: Path, register_secret: Callable[[str], None]
) -> None:
    only_tags = "pk_preflight_only_conversations_0123456789abcdef"
    register_secret(only_tags)
    # a scope no stream needs (tags:read now serves tags and tag_groups, webhooks:read webhooks)
    with simulator(seed=5, sizes=SIZES, keys={only_tags: ["conversations:read"], "pk_full": None}) as sim:
        verdict = _check(tmp_path, only_tags, sim.base_url)
        assert verdict["status"] == "FAILED"
        assert verdict["message"].startswith("The API key cannot read any stream: ")
        assert "profiles, global_exclusions, profile_subscriptions" in verdict["message"]
        assert "list_exclusions (need profiles:read)" in verdict["message"]
        assert _check(tmp_path, "pk_full", sim.base_url) == {"status": "SUCCEEDED"}


def test_check_says_a_bad_key_or_base_url_at_once(tmp_path: Path, bad_setup: BadSetup) -> None:
    key, base_url, says = bad_setup
    verdict = _check(tmp_path, key, base_url)
    assert verdict["status"] == "FAILED" and says in verdict["message"], verdict


def test_scope_probes_cover_every_scope_the_streams_need() -> None:
    """Detail endpoints are never probed: their scopes must be covered by a listing's probe."""
    from klaviyo_source.endpoints import scopes_for

    names = [row.name for row in STREAMS]
    probed = {scope for scopes in probes_for(names).values() for scope in scopes}
    needed = {scope for name in names for path in endpoint_paths(name) for scope in scopes_for(path)}
    assert needed == probed and needed <= all_scopes()
    # a child listing counts: memberships read GET /api/lists/{id}/profiles (lists + profiles)
    fanout = {name: {s for path in endpoint_paths(name) for s in scopes_for(path)} for name in names}
    assert fanout["list_memberships"] == {"lists:read", "profiles:read"}
    assert all("{" not in path for path in probes_for(names))
