"""API keys the tests use, and the scan that proves none of them is ever printed.

`SECRETS` holds every key a test server accepts: the simulator's defaults, the scoped keys below
and any key a test registers (`tests/conftest.py`'s `register_secret`). The suite-wide guard in
`tests/conftest.py` and the CLI runner (`kit.cli`) both scan output with `find_secrets`.
"""

from __future__ import annotations

from collections.abc import Iterable

from klaviyo_simulator.server import DEFAULT_KEY, SimulatorOptions
from klaviyo_simulator.spec import all_scopes

FULL_KEY = "pk_conformance_full_0123456789abcdef"
NO_METRICS_KEY = "pk_conformance_nometrics_0123456789"
NO_EVENTS_KEY = "pk_conformance_noevents_01234567890"
NO_SERVER_KEY = "pk_reliability_no_server_0123456789"  # for configs that reach no server

SECRETS: set[str] = {DEFAULT_KEY, *SimulatorOptions().keys, FULL_KEY, NO_METRICS_KEY, NO_EVENTS_KEY}


def without_scope(*missing: str) -> list[str]:
    """Every scope the simulator knows but `missing`."""
    return [scope for scope in sorted(all_scopes()) if scope not in missing]


def scoped_keys() -> dict[str, list[str] | None]:
    """A full-access key and two keys that each lack one scope (metrics:read, events:read)."""
    return {
        FULL_KEY: None,
        NO_METRICS_KEY: without_scope("metrics:read"),
        NO_EVENTS_KEY: without_scope("events:read"),
    }


def find_secrets(text: str | bytes, secrets: Iterable[str] = ()) -> list[str]:
    """The known (and given) secrets that occur in `text`."""
    data = text.encode() if isinstance(text, str) else text
    return sorted(s for s in {*SECRETS, *secrets} if s and s.encode() in data)


def assert_no_secret(*outputs: str | bytes, extra: Iterable[str] = ()) -> None:
    """Fail if any output holds a known key (or one of `extra`); the message never shows the key."""
    for number, output in enumerate(outputs):
        hits = find_secrets(output, extra)
        assert not hits, f"API key leaked in output #{number}: {len(hits)} key(s) found"
