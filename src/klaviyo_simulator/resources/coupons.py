"""Coupons and their codes (`/api/coupons`, `/api/coupon-codes`).

Listing codes needs a filter naming coupons or profiles (the spec: "A coupon/coupons or a
profile/profiles must be provided as required filter params"): `coupon.id` or `profile.id` with
`any` or `equals`, both list-valued (`any(coupon.id,['WELCOME10-1','VIP15-2'])`; a scalar is a
400, as is an empty list or a filter on `status`/`expires_at` alone). The spec states no limit on
the list's length, so none is enforced. Coupons hold 0, 1 or many codes (more than a page of
100). Neither type has a date to sync on: no `advance`.
"""

from __future__ import annotations

from klaviyo_simulator.model import Row, World
from klaviyo_simulator.query import Query, QueryError, iso_seconds
from klaviyo_simulator.resources.base import RowKind
from klaviyo_simulator.seeded import between, frac, mix, pick, short_id

COUPON_NAMES = ["WELCOME", "SUMMER", "VIP", "FREESHIP", "BDAY", "WINBACK", "FLASH", "LOYAL"]
CODE_COUNTS = [0, 1, 240, 35, 120, 8]  # per coupon, in turn: none, one, several pages
OWNERS = ("coupon.id", "profile.id")  # the filter fields that name whose codes to list
STATUSES = ["UNASSIGNED", "UNASSIGNED", "ASSIGNED_TO_PROFILE", "USED", "USED", "PROCESSING"]


class Coupons(RowKind):
    types = ("coupon", "coupon-code")
    requires = ("profile",)

    def check(self, rtype: str, query: Query, collection: bool) -> None:
        if rtype != "coupon-code" or not collection:
            return
        named = [c for c in query.conditions if c.field in OWNERS]
        if not named or not all(c.value for c in named):
            raise QueryError(
                "filter",
                "A coupon/coupons or a profile/profiles must be provided as required filter params: "
                "any(coupon.id,[...]) or any(profile.id,[...]).",
            )

    def build(self, world: World) -> list[Row]:
        seed, now = world.seed, world.now
        profiles = self.store.profiles
        coupons: list[Row] = []
        codes: list[Row] = []
        for i in range(world.sizes.coupons):
            name = f"{pick(COUPON_NAMES, seed, 300, i)}{5 * (1 + mix(seed, 301, i) % 6)}"
            external_id = f"{name}-{i + 1}"
            monitor = (
                {"low_balance_threshold": 50 * (1 + mix(seed, 302, i) % 10)}
                if frac(seed, 303, i) < 0.5
                else None
            )
            coupons.append(
                Row(
                    "coupon",
                    external_id,  # a coupon's id is its external id
                    {
                        "external_id": external_id,
                        "description": f"{name[-2:]}% off, code {name}" if frac(seed, 304, i) < 0.8 else None,
                        "monitor_configuration": monitor,
                    },
                )
            )
            for k in range(CODE_COUNTS[i % len(CODE_COUNTS)]):
                n = i * 1_000 + k
                status = pick(STATUSES, seed, 305, n)
                assigned = status in ("ASSIGNED_TO_PROFILE", "USED") and profiles.count > 0
                profile = profiles.id(mix(seed, 306, n) % profiles.count) if assigned else None
                expires = between(seed, 307, n, now - 86_400 * 30, now + 86_400 * 365)
                code = Row(
                    "coupon-code",
                    str(10_000_000 + mix(seed, 308, n) % 90_000_000),
                    {
                        "unique_code": f"{name}-{short_id(seed, 309, n, length=8).upper()}",
                        "expires_at": iso_seconds(expires) if frac(seed, 310, n) < 0.7 else None,
                        "status": status,
                    },
                    {"coupon": ("coupon", external_id), "profile": ("profile", profile)},
                    {"coupon.id": external_id, "profile.id": profile},
                )
                codes.append(code)
        return coupons + list({c.id: c for c in codes}.values())  # ids unique
