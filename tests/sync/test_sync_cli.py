"""`klaviyo-source sync` argument handling: clear messages, exit code 2, the key never printed."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from klaviyo_source.destinations.base import WriteMode
from klaviyo_source.streams.table import STREAMS
from klaviyo_source.sync.command import main, parse_args

SECRET = "pk_secret_never_printed_123"


def config_file(tmp_path: Path, **values: object) -> str:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"api_key": SECRET, **values}))
    return str(path)


def test_defaults(tmp_path: Path) -> None:
    options = parse_args(["--config", config_file(tmp_path)], environ={})
    assert options.destination.kind == "duckdb" and options.destination.target == "klaviyo.duckdb"
    assert options.destination.schema == "klaviyo"
    assert options.write is WriteMode.DEDUP and not options.full_refresh
    assert options.streams == [row.name for row in STREAMS if row.report is None]  # reports: opt-in


def test_key_from_environment_and_destination_forms(tmp_path: Path) -> None:
    options = parse_args(
        [
            "--streams",
            "events,lists",
            "--destination",
            "postgresql://u:pw@db:5433/x?schema=kl",
            "--write",
            "overwrite",
        ],
        environ={"KLAVIYO_API_KEY": SECRET},
    )
    assert options.config.api_key == SECRET
    assert options.streams == ["events", "lists"]
    assert options.destination.kind == "postgres" and options.destination.schema == "kl"
    assert "pw" not in options.destination.display
    assert options.full_refresh  # overwrite implies a full refresh
    absolute = parse_args(["--destination", "duckdb:////tmp/a.duckdb"], environ={"KLAVIYO_API_KEY": "k"})
    assert absolute.destination.target == "/tmp/a.duckdb"
    bare = parse_args(
        ["--destination", "data/k.duckdb?schema=raw&memory_limit=2GB"], environ={"KLAVIYO_API_KEY": "k"}
    )
    assert (bare.destination.target, bare.destination.schema) == ("data/k.duckdb", "raw")
    assert bare.destination.memory_limit == "2GB"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--streams", "events,nope"], "unknown stream(s): nope"),
        (["--write", "merge"], "invalid choice"),
        (["--destination", "mysql://x/y"], "Invalid destination"),
        (["--destination", "postgresql://h:port/db"], "port"),
        (["--destination", "x.duckdb?memory_limit=lots"], "memory_limit"),
        (["--destination", "duckdb:///x.duckdb?schema=bad-name"], "schema"),
        (["--bogus"], "unrecognized arguments"),
    ],
)
def test_invalid_arguments_exit_2_with_a_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], expected: str
) -> None:
    assert main(["sync", "--config", config_file(tmp_path), *args]) == 2
    captured = capsys.readouterr()
    assert expected in captured.err
    assert SECRET not in captured.err + captured.out


def test_invalid_config_exits_2_without_the_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sync", "--config", config_file(tmp_path, num_workers=0)]) == 2
    assert main(["sync", "--config", str(tmp_path / "missing.json")]) == 2
    captured = capsys.readouterr()
    assert "num_workers" in captured.err and "Cannot read the --config file" in captured.err
    assert SECRET not in captured.err + captured.out


def test_no_config_and_no_key(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("KLAVIYO_API_KEY", raising=False)
    assert main(["sync"]) == 2
    assert "KLAVIYO_API_KEY" in capsys.readouterr().err


def test_a_database_error_while_preparing_tables_is_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "odd.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE SCHEMA klaviyo; CREATE VIEW klaviyo.events AS SELECT 1 AS id")
    assert (
        main(["sync", "--config", config_file(tmp_path), "--destination", str(path), "--streams", "events"])
        == 1
    )
    err = capsys.readouterr().err
    assert f"preparing duckdb file {path} (schema klaviyo) failed" in err
    assert SECRET not in err
