"""The suite-wide key guard of tests/conftest.py catches a key in any captured output, and a key
leaked by a subprocess is caught by the `assert_no_secret` helper."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from klaviyo_simulator.server import DEFAULT_KEY

GUARD = Path(__file__).resolve().parents[1] / "conftest.py"


def test_guard_fails_tests_that_print_a_simulator_key(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONPATH", str(GUARD.parent))  # the conftest loads the kit's plugins
    pytester.makeconftest(GUARD.read_text())
    pytester.makepyfile(
        """
        import logging
        import sys

        from klaviyo_simulator.server import DEFAULT_KEY as KEY

        def test_stdout():
            print(KEY)

        def test_stderr():
            sys.stderr.write(KEY)

        def test_log():
            logging.getLogger("x").warning("key=%s", KEY)

        def test_clean():
            print("nothing secret here")
        """
    )
    # A subprocess with --show-capture=no: the inner run must not echo the key into this test's output.
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--show-capture=no")
    result.assert_outcomes(passed=1, failed=3)
    result.stdout.fnmatch_lines(
        [
            "*API key found in captured output: Captured stdout call*",
            "*API key found in captured output: Captured stderr call*",
            "*API key found in captured output: Captured log call*",
        ],
        consecutive=False,
    )
    assert DEFAULT_KEY not in result.stdout.str()


def test_assert_no_secret_catches_a_subprocess_leak(assert_no_secret: Callable[..., None]) -> None:
    done = subprocess.run(
        [sys.executable, "-c", f"import sys; sys.stderr.write({DEFAULT_KEY!r})"],
        capture_output=True,
        check=True,
    )
    with pytest.raises(AssertionError, match="leaked"):
        assert_no_secret(done.stdout, done.stderr)
    assert_no_secret(done.stdout, b"clean")


def test_registered_keys_are_scanned_too(
    register_secret: Callable[[str], None], assert_no_secret: Callable[..., None]
) -> None:
    register_secret("pk_reliability_registered_0123456789")
    with pytest.raises(AssertionError):
        assert_no_secret("... pk_reliability_registered_0123456789 ...")
