"""The one config loader: SPEC and validation from one table, warnings, precedence, cloud mode."""

from __future__ import annotations

import io
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from klaviyo_source.airbyte.entrypoint import main as airbyte_main
from klaviyo_source.airbyte.messages import spec_message
from klaviyo_source.config import (
    SETTINGS,
    SPEC_PROPERTIES,
    START_DATE_PATTERN,
    load_config,
    parse_config,
)
from klaviyo_source.errors import ConfigError
from klaviyo_source.sync.command import parse_args

FILE_KEY = "pk_from_the_config_file_0001"
ENV_KEY = "pk_from_the_environment_0002"


def test_spec_bounds_are_the_bounds_validation_applies() -> None:
    for setting in SETTINGS:
        schema = SPEC_PROPERTIES[setting.name]
        if setting.kind not in ("integer", "number"):
            continue
        low = schema.get("minimum", schema.get("exclusiveMinimum"))
        high = schema.get("maximum")
        assert low is not None and high is not None, setting.name  # every number is bounded in the SPEC
        step = 1 if setting.kind == "integer" else 0.5
        parse_config({"api_key": "k", setting.name: high})
        with pytest.raises(ConfigError, match=f"'{setting.name}'"):
            parse_config({"api_key": "k", setting.name: high + step})
        below = low if "exclusiveMinimum" in schema else low - step
        with pytest.raises(ConfigError, match=f"'{setting.name}'"):
            parse_config({"api_key": "k", setting.name: below})
    assert SPEC_PROPERTIES["lookback_window"]["maximum"] == 3650


def test_spec_keeps_airbyte_ui_hints_and_drops_destination_fields() -> None:
    spec = spec_message()["spec"]
    assert "supported_destination_sync_modes" not in spec
    start = spec["connectionSpecification"]["properties"]["start_date"]
    assert start["format"] == "date-time" and start["pattern"] == START_DATE_PATTERN
    assert "without an offset is taken as UTC" in start["description"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-03-05", datetime(2024, 3, 5, tzinfo=UTC)),
        ("2024-03-05T10:20:30Z", datetime(2024, 3, 5, 10, 20, 30, tzinfo=UTC)),
        ("2024-03-05T10:20:30", datetime(2024, 3, 5, 10, 20, 30, tzinfo=UTC)),  # no offset: UTC
        ("2024-03-05 10:20", datetime(2024, 3, 5, 10, 20, tzinfo=UTC)),
        ("2024-03-05T12:20:30+02:00", datetime(2024, 3, 5, 10, 20, 30, tzinfo=UTC)),
        ("2024-03-05T12:20:30.5+0200", datetime(2024, 3, 5, 10, 20, 30, 500000, tzinfo=UTC)),
    ],
)
def test_start_date_forms_match_the_spec_pattern_and_parse(text: str, expected: datetime) -> None:
    assert re.match(START_DATE_PATTERN, text)
    assert parse_config({"api_key": "k", "start_date": text}).start_date == expected


@pytest.mark.parametrize("text", ["yesterday", "2024-3-5", "2024-03-05T10", "05/03/2024"])
def test_start_date_outside_the_pattern_is_refused(text: str) -> None:
    assert not re.match(START_DATE_PATTERN, text)
    with pytest.raises(ConfigError, match="'start_date' must be a past date such as 2024-01-31"):
        parse_config({"api_key": "k", "start_date": text})


def test_future_start_date_is_refused_with_the_reason() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"api_key": "k", "start_date": "2099-01-01"})
    assert "'start_date' 2099-01-01 is in the future" in caught.value.message
    assert "a sync would read nothing" in caught.value.message


def test_misspelt_key_warns_with_the_nearest_known_key() -> None:
    config, warnings = load_config({"api_key": "k", "bse_url": "http://x", "num_worker": 3}, environ={})
    assert config.base_url == "https://a.klaviyo.com"
    assert warnings == [
        "Config key 'bse_url' is not a known key and is ignored; did you mean base_url?",
        "Config key 'num_worker' is not a known key and is ignored; did you mean num_workers?",
    ]
    _, far = load_config({"api_key": "k", "zzz": 1}, environ={})
    assert far[0].startswith("Config key 'zzz' is not a known key and is ignored (known keys: api_key,")


def run_airbyte(argv: list[str]) -> tuple[int, list[dict[str, Any]]]:
    out = io.BytesIO()
    code = airbyte_main(argv, out=out)
    return code, [json.loads(line) for line in out.getvalue().splitlines()]


def test_the_config_key_wins_over_the_environment_in_both_faces(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with_key = tmp_path / "with_key.json"
    with_key.write_text(json.dumps({"api_key": FILE_KEY}))
    without_key = tmp_path / "without_key.json"
    without_key.write_text(json.dumps({"start_date": "2024-01-01"}))
    env = {"KLAVIYO_API_KEY": ENV_KEY}
    # sync
    assert parse_args(["--config", str(with_key)], environ=env).config.api_key == FILE_KEY
    assert parse_args(["--config", str(without_key)], environ=env).config.api_key == ENV_KEY
    assert parse_args([], environ=env).config.api_key == ENV_KEY
    assert "the config wins" in parse_args(["--config", str(with_key)], environ=env).warnings[0]
    # read / check / discover: the same loader
    monkeypatch.setenv("KLAVIYO_API_KEY", ENV_KEY)
    config, warnings = load_config({"api_key": FILE_KEY})
    assert (
        config.api_key == FILE_KEY
        and "KLAVIYO_API_KEY is set but the config's api_key is used" in warnings[0]
    )
    code, messages = run_airbyte(["discover", "--config", str(with_key)])
    assert code == 0 and [m["type"] for m in messages] == ["LOG", "CATALOG"]
    assert "the config wins" in messages[0]["log"]["message"]
    code, messages = run_airbyte(["discover", "--config", str(without_key)])
    assert code == 0 and [m["type"] for m in messages] == ["CATALOG"]
    captured = capsys.readouterr()
    for text in (json.dumps(messages), captured.out, captured.err):
        assert FILE_KEY not in text and ENV_KEY not in text


@pytest.mark.parametrize(
    ("base_url", "why"),
    [
        ("http://93.184.215.14", "is not https"),
        ("https://127.0.0.1:8700", "resolves to a non-public address (127.0.0.1)"),
        ("https://localhost", "resolves to a non-public address"),
        ("https://10.1.2.3", "non-public address (10.1.2.3)"),
        ("https://192.168.0.10", "non-public address"),
        ("https://169.254.169.254", "non-public address (169.254.169.254)"),  # cloud metadata
        ("https://[::1]:8443", "non-public address (::1)"),
        ("https://0.0.0.0", "non-public address"),
        ("https://240.0.0.1", "non-public address"),  # reserved
    ],
)
def test_cloud_mode_refuses_non_https_and_private_base_urls(base_url: str, why: str, tmp_path: Path) -> None:
    for mode in ("cloud", "CLOUD", "Cloud"):
        with pytest.raises(ConfigError, match=re.escape(why)):
            parse_config({"api_key": "k", "base_url": base_url}, environ={"DEPLOYMENT_MODE": mode})
    assert parse_config({"api_key": "k", "base_url": base_url}, environ={}).base_url == base_url.rstrip("/")


def test_cloud_mode_accepts_public_https_and_the_default(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cloud = {"DEPLOYMENT_MODE": "cloud"}
    assert parse_config({"api_key": "k", "base_url": "https://93.184.215.14"}, environ=cloud).base_url
    assert parse_config({"api_key": "k"}, environ=cloud).base_url == "https://a.klaviyo.com"
    monkeypatch.setenv("DEPLOYMENT_MODE", "cloud")
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"api_key": FILE_KEY, "base_url": "https://127.0.0.1:9"}))
    code, messages = run_airbyte(["check", "--config", str(path)])
    status = messages[-1]["connectionStatus"]
    assert code == 0 and status["status"] == "FAILED" and "DEPLOYMENT_MODE=cloud" in status["message"]
    code, messages = run_airbyte(["discover", "--config", str(path)])
    assert code == 1 and messages[0]["trace"]["error"]["failure_type"] == "config_error"
