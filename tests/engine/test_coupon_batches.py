"""coupon_codes names its coupons in batches (`Fanout.batch`): one GET /api/coupon-codes per
page of coupons, `any(coupon.id,[...])`, instead of one per coupon. Over a real socket: every
code exactly once with its coupon_id, incremental re-reading everything (state {}), and the
request count ceil(codes / 100) per batch."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import aiohttp
from jsonschema import Draft7Validator

from kit.sim import run_against_simulator
from kit.sink import CollectingSink, without_keys
from kit.truth import expected
from klaviyo_simulator.server import Simulator
from klaviyo_source.config import Config
from klaviyo_source.engine import read
from klaviyo_source.engine.contract import StreamSelection, StreamStatus
from klaviyo_source.engine.params import MAX_FILTER_CHARS, fanout_params, parent_batches
from klaviyo_source.revision import REVISION
from klaviyo_source.streams.schema import load_schema
from klaviyo_source.streams.table import STREAMS_BY_NAME, Fanout

# 105 coupons: two pages of coupons (100 + 5), so two batches; codes 0, 1 or several pages each.
SIZES = {"coupons": 105, "profiles": 200, "events": 100, "lists": 2, "campaigns": 4}
FANOUT = STREAMS_BY_NAME["coupon_codes"].fanout
assert FANOUT is not None and FANOUT.batch is not None


def config(sim: Simulator, **overrides: Any) -> Config:
    values: dict[str, Any] = dict(
        api_key=sim.api_key, base_url=sim.base_url, backoff_base=0.01, max_retries=2
    )
    return Config(**(values | overrides))


async def coupon_pages(sim: Simulator) -> list[list[str]]:
    """The coupons listing's pages of ids, as the server lists them (100 a page)."""
    headers = {"Authorization": f"Klaviyo-API-Key {sim.api_key}", "revision": REVISION}
    pages: list[list[str]] = []
    url: str | None = f"{sim.base_url}/api/coupons?page[size]=100"
    async with aiohttp.ClientSession(headers=headers) as session:
        while url:
            async with session.get(url) as response:
                doc = await response.json(content_type=None)
            pages.append([c["id"] for c in doc["data"]])
            url = doc["links"].get("next")
    return pages


def codes_per_coupon(sim: Simulator) -> dict[str, int]:
    out: dict[str, int] = {}
    for code in sim.store.records("coupon-code"):
        out[code.hidden["coupon.id"]] = out.get(code.hidden["coupon.id"], 0) + 1
    return out


async def sync(
    sim: Simulator, states: dict[str, Any] | None = None, *, incremental: bool
) -> tuple[CollectingSink, int]:
    """One read of coupon_codes, and the GET /api/coupon-codes requests it made."""
    sink = CollectingSink()
    before = sim.controls.stats()["requests"].get("get_coupon_codes", 0)
    outcomes = await read(
        config(sim, num_workers=4),
        [StreamSelection("coupon_codes", incremental=incremental)],
        states or {},
        sink,
    )
    assert [o.status for o in outcomes] == [StreamStatus.COMPLETE], [o.error for o in outcomes]
    return sink, sim.controls.stats()["requests"]["get_coupon_codes"] - before


def test_batched_full_refresh_then_incremental_read_every_code_once_in_the_fewest_requests() -> None:
    async def body(sim: Simulator) -> None:
        pages = await coupon_pages(sim)
        assert [len(p) for p in pages] == [100, 5]
        per_coupon = codes_per_coupon(sim)
        assert 0 in [per_coupon.get(c, 0) for p in pages for c in p]  # coupons without codes too
        truth = expected(sim.store)["coupon_codes"]
        owner = {c.id: c.hidden["coupon.id"] for c in sim.store.records("coupon-code")}
        batches = [group for page in pages for group in parent_batches(FANOUT, page)]
        assert [len(g) for g in batches] == [100, 5]
        least = sum(max(1, math.ceil(sum(per_coupon.get(c, 0) for c in g) / 100)) for g in batches)
        one_each = sum(max(1, math.ceil(per_coupon.get(c, 0) / 100)) for p in pages for c in p)

        first, requests = await sync(sim, incremental=False)
        validator = Draft7Validator(load_schema("coupon_codes"))
        codes = first.records_of("coupon_codes")
        ids = [str(c["id"]) for c in codes]
        assert len(ids) == len(set(ids)) and set(ids) == set(truth)
        assert all(owner[c["id"]] == c["coupon_id"] for c in codes)
        assert all(not list(validator.iter_errors(c)) for c in codes)
        assert requests == least
        assert least < one_each / 2  # was one listing (or more) per coupon: 158 here, now 72

        state = first.states_of("coupon_codes")[-1]
        assert without_keys(state) == {}
        second, requests = await sync(sim, {"coupon_codes": state}, incremental=True)
        again = [str(c["id"]) for c in second.records_of("coupon_codes")]
        assert len(again) == len(set(again)) and set(again) == set(truth)  # no cursor: all again
        assert all(owner[c["id"]] == c["coupon_id"] for c in second.records_of("coupon_codes"))
        assert requests == least
        assert without_keys(second.states_of("coupon_codes")[-1]) == {}

    run_against_simulator(body, sizes=SIZES)


def test_batches_keep_within_the_size_and_the_url_budget() -> None:
    assert FANOUT is not None and FANOUT.batch is not None
    short = [f"C{i}" for i in range(250)]
    assert [len(g) for g in parent_batches(FANOUT, short)] == [100, 100, 50]
    long = [f"{'x' * 300}-{i}" for i in range(40)]
    groups = parent_batches(FANOUT, long)
    assert [i for g in groups for i in g] == long and len(groups) > 1
    for group in groups:
        sent = fanout_params(FANOUT, group, *_window())["filter"]
        assert len(quote(sent, safe="")) <= MAX_FILTER_CHARS
    huge = ["y" * (MAX_FILTER_CHARS + 10), "z"]
    assert parent_batches(FANOUT, huge) == [[huge[0]], ["z"]]  # too long alone still goes, alone


def test_a_batched_filter_quotes_each_id_and_one_holding_a_quote_in_double_quotes() -> None:
    assert FANOUT is not None
    sent = fanout_params(FANOUT, ["A", "it's"], *_window())["filter"]
    assert sent == """any(coupon.id,['A',"it's"])"""
    unbatched = Fanout(
        path="/x/{id}", parent_key="x_id", cursor_path=(), page_size=None, sort=None, window=None,
        parent_filter="equals(x.id,['{id}'])", row=lambda parent, child: child,
    )  # fmt: skip
    assert parent_batches(unbatched, ["a", "b"]) == [["a"], ["b"]]
    assert fanout_params(unbatched, ["a"], *_window())["filter"] == "equals(x.id,['a'])"


def _window() -> tuple[datetime, datetime]:
    return datetime(2020, 1, 1, tzinfo=UTC), datetime(2021, 1, 1, tzinfo=UTC)
