"""The CLI in-process: spec, discover, and every config/catalog/state failure path (no network)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from kit.protocol_check import parse_output
from klaviyo_source.airbyte.entrypoint import main
from klaviyo_source.config import CONNECTION_SPECIFICATION
from klaviyo_source.streams.table import STREAMS

KEY = "pk_0123456789abcdef0123456789abcdef01"


def run(argv: list[str]) -> tuple[int, list[Any], str]:
    buffer = io.BytesIO()
    code = main(argv, out=buffer)
    raw = buffer.getvalue()
    return code, parse_output(raw), raw.decode()


def write(tmp_path: Path, name: str, content: Any) -> str:
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return str(path)


def single_config_error(code: int, out: list[Any], text: str, *needles: str) -> None:
    assert code == 1
    assert len(out) == 1, text
    error = out[0].trace.error
    assert error.failure_type.value == "config_error"
    for needle in needles:
        assert needle in error.message
    assert KEY not in text and "Traceback" not in text


def test_spec() -> None:
    code, out, _ = run(["spec"])
    assert code == 0 and len(out) == 1
    spec = out[0].spec
    assert spec.connectionSpecification == CONNECTION_SPECIFICATION
    assert spec.supportsIncremental is True
    assert spec.connectionSpecification["properties"]["api_key"]["airbyte_secret"] is True


def test_discover(tmp_path: Path) -> None:
    code, out, _ = run(["discover", "--config", write(tmp_path, "c.json", {"api_key": KEY})])
    assert code == 0 and len(out) == 1
    assert [s.name for s in out[0].catalog.streams] == [row.name for row in STREAMS]


def test_api_key_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KLAVIYO_API_KEY", KEY)
    code, out, text = run(["discover", "--config", write(tmp_path, "c.json", {})])
    assert code == 0 and out[0].catalog is not None
    monkeypatch.delenv("KLAVIYO_API_KEY")
    code, out, text = run(["discover", "--config", write(tmp_path, "c.json", {})])
    single_config_error(code, out, text, "'api_key'")


@pytest.mark.parametrize(
    ("content", "needles"),
    [
        (None, ("Cannot read the --config file",)),
        ("", ("is empty",)),
        ("{not json", ("not valid JSON",)),
        ([KEY], ("expected a JSON object",)),
        ({"api_key": KEY, "start_date": "yesterday"}, ("'start_date'",)),
        ({"api_key": KEY, "num_workers": "many"}, ("'num_workers'",)),
        ({"api_key": KEY, "base_url": f"ftp://{KEY}"}, ("'base_url'",)),
    ],
)
def test_bad_config_is_one_config_error(tmp_path: Path, content: Any, needles: tuple[str, ...]) -> None:
    path = str(tmp_path / "missing.json") if content is None else write(tmp_path, "c.json", content)
    single_config_error(*run(["discover", "--config", path]), *needles)


def test_check_with_invalid_config_reports_failed_status(tmp_path: Path) -> None:
    code, out, text = run(
        ["check", "--config", write(tmp_path, "c.json", {"api_key": KEY, "num_workers": 0})]
    )
    assert code == 0 and len(out) == 1
    assert out[0].connectionStatus.status.value == "FAILED"
    assert "'num_workers'" in out[0].connectionStatus.message
    assert KEY not in text


def test_missing_arguments_and_unknown_verb() -> None:
    single_config_error(*run(["read", "--config", "x.json"]), "--catalog")
    single_config_error(*run(["check"]), "--config")
    single_config_error(*run(["frobnicate"]), "Unknown command")


@pytest.mark.parametrize(
    ("catalog", "state", "needles"),
    [
        ("{", None, ("--catalog", "not valid JSON")),
        (
            {"streams": [{"stream": {"name": "nope"}, "sync_mode": "incremental"}]},
            None,
            ("unknown stream 'nope'",),
        ),
        (
            {"streams": [{"stream": {"name": "metrics"}, "sync_mode": "incremental"}]},
            [{"type": "STREAM"}],
            ("Invalid state",),
        ),
        (
            {"streams": [{"stream": {"name": "metrics"}, "sync_mode": "incremental"}]},
            "[[",
            ("--state", "not valid JSON"),
        ),
    ],
)
def test_bad_catalog_or_state_is_one_config_error(
    tmp_path: Path, catalog: Any, state: Any, needles: tuple[str, ...]
) -> None:
    argv = [
        "read",
        "--config",
        write(tmp_path, "c.json", {"api_key": KEY}),
        "--catalog",
        write(tmp_path, "cat.json", catalog),
    ]
    if state is not None:
        argv += ["--state", write(tmp_path, "state.json", state)]
    single_config_error(*run(argv), *needles)


def test_read_with_empty_catalog_does_nothing(tmp_path: Path) -> None:
    config = write(tmp_path, "c.json", {"api_key": KEY})
    code, out, _ = run(
        ["read", "--config", config, "--catalog", write(tmp_path, "cat.json", {"streams": []})]
    )
    assert (code, out) == (0, [])


class ClosedPipe(io.BytesIO):
    def write(self, data: object) -> int:
        raise BrokenPipeError(32, "Broken pipe")

    def flush(self) -> None:
        raise BrokenPipeError(32, "Broken pipe")


def test_closed_stdout_stops_quietly(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["spec"], out=ClosedPipe()) == 1
    assert "stdout was closed" in capsys.readouterr().err
