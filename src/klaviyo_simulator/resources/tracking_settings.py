"""The account's UTM tracking settings (`/api/tracking-settings`: one record, a page of 1, no date
to sync on; its id is the account's). `advance` with `tracking_settings_updated` flips whether
parameters are added automatically."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from klaviyo_simulator.model import Change, Row, World
from klaviyo_simulator.resources.base import RowKind

if TYPE_CHECKING:
    from klaviyo_simulator.store import Store


def _static(value: str) -> dict[str, str]:
    return {"type": "static", "value": value}


def _dynamic(value: str) -> dict[str, str]:
    return {"type": "dynamic", "value": value}


class TrackingSettings(RowKind):
    types = ("tracking-setting",)
    requires = ("account",)

    def __init__(self, store: Store) -> None:
        super().__init__(store)
        self.advance_keys = frozenset({"tracking_settings_updated"})

    def build(self, world: World) -> list[Row]:
        return [
            Row(
                "tracking-setting",
                account.id,
                {
                    "auto_add_parameters": True,
                    "utm_source": {"flow": _static("klaviyo"), "campaign": _static("klaviyo")},
                    "utm_medium": {"flow": _dynamic("message_type"), "campaign": _dynamic("message_type")},
                    "utm_campaign": {"flow": _dynamic("flow_name"), "campaign": _dynamic("campaign_name_id")},
                    "utm_id": {"flow": _dynamic("flow_id"), "campaign": _dynamic("campaign_id")},
                    "utm_term": None,
                    "custom_parameters": [
                        {
                            "name": "kx_profile",
                            "flow": _dynamic("profile_id"),
                            "campaign": _dynamic("profile_id"),
                        }
                    ],
                },
            )
            for account in self.store.records_view("account")
        ]

    def advance(self, change: Change) -> dict[str, Any]:
        if not change.count("tracking_settings_updated"):
            return {}
        rows = self.store.records_view("tracking-setting")
        for row in rows:
            row.attributes["auto_add_parameters"] = not row.attributes["auto_add_parameters"]
        return {"tracking_settings_updated": [row.id for row in rows]}
