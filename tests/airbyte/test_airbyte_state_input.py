"""State documents in every shape the platform and older tools produce."""

from __future__ import annotations

from typing import Any

import pytest

from klaviyo_source.airbyte.state_input import parse_state
from klaviyo_source.errors import ConfigError

PROFILES = {"updated": "2024-09-03T10:00:00+00:00"}
CAMPAIGNS = {
    "updated_at": "2024-09-06T00:00:00+00:00",
    "archived": {"updated_at": "2024-09-01T00:00:00+00:00"},
}


def stream_message(name: str, state: Any) -> dict[str, Any]:
    return {"type": "STREAM", "stream": {"stream_descriptor": {"name": name}, "stream_state": state}}


@pytest.mark.parametrize("empty", [None, {}, []])
def test_empty_state(empty: Any) -> None:
    assert parse_state(empty) == ({}, [])


def test_list_of_stream_messages() -> None:
    raw = [stream_message("profiles", PROFILES), stream_message("campaigns", CAMPAIGNS)]
    assert parse_state(raw) == ({"profiles": PROFILES, "campaigns": CAMPAIGNS}, [])


def test_wrapped_airbyte_messages_and_null_stream_state() -> None:
    raw = [{"type": "STATE", "state": stream_message("profiles", PROFILES)}, stream_message("flows", None)]
    assert parse_state(raw) == ({"profiles": PROFILES}, [])


def test_global_state_uses_stream_states() -> None:
    raw = [
        {
            "type": "GLOBAL",
            "global": {
                "shared_state": {"x": 1},
                "stream_states": [stream_message("profiles", PROFILES)["stream"]],
            },
        }
    ]
    assert parse_state(raw) == ({"profiles": PROFILES}, [])


def test_legacy_shapes() -> None:
    assert parse_state({"profiles": PROFILES}) == ({"profiles": PROFILES}, [])
    assert parse_state([{"type": "LEGACY", "data": {"campaigns": CAMPAIGNS}}]) == (
        {"campaigns": CAMPAIGNS},
        [],
    )
    assert parse_state({"data": {"profiles": PROFILES}}) == ({"profiles": PROFILES}, [])


def test_unknown_streams_are_dropped_with_a_warning() -> None:
    states, warnings = parse_state(
        [stream_message("charges", {"updated": "x"}), stream_message("profiles", PROFILES)]
    )
    assert states == {"profiles": PROFILES}
    assert warnings == ["State for unknown stream 'charges' ignored."]


def test_a_stream_state_that_is_not_an_object_goes_to_the_engine() -> None:
    """Only the envelope is checked here: the engine reads (or refuses) each stream's state, so
    one bad stream_state fails that stream alone."""
    assert parse_state([stream_message("profiles", "2024-01-01")]) == ({"profiles": "2024-01-01"}, [])
    assert parse_state({"profiles": ["2024-01-01"]}) == ({"profiles": ["2024-01-01"]}, [])


@pytest.mark.parametrize(
    "raw",
    [
        "profiles",
        17,
        [1],
        [{"type": "STREAM"}],
        [{"type": "STREAM", "stream": {"stream_descriptor": {}, "stream_state": {}}}],
        [{"type": "GLOBAL", "global": {}}],
        [{"type": "BOGUS"}],
    ],
)
def test_corrupt_state_is_a_config_error(raw: Any) -> None:
    with pytest.raises(ConfigError, match="Invalid state"):
        parse_state(raw)
