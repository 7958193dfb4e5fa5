"""Shared by the Airbyte unit tests: the strict protocol validator lives with the conformance tests."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "conformance"))
