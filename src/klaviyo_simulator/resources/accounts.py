"""The account a key belongs to (`/api/accounts`: one record, one page, no date to sync on)."""

from __future__ import annotations

from klaviyo_simulator.model import Row, World
from klaviyo_simulator.resources.base import RowKind
from klaviyo_simulator.seeded import short_id


class Accounts(RowKind):
    types = ("account",)

    def build(self, world: World) -> list[Row]:
        public_key = short_id(world.seed, 390, 0)
        return [
            Row(
                "account",
                public_key,  # Klaviyo's account id is the public API key (site id)
                {
                    "test_account": False,
                    "contact_information": {
                        "default_sender_name": "Example Shop",
                        "default_sender_email": "hello@shop.example.com",
                        "website_url": "https://shop.example.com",
                        "organization_name": "Example Shop Inc.",
                        "street_address": {
                            "address1": "125 Summer St",
                            "address2": "Floor 6",
                            "city": "Boston",
                            "region": "MA",
                            "country": "US",
                            "zip": "02110",
                        },
                    },
                    "industry": "Apparel & Accessories",
                    "timezone": "America/New_York",
                    "preferred_currency": "USD",
                    "public_api_key": public_key,
                    "locale": "en-US",
                },
            )
        ]
