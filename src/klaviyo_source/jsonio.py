"""JSON that keeps integers of any size exact (Klaviyo's custom properties can hold them).

orjson is the fastest reader and writer, but it reads an integer beyond 64 bits as a float
(silently rounded) and refuses to write one; msgspec does both digit for digit. So documents are
read with msgspec, and writers use orjson with msgspec as the fallback for the rare value orjson
refuses (`dumps`, or a batch writer that catches `TypeError` and retries with `dumps`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec
import orjson

_decode = msgspec.json.Decoder().decode
_encode = msgspec.json.Encoder().encode


def loads(data: bytes | bytearray | memoryview | str) -> Any:
    """A JSON document; ValueError (with the parser's reason) if it is not one."""
    try:
        return _decode(data)
    except msgspec.DecodeError as error:
        raise ValueError(str(error)) from None


def dumps(value: Any, *, newline: bool = False) -> bytes:
    """`value` as JSON bytes (orjson's output; msgspec's for an integer orjson cannot write)."""
    try:
        return orjson.dumps(value, option=orjson.OPT_APPEND_NEWLINE if newline else None)
    except TypeError:  # orjson.JSONEncodeError: an integer beyond 64 bits
        data = _encode(value)
        return data + b"\n" if newline else data


def one_line(text: bytes) -> bytes:
    """A JSON text on one line: a raw line break can only sit between tokens (inside a string
    JSON escapes it), where a space means the same."""
    return text.replace(b"\n", b" ").replace(b"\r", b" ")


def record_lines(message: dict[str, Any], holder: dict[str, Any], key: str, records: Sequence[Any]) -> bytes:
    """`message` as one JSON line per record, `holder[key]` (a dict inside `message`) set to each:
    orjson's fast loop, and the whole batch again through `dumps` if orjson refuses a value."""
    dump, newline = orjson.dumps, orjson.OPT_APPEND_NEWLINE
    lines = []
    try:
        for record in records:
            holder[key] = record
            lines.append(dump(message, option=newline))
    except TypeError:  # an integer beyond 64 bits
        lines = []
        for record in records:
            holder[key] = record
            lines.append(dumps(message, newline=True))
    return b"".join(lines)
