"""Segments (`/api/segments`, `/api/segments/{id}`) against the vendored spec and the store's ground truth."""

from __future__ import annotations

from datetime import UTC, datetime

from kit.sim import sim_fixture
from klaviyo_simulator import Simulator

from .client import fetch
from .test_queries import paged_ids

SEGMENTS = 23  # > two pages at the spec's maximum page[size] of 10


KEYS: dict[str, list[str] | None] = {
    "pk_full": None,
    "pk_lists": ["lists:read"],
    "pk_segments": ["segments:read"],
}
seg = sim_fixture(sizes={"events": 200, "profiles": 300, "segments": SEGMENTS}, keys=KEYS, rate_limits=True)


def micros(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp()) * 1_000_000


def test_every_segment_once_in_each_spec_sort(seg: Simulator) -> None:
    rows = seg.store.records("segment")
    assert len(rows) == SEGMENTS
    for sort in ("id", "-id", "name", "-name", "created", "-created", "updated", "-updated"):
        field, desc = sort.lstrip("-"), sort.startswith("-")
        got = paged_ids(seg, "/api/segments", {"sort": sort, "page[size]": "10"})
        ordered = sorted(
            rows, key=lambda r: (r.id if field == "id" else r.attributes[field], r.id), reverse=desc
        )
        assert got == [r.id for r in ordered], sort


def test_page_size_follows_the_spec(seg: Simulator) -> None:
    assert len(fetch(seg, "/api/segments").body["data"]) == 10  # default 10
    assert len(fetch(seg, "/api/segments", {"page[size]": "3"}).body["data"]) == 3
    too_big = fetch(seg, "/api/segments", {"page[size]": "11"})
    assert too_big.status == 400 and too_big.body["errors"][0]["source"] == {"parameter": "page[size]"}


def test_filters_of_x_klaviyo_filters(seg: Simulator) -> None:
    rows = seg.store.records("segment")
    middle = sorted(r.attributes["updated"] for r in rows)[SEGMENTS // 2]
    since = middle.replace("+00:00", "Z")
    two = [rows[0].attributes["name"], rows[1].attributes["name"]]
    cases = {
        f"greater-than(updated,{since})": {
            r.id for r in rows if micros(r.attributes["updated"]) > micros(middle)
        },
        f"greater-than(created,{since})": {
            r.id for r in rows if micros(r.attributes["created"]) > micros(middle)
        },
        "equals(is_active,true)": {r.id for r in rows if r.attributes["is_active"]},
        "equals(is_starred,false)": {r.id for r in rows if not r.attributes["is_starred"]},
        f"equals(id,'{rows[3].id}')": {rows[3].id},
        f"any(name,['{two[0]}','{two[1]}'])": {r.id for r in rows if r.attributes["name"] in two},
        f"and(equals(is_active,true),greater-than(updated,{since}))": {
            r.id
            for r in rows
            if r.attributes["is_active"] and micros(r.attributes["updated"]) > micros(middle)
        },
    }
    for flt, expected in cases.items():
        assert set(paged_ids(seg, "/api/segments", {"filter": flt, "page[size]": "10"})) == expected, flt
    for bad in ("less-than(updated,2030-01-01T00:00:00Z)", "equals(name,'x')", "equals(is_processing,false)"):
        reply = fetch(seg, "/api/segments", {"filter": bad})
        assert reply.status == 400, bad
        assert reply.body["errors"][0]["source"] == {"parameter": "filter"}


def test_sparse_fields_and_tags(seg: Simulator) -> None:
    tagged = next(r for r in seg.store.records("segment") if r.related_ids("tags"))
    reply = fetch(
        seg, f"/api/segments/{tagged.id}", {"include": "tags", "fields[segment]": "name,is_starred"}
    )
    assert reply.status == 200
    assert reply.body["data"]["attributes"] == {
        "name": tagged.attributes["name"],
        "is_starred": tagged.attributes["is_starred"],
    }
    assert {t["id"] for t in reply.body["data"]["relationships"]["tags"]["data"]} == set(
        tagged.related_ids("tags")
    )
    assert {(i["type"], i["id"]) for i in reply.body["included"]} == {
        ("tag", t) for t in tagged.related_ids("tags")
    }


def test_profile_count_has_its_own_tier(seg: Simulator) -> None:
    segment = seg.store.records("segment")[0]
    plain = fetch(seg, f"/api/segments/{segment.id}")
    assert "profile_count" not in plain.body["data"]["attributes"]
    assert plain.headers["RateLimit-Limit"] == "750"  # get_segment: L, 750/m
    counted = fetch(seg, f"/api/segments/{segment.id}", {"additional-fields[segment]": "profile_count"})
    assert counted.body["data"]["attributes"]["profile_count"] == len(
        seg.store.members("segment", segment.id)
    )
    assert counted.headers["RateLimit-Limit"] == "15"  # the spec's profile_count tier: 1/s, 15/m
    assert seg.controls.stats()["requests_by_bucket"]["get_segment:profile_count"] >= 1
    listed = fetch(seg, "/api/segments", {"additional-fields[segment]": "profile_count"})
    assert listed.status == 400  # the listing has no additional-fields in the spec


def test_scope_is_segments_read(seg: Simulator) -> None:
    assert fetch(seg, "/api/segments", key="pk_segments").status == 200
    denied = fetch(seg, "/api/segments", key="pk_lists")
    assert denied.status == 403 and "segments:read" in denied.body["errors"][0]["detail"]
    assert fetch(seg, "/api/segments/nope").status == 404


def test_advance_updates_and_creates_segments(seg: Simulator) -> None:
    before = {r.id: r.attributes["updated"] for r in seg.store.records("segment")}
    changes = seg.advance(segments_updated=3, segments_created=1)
    assert len(changes["segments_updated"]) == 3 and len(changes["segments_created"]) == 1
    now = micros(changes["now"])
    touched = {r.id for r in seg.store.records("segment") if micros(r.attributes["updated"]) >= now}
    assert touched == set(changes["segments_updated"]) | set(changes["segments_created"])
    after = {r.id: r.attributes["updated"] for r in seg.store.records("segment")}
    assert all(before[i] != after[i] for i in changes["segments_updated"])
    second_before = datetime.fromtimestamp(now // 1_000_000 - 1, UTC).isoformat().replace("+00:00", "Z")
    got = paged_ids(
        seg, "/api/segments", {"filter": f"greater-than(updated,{second_before})", "page[size]": "10"}
    )
    assert set(got) == touched
