"""Integers beyond 64 bits (Klaviyo's custom properties can hold them) keep every digit: read
from a page, written by the Airbyte and Singer faces (orjson alone would round or refuse them)."""

from __future__ import annotations

import asyncio
import io

import msgspec
import pytest

from klaviyo_source import jsonio
from klaviyo_source.airbyte.sink import AirbyteSink
from klaviyo_source.http.client import decode_document
from klaviyo_source.singer.catalog import SingerStream
from klaviyo_source.singer.sink import SingerSink

HUGE = 123456789012345678901234567890


def test_a_page_keeps_an_integer_beyond_64_bits_exactly() -> None:
    page = b'{"data": [{"id": "M1", "attributes": {"n": 123456789012345678901234567890, "x": 1.5}}]}'
    record = decode_document(page)["data"][0]
    assert record["attributes"] == {"n": HUGE, "x": 1.5}
    with pytest.raises(ValueError, match="invalid JSON"):
        decode_document(b'{"data": [}')


def test_dumps_writes_what_orjson_refuses() -> None:
    assert jsonio.dumps({"n": HUGE}) == b'{"n":123456789012345678901234567890}'
    assert jsonio.dumps({"n": 1}, newline=True) == b'{"n":1}\n'


def test_both_faces_emit_every_digit() -> None:
    records = [{"id": "a", "n": 1}, {"id": "b", "n": HUGE, "deep": [{"m": -HUGE}]}]
    airbyte = AirbyteSink(out=io.BytesIO())
    singer = SingerSink({"metrics": SingerStream("metrics", incremental=True)}, out=io.BytesIO())
    asyncio.run(airbyte.records("metrics", records))
    asyncio.run(singer.records("metrics", records))
    decode = msgspec.json.Decoder().decode
    emitted = [decode(line)["record"]["data"] for line in airbyte.out.getvalue().splitlines()]  # type: ignore[attr-defined]
    assert emitted == records
    sung = [decode(line)["record"] for line in singer.out.getvalue().splitlines()]  # type: ignore[attr-defined]
    assert sung == records
