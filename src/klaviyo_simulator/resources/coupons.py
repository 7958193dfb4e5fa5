"""Coupons and their codes (`/api/coupons`, `/api/coupon-codes`).

Listing codes needs a filter (the spec's rule: `coupon.id` or `profile.id`); coupons hold 0, 1
or many codes (more than a page of 100). Neither type has a date to sync on: no `advance`.
"""

from __future__ import annotations

from klaviyo_simulator.model import Row, World
from klaviyo_simulator.query import iso_seconds
from klaviyo_simulator.resources.base import RowKind
from klaviyo_simulator.seeded import between, frac, mix, pick, short_id

COUPON_NAMES = ["WELCOME", "SUMMER", "VIP", "FREESHIP", "BDAY", "WINBACK", "FLASH", "LOYAL"]
CODE_COUNTS = [0, 1, 240, 35, 120, 8]  # per coupon, in turn: none, one, several pages
STATUSES = ["UNASSIGNED", "UNASSIGNED", "ASSIGNED_TO_PROFILE", "USED", "USED", "PROCESSING"]


class Coupons(RowKind):
    types = ("coupon", "coupon-code")
    requires = ("profile",)

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
