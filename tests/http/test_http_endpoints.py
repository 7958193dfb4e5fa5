"""Endpoint facts come from the vendored spec once, and the connector and simulator share them."""

from __future__ import annotations

import subprocess
import sys

import pytest

from klaviyo_simulator.spec import endpoint_rules
from klaviyo_source.endpoints import bucket_for, endpoint_for, endpoints, rate_for, scopes_for


@pytest.mark.parametrize(
    ("path", "params", "bucket"),
    [
        ("/api/lists", {}, "get_lists"),
        ("/api/lists/", {}, "get_lists"),
        ("/api/lists/Y6nRLr", {}, "get_list"),
        ("/api/lists/Y6nRLr", {"additional-fields[list]": "profile_count"}, "get_list:profile_count"),
        ("/api/profiles", {"additional-fields[profile]": "subscriptions"}, "get_profiles"),
        (
            "/api/profiles",
            {"additional-fields[profile]": "subscriptions,predictive_analytics"},
            "get_profiles:predictive_analytics",
        ),
        ("/api/profiles/01H/", {"include": "lists"}, "get_profile"),  # "lists" is not "list"
        ("/api/profiles/01H", {"include": "list"}, "get_profile:list"),
        ("/api/lists/X/profiles", {}, "get_profiles_for_list"),
        ("/api/campaign-recipient-estimations/01J", {}, "get_campaign_recipient_estimation"),
        ("/api/events", None, "get_events"),
        ("/api/nowhere", {}, "unknown"),
        ("/", {}, "unknown"),
    ],
)
def test_bucket_for_matches_concrete_paths_and_conditional_tiers(
    path: str, params: dict[str, str] | None, bucket: str
) -> None:
    assert bucket_for(path, params) == bucket


def test_rates_and_scopes_come_from_the_spec() -> None:
    assert rate_for("get_events") == (350, 3500)
    assert rate_for("get_list") == (75, 750)
    assert rate_for("get_list:profile_count") == (1, 15)
    assert rate_for("get_profiles:predictive_analytics") == (10, 150)
    assert rate_for("no_such_operation") == (1, 15)
    assert scopes_for("/api/lists/abc") == ("lists:read",)
    assert scopes_for("/api/campaign-recipient-estimations/{id}") == ("campaigns:read",)
    assert scopes_for("/api/nowhere") == ()
    profiles = endpoint_for("/api/profiles")
    assert profiles is not None and profiles.page_size is not None
    assert (profiles.page_size.default, profiles.page_size.maximum) == (20, 100)
    assert "updated" in profiles.sorts and "greater-than" in profiles.filters["updated"].operators


def test_the_simulator_enforces_the_same_facts() -> None:
    facts = endpoints()
    for template, rule in endpoint_rules().items():
        shared = facts[template]
        assert (rule.operation, rule.scopes, rule.burst, rule.steady) == (
            shared.operation,
            shared.scopes,
            shared.burst,
            shared.steady,
        )
        assert rule.conditional_tiers == shared.conditional_tiers and rule.filters == shared.filters


def test_spec_and_discover_do_not_parse_the_spec() -> None:
    """The 3 MB spec is parsed on first use, never by `spec`/`discover` (they stay quick)."""
    code = (
        "import sys, io, klaviyo_source.endpoints as e\n"
        "from klaviyo_source.airbyte.entrypoint import main\n"
        "main(['spec'], out=io.BytesIO())\n"
        "assert e.endpoints.cache_info().currsize == 0, 'spec parsed'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
