"""Fault items, script matching and the bodies the faults produce."""

import random

import orjson
import pytest

from klaviyo_simulator.faults import (
    FaultBook,
    error_body,
    gateway_page,
    invalid_json,
    parse_item,
    predictive_503_probability,
    throttled_body,
    throttled_detail,
    truncated,
)


def test_items_of_every_form_parse() -> None:
    assert parse_item(503).kind == "status" and parse_item(503).status == 503
    assert parse_item(502).html and parse_item(504).html and not parse_item(500).html
    assert parse_item({"status": 502, "html": False}).html is False
    assert parse_item("ok").kind == "ok"
    assert parse_item(200).kind == "ok"
    for kind in ("reset", "truncated", "invalid_json", "slow_body", "cut_body", "hang"):
        assert parse_item(kind).kind == kind
    throttle = parse_item({"status": 429, "retry_after": 7})
    assert (throttle.status, throttle.retry_after) == (429, 7)
    assert parse_item(429).retry_after == 1
    forbidden = parse_item({"status": 403, "code": "permission_denied", "detail": "needs profiles:read"})
    assert (forbidden.code, forbidden.detail) == ("permission_denied", "needs profiles:read")
    assert parse_item({"kind": "slow_body", "seconds": 3}).seconds == 3.0


@pytest.mark.parametrize(
    "item",
    [
        "boom",
        "status",
        99,
        600,
        True,
        None,
        1.5,
        {"status": "503"},
        {"kind": "nope"},
        {"status": 429, "x": 1},
        {"status": 429, "retry_after": -1},
        {"kind": "hang", "seconds": -2},
    ],
)
def test_bad_items_are_rejected(item: object) -> None:
    with pytest.raises(ValueError):
        parse_item(item)


def test_scripts_match_by_prefix_method_and_query_and_run_out() -> None:
    book = FaultBook()
    book.script(
        "/api/profiles", [503, "ok"], query_contains="additional-fields[profile]=predictive_analytics"
    )
    book.script("/api/events", ["reset"], method="GET")
    assert book.take("GET", "/api/profiles", "page%5Bsize%5D=100") is None
    encoded = "additional-fields%5Bprofile%5D=subscriptions%2Cpredictive_analytics&page%5Bsize%5D=100"
    assert book.take("GET", "/api/profiles", encoded) is None  # substring must match as given
    plain = "additional-fields[profile]=predictive_analytics&page[size]=100"
    first = book.take("GET", "/api/profiles", plain)
    assert first is not None and first[1].status == 503
    second = book.take("GET", "/api/profiles", "additional-fields%5Bprofile%5D=predictive_analytics")
    assert second is not None and second[1].kind == "ok"
    assert book.take("GET", "/api/profiles", plain) is None
    assert book.take("POST", "/api/events/abc", "") is None
    taken = book.take("GET", "/api/events/abc", "")
    assert taken is not None and taken[1].kind == "reset"
    assert book.describe() == []


def test_put_back_returns_the_item_to_the_front() -> None:
    book = FaultBook()
    book.script("/api/events", ["truncated", 500])
    taken = book.take("GET", "/api/events", "")
    assert taken is not None
    book.put_back(*taken)
    assert book.describe()[0]["remaining"] == ["truncated", "500"]
    book.clear()
    assert book.take("GET", "/api/events", "") is None


def test_bad_script_path_is_rejected() -> None:
    with pytest.raises(ValueError):
        FaultBook().script("api/events", [503])


def test_predictive_probability_grows_with_page_size_and_load() -> None:
    assert predictive_503_probability(0.5, 100, 1) == 0.5
    assert predictive_503_probability(0.5, 20, 1) == pytest.approx(0.1)
    assert predictive_503_probability(0.5, 100, 3) == 1.0
    assert predictive_503_probability(0.2, 50, 3) == pytest.approx(0.2)
    assert predictive_503_probability(0.0, 100, 50) == 0.0


def test_error_bodies_have_klaviyo_shape() -> None:
    body = error_body(503, random.Random(1))
    (error,) = body["errors"]
    assert error["status"] == 503 and error["code"] == "service_unavailable"
    assert {"id", "code", "title", "detail"} <= set(error)
    (throttle,) = throttled_body(7, random.Random(1))["errors"]
    assert throttle["code"] == "throttled" and throttle["title"] == "Request was throttled."
    assert throttle["detail"] == "Request was throttled. Expected available in 7 seconds."
    assert throttled_detail(1) == "Request was throttled. Expected available in 1 second."
    assert "502 Bad Gateway" in gateway_page(502) and "cloudflare" in gateway_page(504)


@pytest.mark.parametrize("body", [b'{"data": [{"id": "1"}, {"id": "2"}]}', b"{}", b""])
def test_broken_bodies_do_not_parse(body: bytes) -> None:
    for broken in (truncated(body), invalid_json(body)):
        with pytest.raises(orjson.JSONDecodeError):
            orjson.loads(broken)
