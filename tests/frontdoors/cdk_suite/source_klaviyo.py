"""An airbyte-cdk `Source` whose every verb runs our real `source-klaviyo` executable.

The standard tests' Python path (`airbyte_cdk.test.standard_tests._job_runner.run_test_job`)
runs a CDK Source in-process through `AirbyteEntrypoint`; this adapter hands each verb to the
executable (path in SOURCE_KLAVIYO_EXECUTABLE) and returns what it printed, parsed with the
CDK's own models. The catalog and state files pass through untouched, so an invalid catalog is
rejected by our connector, not by the CDK's parser.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from airbyte_cdk.models import (
    AirbyteCatalog,
    AirbyteConnectionStatus,
    AirbyteMessage,
    AirbyteMessageSerializer,
    ConnectorSpecification,
    FailureType,
    Type,
)
from airbyte_cdk.sources import Source
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

EXECUTABLE = os.environ.get("SOURCE_KLAVIYO_EXECUTABLE", "source-klaviyo")


def run(verb: str, **documents: Any) -> list[AirbyteMessage]:
    with tempfile.TemporaryDirectory() as folder:
        argv = [EXECUTABLE, verb]
        for name, document in documents.items():
            if document is None:
                continue
            path = Path(folder) / f"{name}.json"
            path.write_text(json.dumps(document))
            argv += [f"--{name}", str(path)]
        done = subprocess.run(argv, capture_output=True, timeout=300, check=False)
    return [AirbyteMessageSerializer.load(json.loads(line)) for line in done.stdout.splitlines()]


def only(messages: list[AirbyteMessage], kind: Type) -> Any:
    found = [message for message in messages if message.type == kind]
    if len(found) == 1:
        return found[0]
    errors = [m.trace.error for m in messages if m.type == Type.TRACE and m.trace.error]
    if errors:
        raise AirbyteTracedException(
            message=errors[0].message,
            internal_message=errors[0].internal_message,
            failure_type=errors[0].failure_type or FailureType.system_error,
        )
    raise AssertionError(f"expected one {kind} message, got {len(found)}")


class SourceKlaviyo(Source):
    def spec(self, logger: logging.Logger) -> ConnectorSpecification:
        return only(run("spec"), Type.SPEC).spec  # type: ignore[no-any-return]

    def check(self, logger: logging.Logger, config: Mapping[str, Any]) -> AirbyteConnectionStatus:
        return only(run("check", config=dict(config)), Type.CONNECTION_STATUS).connectionStatus  # type: ignore[no-any-return]

    def discover(self, logger: logging.Logger, config: Mapping[str, Any]) -> AirbyteCatalog:
        return only(run("discover", config=dict(config)), Type.CATALOG).catalog  # type: ignore[no-any-return]

    @classmethod
    def read_catalog(cls, catalog_path: str) -> Any:
        return json.loads(Path(catalog_path).read_text())

    @classmethod
    def read_state(cls, state_path: str) -> Any:
        return json.loads(Path(state_path).read_text()) if state_path else None

    def read(
        self, logger: logging.Logger, config: Mapping[str, Any], catalog: Any, state: Any = None
    ) -> Iterator[AirbyteMessage]:
        if not isinstance(catalog, dict):  # a ConfiguredAirbyteCatalog from the CDK's helpers
            from airbyte_cdk.models import ConfiguredAirbyteCatalogSerializer

            catalog = ConfiguredAirbyteCatalogSerializer.dump(catalog)
        if state is not None and not all(isinstance(entry, dict) for entry in state):
            from airbyte_cdk.models import AirbyteStateMessageSerializer

            state = [AirbyteStateMessageSerializer.dump(entry) for entry in state]
        yield from run("read", config=dict(config), catalog=catalog, state=state or None)
