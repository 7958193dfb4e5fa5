"""The listing streams of issue 10 (tags, tag_groups, coupons, coupon_codes, forms, form_versions,
images, push_tokens, catalog_items/variants/categories, accounts) against the simulator over a
socket: exact sets against the ground truth, records valid against their schemas, incremental
after `advance` (new and changed found; cursorless streams re-read everything with state {}),
and a key missing one scope failing only the streams that need it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from jsonschema import Draft7Validator

from kit.sink import CollectingSink, without_keys
from kit.truth import epoch_us, expected
from klaviyo_simulator.server import Simulator, SimulatorOptions, run_simulator
from klaviyo_simulator.spec import all_scopes
from klaviyo_source.config import Config
from klaviyo_source.engine import read
from klaviyo_source.engine.contract import StreamOutcome, StreamSelection, StreamStatus
from klaviyo_source.errors import AccessError
from klaviyo_source.streams.schema import load_schema
from klaviyo_source.streams.table import STREAMS, STREAMS_BY_NAME

NAMES = [
    "tags", "tag_groups", "coupons", "coupon_codes", "forms", "form_versions", "images", "push_tokens",
    "catalog_items", "catalog_variants", "catalog_categories", "accounts",
]  # fmt: skip
CURSORLESS = [n for n in NAMES if STREAMS_BY_NAME[n].cursor_field is None]
SIZES = {"events": 100, "profiles": 200, "lists": 2, "campaigns": 4, "push_tokens": 130}
CHANGES = {
    "forms_updated": 2, "forms_created": 1, "form_versions_updated": 2, "form_versions_created": 2,
    "images_updated": 3, "images_created": 2, "catalog_items_updated": 3, "catalog_items_created": 1,
    "catalog_variants_updated": 3, "catalog_variants_created": 2, "catalog_categories_updated": 1,
}  # fmt: skip


def config(sim: Simulator, **overrides: Any) -> Config:
    values: dict[str, Any] = dict(
        api_key=sim.api_key, base_url=sim.base_url, backoff_base=0.01, max_retries=2
    )
    return Config(**(values | overrides))


def with_sim(body: Callable[[Simulator], Awaitable[None]], **options: Any) -> None:
    async def go() -> None:
        async with run_simulator(SimulatorOptions(sizes=SIZES, **options)) as sim:
            await body(sim)

    asyncio.run(go())


async def sync(
    sim: Simulator, states: dict[str, Any] | None = None, *, incremental: bool = True, **overrides: Any
) -> tuple[CollectingSink, list[StreamOutcome]]:
    sink = CollectingSink()
    selections = [StreamSelection(n, incremental=incremental) for n in NAMES]
    outcomes = await read(config(sim, num_workers=4, **overrides), selections, states or {}, sink)
    return sink, outcomes


def keys(sink: CollectingSink, stream: str) -> list[str]:
    return [str(r["id"]) for r in sink.records_of(stream)]


def test_the_new_streams_come_together_in_the_table() -> None:
    names = [s.name for s in STREAMS]
    start = names.index(NAMES[0])
    assert names[start : start + len(NAMES)] == NAMES


def test_full_refresh_reads_exactly_the_ground_truth_with_valid_records() -> None:
    async def body(sim: Simulator) -> None:
        sink, outcomes = await sync(sim, incremental=False)
        assert [o.status for o in outcomes] == [StreamStatus.COMPLETE] * len(NAMES), [
            o.error for o in outcomes
        ]
        truth = expected(sim.store)
        for name in NAMES:
            got = keys(sink, name)
            assert got and len(got) == len(set(got)), name
            assert set(got) == set(truth[name]), name
            validator = Draft7Validator(load_schema(name))
            cursor = STREAMS_BY_NAME[name].cursor_field
            for record in sink.records_of(name):
                errors = list(validator.iter_errors(record))
                assert not errors, (name, errors[0].message)
                if cursor is not None:
                    assert record[cursor] == record["attributes"][cursor]
                    assert epoch_us(record[cursor]) == truth[name][record["id"]]
        codes = sink.records_of("coupon_codes")
        assert all(sim.store.get("coupon-code", c["id"]).hidden["coupon.id"] == c["coupon_id"] for c in codes)  # type: ignore[union-attr]
        versions = sink.records_of("form_versions")
        assert all(v["relationships"]["form"]["data"]["id"] == v["form_id"] for v in versions)
        requests = sim.controls.stats()["requests"]
        assert len(sim.store.records("coupon")) <= 100  # one page of coupons: one batched listing
        assert requests["get_coupon_codes"] == max(1, -(-len(codes) // 100))  # 100 codes a page
        assert requests["get_versions_for_form"] == len(sim.store.records("form"))
        assert requests["get_push_tokens"] == 2 and requests["get_accounts"] == 1  # 130 tokens, 1 account
        for name in CURSORLESS:
            assert without_keys(sink.states_of(name)[-1]) == {}, name

    with_sim(body)


def test_incremental_after_advance_finds_new_and_changed_and_rereads_the_cursorless() -> None:
    async def body(sim: Simulator) -> None:
        first, outcomes = await sync(sim)
        assert all(o.status is StreamStatus.COMPLETE for o in outcomes), [o.error for o in outcomes]
        states = {n: first.states_of(n)[-1] for n in NAMES}
        assert all(without_keys(states[n]) == {} for n in CURSORLESS)
        assert all(states[n] for n in NAMES if n not in CURSORLESS)
        await asyncio.sleep(1.1)  # a sync reads up to its start second
        changes = sim.advance(boundary=True, **CHANGES)
        await asyncio.sleep(1.1)
        second, outcomes = await sync(sim, states)
        assert all(o.status is StreamStatus.COMPLETE for o in outcomes), [o.error for o in outcomes]
        truth = expected(sim.store)
        for name in NAMES:
            got = keys(second, name)
            assert len(got) == len(set(got)), name
        for name, prefix in (("forms", "forms"), ("form_versions", "form_versions"), ("images", "images"),
                             ("catalog_items", "catalog_items"), ("catalog_variants", "catalog_variants"),
                             ("catalog_categories", "catalog_categories")):  # fmt: skip
            touched = set(changes.get(f"{prefix}_updated", [])) | set(changes.get(f"{prefix}_created", []))
            assert touched and touched <= set(keys(second, name)), name
            assert set(keys(second, name)) < set(truth[name]) or len(truth[name]) <= len(touched), name
        for name in CURSORLESS:  # no cursor: every record again, and still no state
            assert set(keys(second, name)) == set(truth[name]), name
            assert without_keys(second.states_of(name)[-1]) == {}, name
        # per-form cursors: a form's versions come back only from its own cursor on
        saved = {
            s["partition"]["form_id"]: epoch_us(s["cursor"]["updated_at"])
            for s in states["form_versions"]["states"]
        }
        for record in second.records_of("form_versions"):
            floor = saved.get(record["form_id"])
            assert floor is None or epoch_us(record["updated_at"]) >= floor  # type: ignore[operator]

    with_sim(body)


def test_a_key_missing_one_scope_fails_only_the_streams_needing_it() -> None:
    key = "pk_listings_no_coupon_codes_or_push_tokens"
    scopes = sorted(all_scopes() - {"coupon-codes:read", "push-tokens:read"})

    async def body(sim: Simulator) -> None:
        sink = CollectingSink()
        names = ["coupons", "coupon_codes", "push_tokens", "tags"]
        outcomes = await read(
            config(sim, api_key=key), [StreamSelection(n, incremental=False) for n in names], {}, sink
        )
        status = {o.name: o for o in outcomes}
        for name in ("coupon_codes", "push_tokens"):
            assert status[name].status is StreamStatus.INCOMPLETE, name
            assert isinstance(status[name].error, AccessError), status[name].error
            assert "403" in str(status[name].error)
        assert (
            status["coupons"].status is StreamStatus.COMPLETE
            and status["tags"].status is StreamStatus.COMPLETE
        )
        assert set(keys(sink, "coupons")) == {c.id for c in sim.store.records("coupon")}

    with_sim(body, keys={"pk_full": None, key: scopes})
