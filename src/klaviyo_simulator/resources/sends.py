"""Which message an event belongs to: the link between the events and the Reporting API numbers.

Every email or SMS event (`Received Email`, `Opened Email`, `Clicked SMS`, ...) belongs to one
message: a message of a sent campaign or a flow message of its channel, picked from the event's
random bits. The event says so in its properties as Klaviyo's do (`$message` = the message id,
`$flow` = the flow id for flow messages, `Campaign Name` = the campaign's or flow's name).
`Placed Order` events carry attributions (~30 % to a campaign message, ~20 % to a flow message);
form events (`Viewed Form`, `Submitted Form`) name a form version (`form_id`, `form_version_id`).
The targets are frozen when the events are generated, so `advance` never re-links old events.
`resources/reports.py` aggregates the same links, so every report value can be recomputed from
the events stream.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import orjson

if TYPE_CHECKING:
    from klaviyo_simulator.store import Store

EMAIL_METRICS = frozenset(
    {"Received Email", "Opened Email", "Clicked Email", "Bounced Email", "Unsubscribed"}
)
SMS_METRICS = frozenset({"Received SMS", "Clicked SMS"})
FORM_METRICS = frozenset({"Viewed Form", "Submitted Form"})
SENT_STATUSES = frozenset({"Sent", "Sending"})


@dataclass(frozen=True)
class Target:
    """A message events can belong to."""

    kind: str  # "campaign" | "flow"
    parent_id: str  # the campaign's or the flow's id
    message_id: str
    channel: str  # "email" | "sms"
    name: str = field(compare=False)  # the campaign's or the flow's name
    # `,"Campaign Name":..,"$message":..[,"$flow":..]` for event properties
    properties_json: str = field(compare=False)


@dataclass(frozen=True)
class FormTarget:
    form_id: str
    version_id: str
    properties_json: str


def _target(kind: str, parent_id: str, message_id: str, channel: str, name: str) -> Target:
    text = f',"Campaign Name":{orjson.dumps(name).decode()},"$message":"{message_id}"'
    if kind == "flow":
        text += f',"$flow":"{parent_id}"'
    return Target(kind, parent_id, message_id, channel, name, text)


class Sends:
    """The frozen targets of one account (built once the campaigns, flows and forms exist)."""

    def __init__(self, store: Store) -> None:
        campaigns: list[Target] = []
        for campaign in store.records_view("campaign"):
            channel = campaign.hidden.get("messages.channel")
            if campaign.attributes["status"] not in SENT_STATUSES or channel not in ("email", "sms"):
                continue
            for mid in campaign.related_ids("campaign-messages"):
                campaigns.append(_target("campaign", campaign.id, mid, channel, campaign.attributes["name"]))
        flows: list[Target] = []
        for message in store.records_view("flow-message"):
            action = store.get("flow-action", message.related_ids("flow-action")[0])
            flow = store.get("flow", action.related_ids("flow")[0]) if action else None
            if flow is None:
                continue
            flows.append(
                _target("flow", flow.id, message.id, message.attributes["channel"], flow.attributes["name"])
            )
        self.flow_messages = flows
        self.pools = {
            channel: [t for t in campaigns + flows if t.channel == channel] for channel in ("email", "sms")
        }
        forms = []
        for version in store.records_view("form-version"):
            form_id = version.related_ids("form")[0]
            text = f',"form_id":"{form_id}","form_version_id":"{version.id}"'
            forms.append(FormTarget(form_id, version.id, text))
        self.forms = forms

    def message(self, metric_name: str, h: int) -> Target | None:
        """The message an email or SMS event belongs to (None for other metrics)."""
        if metric_name in EMAIL_METRICS:
            pool = self.pools["email"]
        elif metric_name in SMS_METRICS:
            pool = self.pools["sms"]
        else:
            return None
        return pool[(h >> 16) % len(pool)] if pool else None

    def form(self, metric_name: str, h: int) -> FormTarget | None:
        if metric_name not in FORM_METRICS or not self.forms:
            return None
        return self.forms[(h >> 16) % len(self.forms)]
