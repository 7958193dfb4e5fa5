"""Record shaping (streams/records.py): `included` merge, global exclusions, profile normalizing."""

from __future__ import annotations

from klaviyo_source.streams import records as shape


def test_merge_included_like_airbyte_2_14() -> None:
    record = {
        "type": "event",
        "id": "e1",
        "relationships": {
            "metric": {"data": {"type": "metric", "id": "m1"}},
            "attributions": {"data": [{"type": "attribution", "id": "a1"}]},
            "profile": {"data": {"type": "profile", "id": "p-not-included"}},
        },
    }
    index = shape.include_index(
        {
            "included": [
                {"type": "metric", "id": "m1", "attributes": {"name": "Placed Order"}},
                {"type": "attribution", "id": "a1", "relationships": {"campaign": {"data": {"id": "c1"}}}},
            ]
        }
    )
    merged = shape.merge_included(record, index)
    assert merged["relationships"]["metric"]["data"] == {"type": "metric", "id": "m1", "name": "Placed Order"}
    assert (
        merged["relationships"]["attributions"]["data"][0]["relationships"]["campaign"]["data"]["id"] == "c1"
    )
    assert merged["relationships"]["profile"]["data"] == {"type": "profile", "id": "p-not-included"}
    assert record["relationships"]["metric"]["data"] == {"type": "metric", "id": "m1"}  # untouched


def test_global_exclusion_copies_suppression_without_touching_the_profile() -> None:
    suppression = [{"reason": "HARD_BOUNCE", "timestamp": "2024-01-01T00:00:00+00:00"}]
    profile = {
        "id": "p",
        "attributes": {"subscriptions": {"email": {"marketing": {"suppression": suppression}}}},
    }
    out = shape.global_exclusion(profile)
    assert out is not None
    assert out["attributes"]["subscriptions"]["email"]["marketing"]["suppressions"] == suppression
    assert "suppression" not in out["attributes"]["subscriptions"]["email"]["marketing"]  # 3.x: renamed
    assert out["updated"] == "2024-01-01T00:00:00+00:00"  # the suppression time is the cursor
    assert "suppressions" not in profile["attributes"]["subscriptions"]["email"]["marketing"]
    assert shape.global_exclusion({"id": "q", "attributes": {}}) is None
    empty = {"id": "r", "attributes": {"subscriptions": {"email": {"marketing": {"suppression": []}}}}}
    assert shape.global_exclusion(empty) is None


def test_profile_region_number_becomes_a_string() -> None:
    record = {"attributes": {"location": {"region": 10, "city": "Oslo"}}}
    shape.normalize_profile(record)
    assert record["attributes"]["location"] == {"region": "10", "city": "Oslo"}
    shape.normalize_profile({"attributes": {"location": None}})
