"""Endpoint rules for the simulator: the shared endpoint facts (`klaviyo_source.endpoints`, read
from the vendored OpenAPI spec) for the GET operations it serves, plus each one's resource type.

Nothing here is hand-copied but the list of served paths: filters, sorts, page sizes, sparse
fieldsets, includes, additional-fields, scopes and rate tiers (conditional ones included) are the
same facts the connector's client and rate limiter use.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from klaviyo_source.endpoints import (
    ConditionalTier,
    Endpoint,
    FilterRule,
    PageSize,
    endpoints,
    read_spec,
)

__all__ = ["ConditionalTier", "EndpointRule", "FilterRule", "PageSize", "all_scopes", "endpoint_rules"]

# The GET operations the simulator serves: path template -> resource type of `data`.
SERVED_PATHS: dict[str, str] = {
    "/api/profiles": "profile",
    "/api/events": "event",
    "/api/metrics": "metric",
    "/api/lists": "list",
    "/api/lists/{id}": "list",
    "/api/lists/{id}/profiles": "profile",
    "/api/segments": "segment",
    "/api/segments/{id}": "segment",
    "/api/segments/{id}/profiles": "profile",
    "/api/templates": "template",
    "/api/campaigns": "campaign",
    "/api/campaigns/{id}": "campaign",
    "/api/campaigns/{id}/campaign-messages": "campaign-message",
    "/api/campaign-messages/{id}": "campaign-message",
    "/api/campaign-recipient-estimations/{id}": "campaign-recipient-estimation",
    "/api/flows": "flow",
    "/api/flows/{id}/flow-actions": "flow-action",
    "/api/flow-actions/{id}/flow-messages": "flow-message",
    "/api/tags": "tag",
    "/api/tag-groups": "tag-group",
    "/api/coupons": "coupon",
    "/api/coupon-codes": "coupon-code",
    "/api/forms": "form",
    "/api/forms/{id}/form-versions": "form-version",
    "/api/images": "image",
    "/api/push-tokens": "push-token",
    "/api/catalog-items": "catalog-item",
    "/api/catalog-variants": "catalog-variant",
    "/api/catalog-categories": "catalog-category",
    "/api/accounts": "account",
    "/api/metrics/{id}/metric-properties": "metric-property",
    "/api/template-universal-content": "template-universal-content",
    "/api/reviews": "review",
    "/api/web-feeds": "web-feed",
    "/api/webhooks": "webhook",
    "/api/custom-metrics": "custom-metric",
    "/api/tracking-settings": "tracking-setting",
    # Relationship listings (resource identifiers only): the connector's id scans for deletions.
    "/api/lists/{id}/relationships/profiles": "profile",
    "/api/segments/{id}/relationships/profiles": "profile",
    "/api/flow-actions/{id}/relationships/flow-messages": "flow-message",
    "/api/forms/{id}/relationships/form-versions": "form-version",
}


@dataclass(frozen=True, kw_only=True)
class EndpointRule(Endpoint):
    """Everything the simulator enforces for one GET operation."""

    resource_type: str


@cache
def load_spec() -> dict[str, Any]:
    """The vendored OpenAPI document (parsed once per process)."""
    return read_spec()


@cache
def endpoint_rules() -> dict[str, EndpointRule]:
    """Path template -> rule, for every GET operation the simulator serves."""
    facts = endpoints()
    return {
        path: EndpointRule(**vars(facts[path]), resource_type=rtype) for path, rtype in SERVED_PATHS.items()
    }


def all_scopes() -> frozenset[str]:
    """Every scope any served endpoint needs (what a full-access key carries)."""
    return frozenset(s for rule in endpoint_rules().values() for s in rule.scopes)
