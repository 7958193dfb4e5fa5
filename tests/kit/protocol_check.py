"""Strict validation of Airbyte messages against `airbyte_protocol_models_dataclasses`.

The dataclasses do no checking themselves, so `parse_message` builds them field by field from
their type hints: required fields must be present, enums must hold a defined value, scalar types
must match and unknown keys are rejected (the JSON key `global` maps to the field `global_`).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from enum import Enum
from typing import Any, Union

import orjson
from airbyte_protocol_dataclasses.models import airbyte_protocol as protocol

_JSON_NAMES = {"global_": "global"}


class ProtocolViolation(AssertionError):
    pass


def _convert(tp: Any, value: Any, path: str) -> Any:
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None:
            if type(None) in args:
                return None
            raise ProtocolViolation(f"{path}: null not allowed")
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(arg, value, path)
            except (ProtocolViolation, ValueError) as error:
                errors.append(str(error))
        raise ProtocolViolation(f"{path}: {value!r} matches no alternative ({'; '.join(errors)})")
    if origin is list:
        if not isinstance(value, list):
            raise ProtocolViolation(f"{path}: expected a list, got {type(value).__name__}")
        (item_type,) = typing.get_args(tp)
        return [_convert(item_type, item, f"{path}[{i}]") for i, item in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict) or not all(isinstance(key, str) for key in value):
            raise ProtocolViolation(f"{path}: expected an object")
        return value
    if tp is protocol.AirbyteStateBlob:
        if not isinstance(value, dict):
            raise ProtocolViolation(f"{path}: expected an object")
        return value
    if isinstance(tp, type) and issubclass(tp, Enum):
        try:
            return tp(value)
        except ValueError:
            raise ProtocolViolation(f"{path}: {value!r} is not a valid {tp.__name__}") from None
    if dataclasses.is_dataclass(tp):
        return build(tp, value, path)  # type: ignore[arg-type]
    if tp is bool:
        ok = isinstance(value, bool)
    elif tp is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif tp is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif tp is str:
        ok = isinstance(value, str)
    else:
        raise ProtocolViolation(f"{path}: unsupported type {tp!r}")
    if not ok:
        raise ProtocolViolation(f"{path}: expected {tp.__name__}, got {value!r}")
    return value


def build(cls: type, value: Any, path: str = "$") -> Any:
    """Construct dataclass `cls` from a JSON value, strictly."""
    if not isinstance(value, dict):
        raise ProtocolViolation(f"{path}: expected an object for {cls.__name__}")
    hints = typing.get_type_hints(cls)
    fields = {_JSON_NAMES.get(f.name, f.name): f for f in dataclasses.fields(cls)}
    unknown = set(value) - set(fields)
    if unknown:
        raise ProtocolViolation(f"{path}: unknown keys {sorted(unknown)} for {cls.__name__}")
    kwargs = {}
    for key, field in fields.items():
        required = field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
        if key not in value:
            if required:
                raise ProtocolViolation(f"{path}.{key}: required by {cls.__name__}")
            continue
        kwargs[field.name] = _convert(hints[field.name], value[key], f"{path}.{key}")
    return cls(**kwargs)


def parse_message(line: bytes | str) -> protocol.AirbyteMessage:
    """One stdout line -> a validated AirbyteMessage (raises ProtocolViolation)."""
    try:
        doc = orjson.loads(line)
    except orjson.JSONDecodeError as error:
        raise ProtocolViolation(f"not JSON: {line[:200]!r} ({error})") from None
    message = build(protocol.AirbyteMessage, doc)
    payload_key = {
        "RECORD": "record",
        "STATE": "state",
        "LOG": "log",
        "SPEC": "spec",
        "CONNECTION_STATUS": "connectionStatus",
        "CATALOG": "catalog",
        "TRACE": "trace",
        "CONTROL": "control",
    }[message.type.value]
    if payload_key not in doc:
        raise ProtocolViolation(f"{message.type.value} message without '{payload_key}'")
    if message.trace is not None:
        trace_key = message.trace.type.value.lower()
        if getattr(message.trace, trace_key, None) is None:
            raise ProtocolViolation(f"TRACE {message.trace.type.value} without '{trace_key}'")
    state = message.state
    if state is not None and state.type is protocol.AirbyteStateType.STREAM and state.stream is None:
        raise ProtocolViolation("STREAM state without 'stream'")
    return message


def parse_output(stdout: bytes) -> list[protocol.AirbyteMessage]:
    """Every line of a connector's stdout, validated; blank lines are violations too."""
    lines = stdout.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return [parse_message(line) for line in lines]
