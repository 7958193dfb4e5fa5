"""Suite-wide guard: no test may print an API key.

`pytest_runtest_makereport` scans every captured section of every test phase (stdout, stderr,
log records) for the keys the simulator accepts and fails the test on a hit. The keys come from
the simulator's own defaults, plus any key a test registers with the `register_secret` fixture.
Output that pytest does not capture (a subprocess's pipes) is checked with the
`assert_no_secret` fixture.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable

import pytest

from klaviyo_simulator.server import DEFAULT_KEY, SimulatorOptions

pytest_plugins = [
    "pytester",  # the reliability suite runs this guard on a throwaway test
    "kit.postgres",  # the throw-away Postgres server and destination fixtures
]


def simulator_keys() -> frozenset[str]:
    """Every key a default simulator (in-process or `klaviyo-source simulate`) accepts."""
    return frozenset({DEFAULT_KEY, *SimulatorOptions().keys})


SECRETS: set[str] = set(simulator_keys())


def find_secrets(text: str | bytes, secrets: Iterable[str] = ()) -> list[str]:
    """The known (and given) secrets that occur in `text`."""
    data = text.encode() if isinstance(text, str) else text
    return sorted(s for s in {*SECRETS, *secrets} if s and s.encode() in data)


@pytest.fixture
def register_secret() -> Callable[[str], None]:
    """Add a key the test uses (e.g. a scoped simulator key) to the suite-wide scan."""
    return SECRETS.add


@pytest.fixture
def assert_no_secret() -> Callable[..., None]:
    """`assert_no_secret(stdout, stderr, ..., extra=(key,))`: fail if any output holds a key."""

    def check(*outputs: str | bytes, extra: Iterable[str] = ()) -> None:
        for number, output in enumerate(outputs):
            hits = find_secrets(output, extra)
            assert not hits, f"API key leaked in output #{number}: {len(hits)} key(s) found"

    return check


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, object, None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    # Sections accumulate over setup/call/teardown; judge each phase on its own output only.
    current = [(name, content) for name, content in report.sections if name.endswith(f" {report.when}")]
    leaked = [name for name, content in current if find_secrets(content)]
    if leaked:
        report.outcome = "failed"
        # Name the sections, never the key itself.
        report.longrepr = f"API key found in captured output: {', '.join(leaked)}"
