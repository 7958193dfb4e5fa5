"""Push tokens of profiles' devices (`/api/push-tokens`): no date to sync on, no `advance`."""

from __future__ import annotations

from typing import Any

from klaviyo_simulator.model import Row, World
from klaviyo_simulator.query import iso_seconds
from klaviyo_simulator.resources.base import RowKind
from klaviyo_simulator.seeded import TWO_YEARS, between, frac, mix, pick

STATUSES = [
    "AUTHORIZED",
    "AUTHORIZED",
    "AUTHORIZED",
    "DENIED",
    "NOT_DETERMINED",
    "PROVISIONAL",
    "UNAUTHORIZED",
]
DEVICES = {"ios": ("iPhone15,2", "ios", "17.4", "Apple"), "android": ("Pixel 8", "android", "14", "Google")}


def metadata(seed: int, i: int, platform: str) -> dict[str, Any]:
    model, os_name, os_version, maker = DEVICES[platform]
    return {
        "device_id": f"{mix(seed, 350, i):016X}",
        "klaviyo_sdk": "swift"
        if platform == "ios"
        else pick(["android", "react_native", "flutter"], seed, 351, i),
        "sdk_version": "4.1.0",
        "device_model": model,
        "os_name": os_name,
        "os_version": os_version,
        "manufacturer": maker,
        "app_name": "Example Shop",
        "app_version": f"3.{mix(seed, 352, i) % 9}.0",
        "app_build": str(300 + mix(seed, 353, i) % 90),
        "app_id": "com.example.shop",
        "environment": "release",
    }


class PushTokens(RowKind):
    types = ("push-token",)
    requires = ("profile",)

    def build(self, world: World) -> list[Row]:
        seed, now, start = world.seed, world.now, world.now - TWO_YEARS
        profiles = self.store.profiles
        rows = []
        for i in range(world.sizes.push_tokens if profiles.count else 0):
            platform = "ios" if frac(seed, 354, i) < 0.55 else "android"
            profile = profiles.id(mix(seed, 355, i) % profiles.count)
            created = between(seed, 356, i, start, now)
            token = "".join(f"{mix(seed, salt, i):016x}" for salt in (357, 358, 359, 360))
            status = pick(STATUSES, seed, 361, i)
            rows.append(
                Row(
                    "push-token",
                    f"{mix(seed, 362, i) % 10**12:012d}",
                    {
                        "created": iso_seconds(created),
                        "token": token,
                        "enablement_status": status,
                        "platform": platform,
                        "vendor": "apns" if platform == "ios" else "fcm",
                        "background": "AVAILABLE" if status == "AUTHORIZED" else "DENIED",
                        "recorded_date": iso_seconds(created),
                        "metadata": metadata(seed, i, platform),
                    },
                    {"profile": ("profile", profile)},
                    {"profile.id": profile},
                )
            )
        return list({r.id: r for r in rows}.values())
