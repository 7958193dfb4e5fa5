"""GET /api/coupon-codes as the spec says: a required filter naming coupons or profiles, whose
`coupon.id` takes `any` or `equals` with a list (x-klaviyo-filters), paged by links.next; the
rest is a 400 naming `filter` (real sockets, ground truth from the store)."""

from __future__ import annotations

from klaviyo_simulator import Simulator

from .client import fetch, fetch_all


def codes_by_coupon(sim: Simulator) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for code in sim.store.records("coupon-code"):
        out.setdefault(code.hidden["coupon.id"], set()).add(code.id)
    return out


def test_any_on_coupon_id_lists_exactly_the_named_coupons_codes_once_across_pages(sim: Simulator) -> None:
    truth = codes_by_coupon(sim)
    coupons = [c.id for c in sim.store.records("coupon")]
    named = [c for c in coupons if len(truth.get(c, ())) > 100][:1] + [c for c in coupons if c in truth][:3]
    assert sum(len(truth[c]) for c in named) > 100  # more than one page
    for op in ("any", "equals"):
        listed = fetch_all(
            sim,
            "/api/coupon-codes",
            {"filter": f"{op}(coupon.id,[{','.join(repr(c) for c in named)}])", "page[size]": "100"},
        )
        ids = [c["id"] for c in listed]
        assert len(ids) == len(set(ids)), op
        assert set(ids) == set().union(*(truth[c] for c in named)), op
        assert {c["relationships"]["coupon"]["data"]["id"] for c in listed} == set(named), op


def test_a_coupon_without_codes_and_double_quotes_are_served(sim: Simulator) -> None:
    truth = codes_by_coupon(sim)
    empty = next(c.id for c in sim.store.records("coupon") if c.id not in truth)
    reply = fetch(sim, "/api/coupon-codes", {"filter": f'any(coupon.id,["{empty}"])'})
    assert reply.status == 200 and reply.body["data"] == []


def test_what_the_spec_rejects_is_a_400_naming_filter(sim: Simulator) -> None:
    coupon = sim.store.records("coupon")[0].id
    for bad in (
        None,  # the filter is required
        f"any(coupon.id,'{coupon}')",  # list-valued operators take a list
        "any(coupon.id,[])",  # names no coupon
        "equals(status,'USED')",  # neither coupons nor profiles named
        "less-than(expires_at,2030-01-01T00:00:00Z)",
        f"contains(coupon.id,'{coupon}')",  # not an operator of coupon.id
        f"any(coupon.external_id,['{coupon}'])",  # not a filter field
    ):
        reply = fetch(sim, "/api/coupon-codes", {"filter": bad} if bad is not None else None)
        assert reply.status == 400, (bad, reply.body)
        assert reply.body["errors"][0]["source"] == {"parameter": "filter"}, bad


def test_status_and_expiry_narrow_a_coupon_filter(sim: Simulator) -> None:
    coupons = [c.id for c in sim.store.records("coupon")]
    wanted = {
        c.id
        for c in sim.store.records("coupon-code")
        if c.hidden["coupon.id"] in coupons and c.attributes["status"] == "USED"
    }
    named = ",".join(repr(c) for c in coupons)
    listed = fetch_all(
        sim, "/api/coupon-codes", {"filter": f"any(coupon.id,[{named}]),equals(status,'USED')"}
    )
    assert {c["id"] for c in listed} == wanted and wanted
