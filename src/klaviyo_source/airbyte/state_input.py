"""Parsing the `--state` document into `{stream name: stream_state}`.

Accepted shapes (all the platform and older tools produce):

* a list of AirbyteStateMessage of type `STREAM` (what the platform sends for per-stream state);
  entries wrapped as full AirbyteMessages (`{"type": "STATE", "state": {...}}`) are unwrapped;
* type `GLOBAL`: its `stream_states` are used, `shared_state` is ignored (we never emit it);
* type `LEGACY` (or an entry with only `data`): `data` is the legacy `{stream: state}` dict;
* a bare legacy dict `{stream: state}`; an empty file, `null`, `{}` or `[]` means no state.

A `stream_state` of null means no state for that stream. Streams we do not know are dropped
(reported as warnings). The meaning of each stream's state (cursor formats, Airbyte's older
shapes) is the engine's `state.py` business; here only the envelope is checked.
Anything else is a `ConfigError` saying what was expected.
"""

from __future__ import annotations

from typing import Any

from klaviyo_source.errors import ConfigError
from klaviyo_source.streams.table import STREAMS_BY_NAME

StreamStates = dict[str, Any]  # stream -> its stream_state (checked per stream by the engine)


def _state_error(detail: str) -> ConfigError:
    return ConfigError(
        f"Invalid state: {detail}. Expected a list of Airbyte state messages "
        '(e.g. [{"type": "STREAM", "stream": {"stream_descriptor": {"name": "profiles"}, '
        '"stream_state": {"updated": "2024-01-01T00:00:00+00:00"}}}]) or a {stream: state} object.'
    )


def _put(states: StreamStates, name: Any, stream_state: Any, where: str) -> None:
    if not isinstance(name, str) or not name:
        raise _state_error(f"{where} has no stream name")
    if stream_state is None:
        return
    states[name] = stream_state  # a stream_state the engine cannot read fails only its stream


def _stream_entry(states: StreamStates, stream: Any, where: str) -> None:
    if not isinstance(stream, dict) or not isinstance(stream.get("stream_descriptor"), dict):
        raise _state_error(f"{where} needs 'stream_descriptor'")
    _put(states, stream["stream_descriptor"].get("name"), stream.get("stream_state"), where)


def _legacy(states: StreamStates, data: Any, where: str) -> None:
    if not isinstance(data, dict):
        raise _state_error(f"{where}: legacy state must be an object")
    for name, stream_state in data.items():
        _put(states, name, stream_state, f"{where}[{name!r}]")


def _message(states: StreamStates, entry: Any, where: str) -> None:
    if not isinstance(entry, dict):
        raise _state_error(f"{where} must be an object")
    if entry.get("type") == "STATE" and isinstance(entry.get("state"), dict):
        entry = entry["state"]  # a whole AirbyteMessage
    kind = entry.get("type")
    if kind == "STREAM" or (kind is None and "stream" in entry):
        _stream_entry(states, entry.get("stream"), f"{where}.stream")
    elif kind == "GLOBAL":
        glob = entry.get("global")
        if not isinstance(glob, dict) or not isinstance(glob.get("stream_states"), list):
            raise _state_error(f"{where}: GLOBAL state needs global.stream_states")
        for index, stream in enumerate(glob["stream_states"]):
            _stream_entry(states, stream, f"{where}.global.stream_states[{index}]")
    elif kind == "LEGACY" or (kind is None and "data" in entry):
        _legacy(states, entry.get("data"), f"{where}.data")
    else:
        raise _state_error(f"{where} has unknown type {kind!r}")


def parse_state(raw: Any) -> tuple[StreamStates, list[str]]:
    """-> (state per known stream, warnings)."""
    states: StreamStates = {}
    if raw is None or raw == {} or raw == []:
        return states, []
    if isinstance(raw, list):
        for index, entry in enumerate(raw):
            _message(states, entry, f"state[{index}]")
    elif isinstance(raw, dict) and (
        raw.get("type") in ("STREAM", "GLOBAL", "LEGACY", "STATE") or set(raw) == {"data"}
    ):
        _message(states, raw, "state")
    elif isinstance(raw, dict):
        _legacy(states, raw, "state")
    else:
        raise _state_error("the document is neither a list nor an object")
    unknown = sorted(name for name in states if name not in STREAMS_BY_NAME)
    warnings = [f"State for unknown stream '{name}' ignored." for name in unknown]
    return {name: value for name, value in states.items() if name in STREAMS_BY_NAME}, warnings
