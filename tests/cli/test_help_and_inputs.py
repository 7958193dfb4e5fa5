"""Every verb explains itself (--help, --version), a closed pipe is quiet, bad flags say why."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from cli_commands import BIN, command_env, run_command, write_json

from klaviyo_source.cli import package_version

KEY = "pk_never_shown_in_any_output_42"


@pytest.mark.parametrize("verb", ["spec", "check", "discover", "read"])
def test_airbyte_verbs_have_help(verb: str) -> None:
    ran = run_command("source-klaviyo", verb, "--help")
    assert ran.code == 0, ran.err
    assert ran.out.startswith(f"usage: source-klaviyo {verb}")
    assert "--help" in ran.out and "Traceback" not in ran.err and '"type"' not in ran.out
    if verb == "read":
        assert "--catalog FILE" in ran.out and "--state FILE" in ran.out


@pytest.mark.parametrize("verb", ["sync", "state", "demo", "simulate"])
def test_other_verbs_have_help(verb: str) -> None:
    ran = run_command("klaviyo-source", verb, "--help")
    assert ran.code == 0 and ran.out.startswith(f"usage: klaviyo-source {verb}"), ran.err


def test_version_and_top_level_help() -> None:
    for command in ("source-klaviyo", "klaviyo-source"):
        ran = run_command(command, "--version")
        assert (ran.code, ran.out.strip()) == (0, f"klaviyo-source {package_version()}")
        ran = run_command(command, "--help")
        assert ran.code == 0 and "verbs:" in ran.out and "state" in ran.out


@pytest.mark.parametrize("argv", [["--help"], ["read", "--help"], ["spec"]])
def test_a_reader_that_closes_the_pipe_gets_no_traceback(argv: list[str]) -> None:
    process = subprocess.Popen(
        [str(BIN / "source-klaviyo"), *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=command_env(),
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # like `| head` that has already exited
    err = process.stderr.read().decode()
    process.wait(timeout=60)
    assert "Traceback" not in err and "BrokenPipeError" not in err, err
    assert process.returncode in (0, 1, 141)


def test_an_unknown_verb_and_a_wrong_option_say_what_to_do(tmp_path: Path) -> None:
    ran = run_command("source-klaviyo", "reed")
    assert ran.code == 2 and "unknown verb 'reed'" in ran.err
    config = write_json(tmp_path / "config.json", {"api_key": KEY})
    ran = run_command("source-klaviyo", "read", "--config", config)
    assert ran.code == 1 and "--catalog" in ran.out and "source-klaviyo read --help" in ran.out
    assert KEY not in ran.out + ran.err and "Traceback" not in ran.err


@pytest.mark.parametrize(
    ("streams", "expected"),
    [
        ("", "--streams '' names no stream; give one or more of: profiles, global_exclusions"),
        (",", "--streams ',' names no stream"),
        ("events,segmentz", "unknown stream(s): segmentz; known: profiles, global_exclusions, events"),
    ],
)
def test_sync_streams_that_name_nothing_or_unknown_streams_exit_2(
    tmp_path: Path, streams: str, expected: str
) -> None:
    config = write_json(tmp_path / "config.json", {"api_key": KEY})
    ran = run_command("klaviyo-source", "sync", "--config", config, "--streams", streams, cwd=tmp_path)
    assert ran.code == 2 and expected in ran.err, ran.err
    assert KEY not in ran.out + ran.err and not list(tmp_path.glob("*.duckdb"))


def test_sync_refuses_a_future_start_date(tmp_path: Path) -> None:
    config = write_json(tmp_path / "config.json", {"api_key": KEY, "start_date": "2099-01-01"})
    ran = run_command("klaviyo-source", "sync", "--config", config, cwd=tmp_path)
    assert ran.code == 2 and "'start_date' 2099-01-01 is in the future" in ran.err
