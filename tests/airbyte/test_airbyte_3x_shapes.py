"""Record shapes where Airbyte's source-klaviyo 3.x changed behaviour (docs/airbyte.md, "Migrating
from Airbyte 3.x"), read through the engine from the simulator."""

from __future__ import annotations

import asyncio

from kit.sim import simulator_in_loop
from kit.sink import CollectingSink
from klaviyo_source.config import parse_config
from klaviyo_source.engine import read
from klaviyo_source.engine.contract import StreamSelection, StreamStatus
from klaviyo_source.http.client import KlaviyoClient

SIZES = {"campaigns": 6, "events": 60, "profiles": 80, "flows": 2, "lists": 2, "templates": 2}
STREAMS = ["campaigns_detailed", "global_exclusions", "events_detailed"]


def test_campaigns_detailed_global_exclusions_and_events_detailed_as_airbyte_3x() -> None:
    async def body() -> None:
        async with simulator_in_loop(sizes=SIZES) as sim:
            config = parse_config(
                {
                    "api_key": sim.api_key,
                    "base_url": sim.base_url,
                    "start_date": "2020-01-01",
                    "num_workers": 4,
                }
            )
            sink = CollectingSink()
            outcomes = await read(config, [StreamSelection(s, incremental=True) for s in STREAMS], {}, sink)
            assert [o.status for o in outcomes] == [StreamStatus.COMPLETE] * len(STREAMS)
            async with KlaviyoClient(config) as client:
                # campaigns_detailed: `campaign_messages` is what 3.x fetches from the related link
                for campaign in sink.records_of("campaigns_detailed"):
                    related = await client.get_json(f"/api/campaigns/{campaign['id']}/campaign-messages")
                    assert campaign["campaign_messages"] == related["data"]
                    assert isinstance(campaign["estimated_recipient_count"], int)
            # global_exclusions: suppression renamed suppressions, `updated` = the suppression time
            excluded = sink.records_of("global_exclusions")
            assert excluded
            for profile in excluded:
                marketing = profile["attributes"]["subscriptions"]["email"]["marketing"]
                assert "suppression" not in marketing
                assert profile["updated"] == marketing["suppressions"][0]["timestamp"]
            final = sink.states_of("global_exclusions")[-1]["updated"]
            assert final == max(p["updated"] for p in excluded)  # the cursor is the suppression time
            # events_detailed: included metric and attributions merged into relationships.*.data
            event = sink.records_of("events_detailed")[0]
            metric = event["relationships"]["metric"]["data"]
            assert {"type", "id", "name"} <= set(metric)

    asyncio.run(body())
