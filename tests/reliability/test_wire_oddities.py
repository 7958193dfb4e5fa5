"""What the simulator cannot serve: a `links.next` that points back to itself or to a page
already read (the read must stop with a clear error, not loop forever), and records whose values
have unexpected types, 64-bit-overflowing integers, odd unicode and very large properties (they
must pass through)."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from aiohttp import web
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from kit.cli import read_in_process
from kit.documents import make_catalog, make_config
from kit.keys import find_secrets
from kit.tiny_api import JSONAPI, jsonapi, serve

METRIC = {
    "type": "metric",
    "id": "M1",
    "attributes": {"name": "Placed Order", "created": "2024-01-01T00:00:00+00:00",
                   "updated": "2024-01-02T00:00:00+00:00", "integration": None},
}  # fmt: skip


def looping_metrics(links: dict[str, str], requests: list[str]) -> Callable[[web.Request], Any]:
    """/api/metrics?page=X answers one record and links.next = links[X] (absolute URL)."""

    async def handle(request: web.Request) -> web.Response:
        requests.append(str(request.rel_url))
        page = request.query.get("page", "first")
        target = links[page]
        next_url = str(request.url.with_path("/api/metrics").with_query({"page": target}))
        return jsonapi(
            json.dumps({"data": [METRIC], "links": {"self": str(request.url), "next": next_url}}).encode()
        )

    return handle


@pytest.mark.parametrize(
    "links",
    [{"first": "a", "a": "a"}, {"first": "a", "a": "b", "b": "a"}],
    ids=["next points to itself", "next points back two pages"],
)
def test_a_links_next_loop_stops_the_stream_with_a_clear_error(tmp_path: Path, links: dict[str, str]) -> None:
    requests: list[str] = []
    with serve({"/api/metrics": looping_metrics(links, requests)}) as base_url:
        config = make_config(None, base_url=base_url)
        result = read_in_process(tmp_path, config=config, catalog=make_catalog(["metrics"]))
    assert result.code == 1
    error = result.stream_error("metrics")
    assert error is not None and "loop" in error["message"].lower(), error
    assert result.statuses("metrics")[-1] == "INCOMPLETE"
    assert len(requests) <= len(links) + 1  # it noticed at the first repeat
    print(f"RELIABILITY next loop {list(links)}: requests={len(requests)}")


HUGE = 2**64 + 12345  # beyond unsigned 64 bits
BIG_TEXT = "\u00e9\U0001f389" * 500_000  # 1,000,000 characters, multi-byte, ~3 MB of UTF-8
DEEP: dict[str, Any] = {"leaf": True}
for _ in range(60):
    DEEP = {"next": DEEP}
ODD_PROPERTIES: dict[str, Any] = {
    "$value": HUGE,
    "negative_huge": -HUGE,
    "int64_max_plus_one": 2**63,
    "float": 1.5e300,
    "unicode": "Zo\u00eb \u4e2d\u6587 \u202eRTL\u202c \U0001f600 tab\tnew\nline \u0000nul",
    "big_text": BIG_TEXT,
    "mixed_list": [1, "a", None, True, 2.5, {"x": []}],
    "deep": DEEP,
}


def odd_event(number: int) -> dict[str, Any]:
    return {
        "type": "event",
        "id": f"EV{number}",
        "attributes": {
            "timestamp": "1704067200",  # declared integer, sent as a string
            "datetime": f"2024-01-01T00:00:{number:02d}+00:00",
            "uuid": 1234567890 + number,  # declared string, sent as a number
            "event_properties": ODD_PROPERTIES,
        },
        "relationships": {
            "metric": {"data": {"type": "metric", "id": "M1"}},
            "profile": {"data": {"type": "profile", "id": 77}},  # id as a number
        },
    }


async def odd_events(request: web.Request) -> web.Response:
    body = {
        "data": [odd_event(n) for n in range(3)],
        "included": [{"type": "metric", "id": "M1", "attributes": {"name": "\u2603 Snowman \U0001f600"}}],
        "links": {"self": str(request.url), "next": None},
    }
    return jsonapi(json.dumps(body, ensure_ascii=False).encode())  # stdlib json: ints of any size


def test_values_of_unexpected_types_pass_through(tmp_path: Path) -> None:
    with serve({"/api/events": odd_events}) as base_url:
        config = make_config(None, base_url=base_url, num_workers=1)
        result = read_in_process(
            tmp_path,
            config=config,
            catalog=make_catalog(["events", "events_detailed"]),
        )
    assert result.code == 0, result.errors()
    for stream in ("events", "events_detailed"):
        records = result.records(stream)
        assert [r["id"] for r in records] == ["EV0", "EV1", "EV2"], stream
        for number, record in enumerate(records):
            attributes = record["attributes"]
            assert attributes["uuid"] == 1234567890 + number
            assert attributes["timestamp"] == "1704067200"
            properties = attributes["event_properties"]
            # JSON numbers beyond 64 bits arrive as the nearest double (as in every JSON parser
            # without bignums); what matters is that the record is not dropped or the read failed.
            assert math.isclose(properties["$value"], HUGE) and math.isclose(
                properties["negative_huge"], -HUGE
            )
            assert properties["int64_max_plus_one"] == 2**63
            assert properties["unicode"] == ODD_PROPERTIES["unicode"]
            assert properties["big_text"] == BIG_TEXT
            assert properties["deep"] == DEEP and properties["mixed_list"] == ODD_PROPERTIES["mixed_list"]
    detailed = result.records("events_detailed")[0]
    assert detailed["relationships"]["metric"]["data"]["name"] == "\u2603 Snowman \U0001f600"
    assert result.states("events")[-1]["datetime"].startswith("2024-01-01T00:00:02")


async def metrics_with_a_bad_cursor(request: web.Request) -> web.Response:
    good = {
        "type": "metric",
        "id": "M1",
        "attributes": {"name": "ok", "updated": "2024-01-02T00:00:00+00:00"},
    }
    bad = {"type": "metric", "id": "M2", "attributes": {"name": "bad", "updated": 12345}}
    return jsonapi(json.dumps({"data": [good, bad], "links": {"next": None}}).encode())


def test_a_record_whose_cursor_is_not_a_datetime_fails_the_stream_clearly(tmp_path: Path) -> None:
    """The cursor is the one value the read cannot do without (state is built from it): the
    stream stops with an error naming the endpoint and the cursor, not a traceback or a hang."""
    with serve({"/api/metrics": metrics_with_a_bad_cursor}) as base_url:
        config = make_config(None, base_url=base_url)
        result = read_in_process(tmp_path, config=config, catalog=make_catalog(["metrics"]))
    assert result.code == 1
    error = result.stream_error("metrics")
    assert error is not None and error["failure_type"] == "system_error"
    assert "/api/metrics" in error["message"] and "12345" in error["message"]
    assert not error.get("stack_trace")
    assert not result.states("metrics") or result.states("metrics")[-1].get("updated") != "12345"


def throttled_once(retry_after: str | None, requests: list[str]) -> Callable[[web.Request], Any]:
    """/api/metrics: the first request gets 429 with the given Retry-After header, then pages."""

    async def handle(request: web.Request) -> web.Response:
        requests.append(str(request.rel_url))
        if len(requests) == 1:
            headers = {"Retry-After": retry_after} if retry_after is not None else {}
            body = {"errors": [{"status": 429, "code": "throttled", "detail": "Request was throttled."}]}
            return web.Response(
                status=429, body=json.dumps(body).encode(), headers=headers, content_type=JSONAPI
            )
        return jsonapi(json.dumps({"data": [METRIC], "links": {"next": None}}).encode())

    return handle


RETRY_AFTERS = [None, "0", "-5", "1.5", "soon", "Wed, 21 Oct 2015 07:28:00 GMT"]


@pytest.mark.parametrize("retry_after", RETRY_AFTERS, ids=[repr(v) for v in RETRY_AFTERS])
def test_odd_retry_after_headers_are_waited_out_sensibly(tmp_path: Path, retry_after: str | None) -> None:
    requests: list[str] = []
    with serve({"/api/metrics": throttled_once(retry_after, requests)}) as base_url:
        config = make_config(None, base_url=base_url, max_rate_limit_wait=5)
        result = read_in_process(tmp_path, config=config, catalog=make_catalog(["metrics"]))
    assert result.code == 0, result.errors()
    assert result.ids("metrics") == {"M1"} and len(requests) == 2


class PagePayload:
    """What the fuzzed /api/metrics answers next (set by each hypothesis example)."""

    body: bytes = b'{"data": []}'

    async def handle(self, request: web.Request) -> web.Response:
        return jsonapi(self.body)


@pytest.fixture(scope="module")
def fuzzed_metrics() -> Iterator[tuple[PagePayload, str]]:
    payload = PagePayload()
    with serve({"/api/metrics": payload.handle}) as base_url:
        yield payload, base_url


json_leaves = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_values = st.recursive(
    json_leaves,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=10,
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(attributes=st.lists(st.dictionaries(st.text(), json_values, max_size=5), min_size=1, max_size=4))
def test_any_attribute_values_pass_through_unchanged(
    attributes: list[dict[str, Any]], fuzzed_metrics: tuple[PagePayload, str], tmp_path: Path
) -> None:
    payload, base_url = fuzzed_metrics
    served = [
        {"type": "metric", "id": f"M{n}", "attributes": {**extra, "updated": "2024-01-02T00:00:00+00:00"}}
        for n, extra in enumerate(attributes)
    ]
    payload.body = json.dumps({"data": served, "links": {"next": None}}, ensure_ascii=False).encode()
    expected = msgspec.json.decode(payload.body)["data"]  # integers beyond 64 bits exactly
    assume(not find_secrets(payload.body))  # a key inside the served data would be echoed, not leaked
    result = read_in_process(
        tmp_path,
        config=make_config(None, base_url=base_url),
        catalog=make_catalog(["metrics"]),
    )
    assert result.code == 0, result.errors()
    emitted = result.records("metrics")
    assert [r["attributes"] for r in emitted] == [r["attributes"] for r in expected]
    assert all(r["updated"] == "2024-01-02T00:00:00+00:00" for r in emitted)
