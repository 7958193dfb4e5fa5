"""`klaviyo-source simulate` in a subprocess: flags reach the server, keys and scopes apply."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest

from klaviyo_simulator import Simulator
from klaviyo_simulator.server import SimulatorOptions

from .client import fetch


@pytest.fixture
def served() -> Iterator[tuple[str, list[str]]]:
    command = [
        sys.executable,
        "-m",
        "klaviyo_source",
        "simulate",
        "--port",
        "0",
        "--seed",
        "5",
        "--events",
        "300",
        "--profiles",
        "40",
        "--key",
        "pk_cli_events:events:read",
        "--key",
        "pk_cli_all",
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(3)]
        found = re.search(r"http://127\.0\.0\.1:\d+", lines[0])
        assert found, lines
        yield found.group(0), lines
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_simulate_serves_with_the_given_sizes_and_keys(served: tuple[str, list[str]]) -> None:
    base_url, lines = served
    assert "300 events" in lines[0] and "40 profiles" in lines[0]
    # every given key is printed, with its scopes; no other key
    assert lines[1:] == [
        "API key: pk_cli_events (scopes: events:read)\n",
        "API key: pk_cli_all (all scopes)\n",
    ]
    # Simulator-shaped handle for the fetch helper (only base_url and api_key are used).
    sim = Simulator(base_url, "pk_cli_all", None, None)  # type: ignore[arg-type]
    assert len(fetch(sim, "/api/events", {"page[size]": "1000"}).body["data"]) == 300
    assert fetch(sim, "/api/events", key="pk_cli_events").status == 200
    assert fetch(sim, "/api/profiles", key="pk_cli_events").status == 403
    assert fetch(sim, "/api/profiles", key="pk_sim_full_access").status == 401  # only the given keys


def test_quirk_flags_turn_on_their_controls() -> None:
    from klaviyo_simulator.cli import options_from, parser

    controls = options_from(
        parser().parse_args(["--quirk", "space_datetimes", "--quirk", "unsorted_archived"])
    ).controls
    assert controls.quirk_space_datetimes and controls.quirk_unsorted_archived
    assert not controls.quirk_greater_than_equal
    assert not options_from(parser().parse_args([])).controls.quirk_space_datetimes


def test_options_defaults() -> None:
    options = SimulatorOptions()
    assert options.keys == {"pk_sim_full_access": None}
    assert options.host == "127.0.0.1"


def simulate(*flags: str) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable,
        "-m",
        "klaviyo_source",
        "simulate",
        "--events",
        "10",
        "--profiles",
        "5",
        *flags,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    """The run failed with exit 2 and exactly one line on stderr, no traceback, nothing on stdout."""
    assert result.returncode == 2, result
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("klaviyo-source simulate: error: ")
    return lines[0]


def test_a_port_in_use_is_one_line_and_exit_2() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = one_line_error(simulate("--port", str(port)))
    assert f"port {port} on 127.0.0.1 is already in use" in line and "--port" in line


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (("--port", "99999"), "argument --port: '99999' is not a port (0-65535"),
        (("--error-rate", "2"), "argument --error-rate: '2' is not a fraction between 0 and 1"),
        (("--predictive-503-rate", "-0.1"), "argument --predictive-503-rate: '-0.1' is not a fraction"),
        (("--events", "-5"), "argument --events: '-5' is not a count"),
        (("--latency-ms", "fast"), "argument --latency-ms: 'fast' is not a duration"),
        (("--key", "pk_x:bogus:scope"), "argument --key: unknown scope 'bogus:scope' in 'pk_x:bogus:scope'"),
        (("--key", "pk_x:"), "argument --key: 'pk_x:' lists no scopes"),
        (("--key", ":events:read"), "argument --key: ':events:read' has no key before the ':'"),
        (("--quirk", "slow"), "argument --quirk: invalid choice: 'slow'"),
    ],
)
def test_bad_values_are_refused_naming_the_flag(flags: tuple[str, ...], expected: str) -> None:
    assert expected in one_line_error(simulate(*flags))


def test_every_flag_has_help_with_its_default() -> None:
    from klaviyo_simulator.cli import parser

    options = [a for a in parser()._actions if a.option_strings != ["-h", "--help"]]
    assert options
    for action in options:
        assert action.help and "default" in action.help, action.option_strings
    shown = subprocess.run(
        [sys.executable, "-m", "klaviyo_source", "simulate", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shown.returncode == 0
    assert "(default: 8700)" in shown.stdout and "pk_sim_full_access" in shown.stdout
