"""airbyte-cdk's standard source tests against our connector, plus two acceptance tests the
standard suite leaves to the Docker-only connector-acceptance-test (CAT), reproduced here on the
same Python-entrypoint path:

- full refresh twice gives identical records: CAT `connector_acceptance_test/tests/
  test_full_refresh.py` (`TestFullRefresh.test_sequential_reads`);
- incremental with a future state reads nothing: CAT `connector_acceptance_test/tests/
  test_incremental.py` (`TestIncremental.test_read_with_future_state`); the future state is made
  from the first read's own state, every cursor moved to 2099.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from typing import Any

import yaml
from airbyte_cdk.models import (
    AirbyteStateMessageSerializer,
    ConfiguredAirbyteCatalogSerializer,
)
from airbyte_cdk.test import entrypoint_wrapper
from airbyte_cdk.test.standard_tests import SourceTestSuiteBase
from source_klaviyo import SourceKlaviyo


def _acceptance() -> dict[str, Any]:
    root = TestSourceKlaviyo.get_connector_root_dir()
    return yaml.safe_load((root / "acceptance-test-config.yml").read_text())["acceptance_tests"]  # type: ignore[no-any-return]


def _load(relative: str) -> Any:
    return json.loads((TestSourceKlaviyo.get_connector_root_dir() / relative).read_text())


def _records_by_stream(output: entrypoint_wrapper.EntrypointOutput) -> dict[str, list[str]]:
    found: dict[str, list[str]] = defaultdict(list)
    for message in output.records:
        record = message.record
        found[record.stream].append(json.dumps(record.data, sort_keys=True))
    return {stream: sorted(rows) for stream, rows in found.items()}


class TestSourceKlaviyo(SourceTestSuiteBase):
    connector = SourceKlaviyo

    def test_full_refresh_twice_identical(self) -> None:
        entry = _acceptance()["full_refresh"]["tests"][0]
        config = _load(entry["config_path"])
        catalog = ConfiguredAirbyteCatalogSerializer.load(_load(entry["configured_catalog_path"]))
        first = entrypoint_wrapper.read(SourceKlaviyo(), config, catalog)
        second = entrypoint_wrapper.read(SourceKlaviyo(), config, catalog)
        assert not first.errors and not second.errors
        expected = {stream.stream.name for stream in catalog.streams}
        # streams the acceptance config allows to be empty (one day of reports) may have no record
        empty = {e["name"] for e in _acceptance()["basic_read"]["tests"][0].get("empty_streams", [])}
        assert expected - empty <= set(_records_by_stream(first)) <= expected
        assert _records_by_stream(first) == _records_by_stream(second)

    def test_incremental_with_future_state_reads_nothing(self) -> None:
        """The future state is the state a first read saved with every cursor moved to 2099 (the
        static future_state.json cannot name list_memberships' per-list partitions in advance)."""
        entry = _acceptance()["incremental"]["tests"][0]
        config = _load(entry["config_path"])
        catalog = ConfiguredAirbyteCatalogSerializer.load(_load(entry["configured_catalog_path"]))
        first = entrypoint_wrapper.read(SourceKlaviyo(), config, catalog)
        assert not first.errors and first.records
        saved = {m.state.stream.stream_descriptor.name: m.state for m in first.state_messages}
        future = [_to_the_future(AirbyteStateMessageSerializer.dump(message)) for message in saved.values()]
        state = [AirbyteStateMessageSerializer.load(message) for message in future]
        output = entrypoint_wrapper.read(SourceKlaviyo(), config, catalog, state)
        assert not output.errors
        # Streams without a cursor re-read everything by design (documented); the others nothing.
        cursorless = {s.stream.name for s in catalog.streams if not s.stream.source_defined_cursor}
        assert [m for m in output.records if m.record.stream not in cursorless] == []
        assert {m.state.stream.stream_descriptor.name for m in output.state_messages} == {
            stream.stream.name for stream in catalog.streams
        }


def _to_the_future(value: Any) -> Any:
    """Every datetime string in a state document replaced by 2099-01-01."""
    if isinstance(value, dict):
        return {key: _to_the_future(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_to_the_future(item) for item in value]
    if isinstance(value, str) and re.match(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}", value):
        return "2099-01-01T00:00:00+00:00"
    return value
