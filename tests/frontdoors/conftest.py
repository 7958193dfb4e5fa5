"""The front doors' key joins the suite-wide secret scan (tests/conftest.py)."""

from collections.abc import Callable

import pytest

from frontdoors.harness import KEY


@pytest.fixture(autouse=True)
def _scan_for_our_key(register_secret: Callable[[str], None]) -> None:
    register_secret(KEY)
