"""A key without one stream's scope (403): that stream fails with a config_error naming the scope,
the other streams finish and save their state, and the exit code and the final TRACE say which
stream failed and why."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from kit.cli import run_cli
from kit.documents import make_catalog, make_config
from kit.keys import without_scope
from kit.sim import simulator
from kit.truth import expected_ids

NO_EVENTS_KEY = "pk_reliability_no_events_scope_0123456789"
STREAMS = ["events", "events_detailed", "profiles", "email_templates", "flows", "metrics"]


def test_missing_events_scope_fails_only_the_events_streams(
    tmp_path: Path, register_secret: Callable[[str], None], assert_no_secret: Callable[..., None]
) -> None:
    register_secret(NO_EVENTS_KEY)
    with simulator(keys={NO_EVENTS_KEY: without_scope("events:read")}) as sim:
        config = make_config(sim, api_key=NO_EVENTS_KEY)
        result = run_cli(tmp_path, "read", config=config, catalog=make_catalog(STREAMS))
        assert_no_secret(result.stdout, result.stderr, extra=(NO_EVENTS_KEY,))
        assert result.code == 1
        for stream in ("events", "events_detailed"):
            error = result.stream_error(stream)
            assert error is not None and error["failure_type"] == "config_error", stream
            assert "events:read" in error["message"] and "403" in error["message"]
            assert result.statuses(stream)[-1] == "INCOMPLETE" and not result.records(stream)
        for stream in ("profiles", "email_templates", "flows", "metrics"):
            assert result.ids(stream) == expected_ids(sim.store, stream), stream
            assert result.statuses(stream)[-1] == "COMPLETE"
            assert result.states(stream), f"{stream} saved no state"
        final = result.errors()[-1]
        assert "stream_descriptor" not in final or final["stream_descriptor"] is None
        assert final["failure_type"] == "config_error"
        assert "events: " in final["message"] and "events_detailed: " in final["message"]
        assert "events:read" in final["message"]
        assert "profiles" not in final["message"]
