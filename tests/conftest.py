"""Suite-wide guard: no test may print an API key.

`pytest_runtest_makereport` scans every captured section of every test phase (stdout, stderr,
log records) for the keys the test servers accept and fails the test on a hit. The keys come from
`kit.keys.SECRETS` (the simulator's defaults and the kit's scoped keys), plus any key a test
registers with the `register_secret` fixture.
Output that pytest does not capture (a subprocess's pipes) is checked with the
`assert_no_secret` fixture.
"""

from __future__ import annotations

from collections.abc import Callable, Generator

import pytest

from kit import keys
from kit.keys import SECRETS, find_secrets

pytest_plugins = [
    "pytester",  # the reliability suite runs this guard on a throwaway test
    "kit.postgres",  # the throw-away Postgres server and destination fixtures
]


@pytest.fixture
def register_secret() -> Callable[[str], None]:
    """Add a key the test uses (e.g. a scoped simulator key) to the suite-wide scan."""
    return SECRETS.add


@pytest.fixture
def assert_no_secret() -> Callable[..., None]:
    """`assert_no_secret(stdout, stderr, ..., extra=(key,))`: fail if any output holds a key."""
    return keys.assert_no_secret


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
