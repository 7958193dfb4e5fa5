"""The packaged JSON Schema of each stream (generated from the OpenAPI by tools/gen_schemas.py)."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any


@cache
def load_schema(stream: str) -> dict[str, Any]:
    """The JSON Schema of a stream's records (shared and cached: callers must not mutate it)."""
    text = resources.files("klaviyo_source.streams").joinpath("schemas", f"{stream}.json").read_text()
    schema: dict[str, Any] = json.loads(text)
    return schema
