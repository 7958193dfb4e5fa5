"""The resource kinds of the simulated account, one module each, behind the `Resource` protocol.

`Store` builds one instance of each per account: events and profiles (compact columns) and the
small collections below (`RowKind`s). Adding a resource kind = a module here, its line in
`ROW_KINDS`, and its paths in `spec.SERVED_PATHS`.
"""

from __future__ import annotations

from klaviyo_simulator.resources.accounts import Accounts
from klaviyo_simulator.resources.base import Resource, RowKind
from klaviyo_simulator.resources.campaigns import Campaigns
from klaviyo_simulator.resources.catalogs import Catalogs
from klaviyo_simulator.resources.coupons import Coupons
from klaviyo_simulator.resources.custom_metrics import CustomMetrics
from klaviyo_simulator.resources.events import Events
from klaviyo_simulator.resources.flows import Flows
from klaviyo_simulator.resources.forms import Forms
from klaviyo_simulator.resources.images import Images
from klaviyo_simulator.resources.lists import Lists
from klaviyo_simulator.resources.metric_properties import MetricProperties
from klaviyo_simulator.resources.metrics import Metrics
from klaviyo_simulator.resources.profiles import Profiles
from klaviyo_simulator.resources.push_tokens import PushTokens
from klaviyo_simulator.resources.reviews import Reviews
from klaviyo_simulator.resources.segments import Segments
from klaviyo_simulator.resources.tags import Tags
from klaviyo_simulator.resources.templates import Templates
from klaviyo_simulator.resources.tracking_settings import TrackingSettings
from klaviyo_simulator.resources.universal_content import UniversalContent
from klaviyo_simulator.resources.web_feeds import WebFeeds
from klaviyo_simulator.resources.webhooks import Webhooks

# In `advance` order (each kind applies its share of one change in turn).
ROW_KINDS: tuple[type[RowKind], ...] = (
    Campaigns,
    Flows,
    Templates,
    Lists,
    Segments,
    Metrics,
    Tags,
    Coupons,
    Forms,
    Images,
    PushTokens,
    Catalogs,
    Accounts,
    MetricProperties,
    UniversalContent,
    Reviews,
    WebFeeds,
    Webhooks,
    CustomMetrics,
    TrackingSettings,
)

__all__ = ["ROW_KINDS", "Events", "Profiles", "Resource", "RowKind"]
