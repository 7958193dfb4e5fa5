"""Records as JSON texts (`rawshape.Serialized`): the texts give, byte for byte, what the dict path
gives, for events_detailed's merge on odd data (escapes, unicode, a missing metric, the merged
key elsewhere in the record), and the sinks write them as they write the same records as
`orjson.Fragment`s or dicts."""

from __future__ import annotations

import asyncio
import io
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from klaviyo_source.airbyte.sink import AirbyteSink
from klaviyo_source.destinations.spool import Spool
from klaviyo_source.engine.contract import RawRecordSink, SerializedSink
from klaviyo_source.engine.rawpage import page_decoder
from klaviyo_source.streams import records as shape
from klaviyo_source.streams.rawshape import RawSlice, Serialized
from klaviyo_source.streams.table import STREAMS_BY_NAME

T = "2025-01-01T00:00:00+00:00"
ROW = STREAMS_BY_NAME["events_detailed"]


def split(records: list[dict[str, Any]], included: list[dict[str, Any]]) -> RawSlice:
    body = orjson.dumps({"data": records, "included": included})
    page = page_decoder(("attributes", "datetime"), ROW.raw_reads)(body)
    return RawSlice(page.records, page.ids, page.cursors, "datetime", page.included, page.parts)


def fast(records: list[dict[str, Any]], included: list[dict[str, Any]]) -> list[bytes]:
    assert ROW.raw_shape is not None
    texts, keys = ROW.raw_shape(split(records, included))
    assert isinstance(texts, Serialized)
    assert [k["id"] for k in keys] == [r["id"] for r in records]
    assert [orjson.dumps(f) for f in texts] == texts.texts  # the Fragments read the same
    return texts.texts


def slow(records: list[dict[str, Any]], included: list[dict[str, Any]]) -> list[bytes]:
    copies = [orjson.loads(orjson.dumps(r)) | {"datetime": r["attributes"]["datetime"]} for r in records]
    return [orjson.dumps(r) for r in shape.merge_included_page(copies, shape.Page({"included": included}))]


def event(i: int, relationships: Any, **attributes: Any) -> dict[str, Any]:
    return {
        "type": "event",
        "id": f"e{i}",
        "attributes": {"datetime": T, **attributes},
        "relationships": relationships,
        "links": {"self": f"https://a.klaviyo.com/api/events/e{i}/"},
    }


def refs(metric: Any, attributions: Any = (), **extra: Any) -> dict[str, Any]:
    return {
        "profile": {"data": {"type": "profile", "id": "01JBS6X4WG0RMGC5TQ4AVP203S"}, "links": {"self": "x"}},
        "metric": {"data": metric, "links": {"self": "y", "related": "z"}},
        "attributions": {"data": list(attributions)},
        **extra,
    }


def metric(i: str) -> dict[str, str]:
    return {"type": "metric", "id": i}


INCLUDED: list[dict[str, Any]] = [
    {"type": "metric", "id": "M1", "attributes": {"name": 'Viewed "Product" \\ é ✓ \u2028 \x01'}},
    {
        "type": "metric",
        "id": "Mé",
        "attributes": {"name": "Ünïcode"},
        "relationships": {"flow-triggers": {"links": {"self": "f"}}},
    },
    {"type": "metric", "id": 'M"q', "attributes": {"name": "quoted id"}},
    {"type": "metric", "id": "bare"},  # nothing to merge: as it is
    {"type": "attribution", "id": "A1", "attributes": {"send_time": T}},
]

ODD: list[dict[str, Any]] = [
    event(1, refs(metric("M1"))),
    event(2, refs(metric("Mé"), [{"type": "attribution", "id": "A1"}, {"type": "attribution", "id": "A9"}])),
    event(3, refs(metric("missing"))),  # not included: as it is
    event(4, refs(metric('M"q'))),  # an escape inside the relationships
    event(5, refs(metric("bare"))),
    event(6, refs(metric("M1")), data={"type": "metric", "id": "M1"}),  # the same "data": text outside them
    event(7, refs(metric("M1")), note='"data":{"type":"metric","id":"M1"}'),  # inside a string
    event(8, {"odd": 5, "metric": {"data": metric("M1")}}),  # a relationship that is no object
    event(9, {"metric": {"links": {"self": "y"}, "data": metric("M1")}}),  # links first
    event(10, {"metric": {"data": metric("M1"), "links": {"data": metric("M1")}}}),  # "data" in its links
    event(11, {"metric": {"data": None}, "attributions": {"data": []}}),
    event(12, {"a": {"data": metric("M1")}, "b": {"data": metric("M1")}}),  # the same reference twice
    event(13, refs({"type": "metric", "id": "M1", "meta": {"x": 1}})),  # extra fields kept
    event(14, refs(metric("M1")), name='ünï \u2028 \t \\ " 𝄞'),
    event(15, None),
    {"type": "event", "id": "e16", "attributes": {"datetime": T}},  # no relationships
]


def test_the_merged_texts_are_the_dict_paths_on_odd_data() -> None:
    for included in (INCLUDED, [], INCLUDED[:1]):
        assert fast(ODD, included) == slow(ODD, included), included
        for record in ODD:  # alone on a page, and among plain ones
            page = [event(100, refs(metric("M1"))), record, event(101, refs(metric("missing")))]
            assert fast(page, included) == slow(page, included), record
            assert fast([record], included) == slow([record], included), record
    merged = orjson.loads(fast(ODD[:1], INCLUDED)[0])
    assert merged["relationships"]["metric"]["data"]["name"] == INCLUDED[0]["attributes"]["name"]
    outside = orjson.loads(fast([ODD[5]], INCLUDED)[0])
    assert outside["attributes"]["data"] == {"type": "metric", "id": "M1"}  # left as it was


def lines_of(sink_call: str, records: list[dict[str, Any]]) -> list[bytes]:
    out = io.BytesIO()
    sink = AirbyteSink(out=out)
    texts = [orjson.dumps(r) for r in records]
    if sink_call == "serialized":
        asyncio.run(sink.serialized_records("events", texts))
    elif sink_call == "unbroken":
        asyncio.run(sink.serialized_records("events", texts, breaks=False))
    elif sink_call == "raw":
        asyncio.run(sink.raw_records("events", Serialized(texts)))
    else:
        asyncio.run(sink.records("events", records))
    return [
        re.sub(rb'"emitted_at":\d+}}$', b'"emitted_at":0}}', line) for line in out.getvalue().splitlines()
    ]


def test_the_airbyte_sink_writes_texts_as_it_writes_fragments_and_dicts() -> None:
    records = [orjson.loads(t) for t in slow(ODD, INCLUDED)]
    assert isinstance(AirbyteSink(), SerializedSink) and isinstance(AirbyteSink(), RawRecordSink)
    dicts = lines_of("dicts", records)
    assert lines_of("serialized", records) == dicts
    assert lines_of("unbroken", records) == dicts
    assert lines_of("raw", records) == dicts
    out = io.BytesIO()
    sink = AirbyteSink(out=out)
    asyncio.run(sink.serialized_records("events", [b'{"a":\n1,\r\n"b":"x\\ny"}', b'{"c":2}']))
    lines = out.getvalue().splitlines()
    assert [orjson.loads(line)["record"]["data"] for line in lines] == [{"a": 1, "b": "x\ny"}, {"c": 2}]
    assert lines[0].startswith(b'{"type":"RECORD","record":{"stream":"events","data":{"a": 1,')


def test_the_spool_writes_texts_as_it_writes_fragments(tmp_path: Path) -> None:
    texts = slow(ODD, INCLUDED)
    moment = datetime(2025, 1, 2, tzinfo=UTC)
    written = []
    for way in ("fragments", "texts"):
        spool = Spool(tmp_path)
        if way == "texts":
            spool.add_serialized(texts, moment)
        else:
            spool.add(list(Serialized(texts)), moment)
        taken = spool.take()
        assert taken is not None and taken.rows == len(texts)
        written.append(taken.path.read_bytes())
    assert written[0] == written[1]


def test_a_page_with_a_raw_line_break_is_marked_and_written_on_one_line() -> None:
    decode = page_decoder(("attributes", "datetime"), ROW.raw_reads)
    plain = orjson.dumps({"data": [event(1, refs(metric("M1")))], "included": INCLUDED})
    assert not decode(plain).breaks
    broken = plain.replace(b'"attributes":{', b'"attributes":\r\n {', 1)
    page = decode(broken)
    assert page.breaks
    part = RawSlice(page.records, page.ids, page.cursors, "datetime", page.included, page.parts)
    part.breaks = page.breaks
    assert ROW.raw_shape is not None
    texts, _ = ROW.raw_shape(part)
    assert isinstance(texts, Serialized) and texts.breaks
    out = io.BytesIO()
    asyncio.run(AirbyteSink(out=out).serialized_records("events_detailed", texts.texts, breaks=texts.breaks))
    (line,) = out.getvalue().splitlines()
    expected = slow([event(1, refs(metric("M1")))], INCLUDED)[0]
    assert orjson.loads(line)["record"]["data"] == orjson.loads(expected)
