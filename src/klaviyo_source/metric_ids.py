"""Metric ids from a config's comma-separated list of metric ids or names (via GET /api/metrics).

Used by the report streams (`metric_ids`, `metric_aggregate_metrics`) and meant for any key that
names metrics (`event_metric_ids`): each entry is taken as an id when the account has a metric
with that id, else as a metric name (exact, then case-insensitive); an entry matching neither
is dropped with a warning. An empty list means every metric of the account.
"""

from __future__ import annotations

from typing import Any

from klaviyo_source.http.client import KlaviyoClient, RequestObserver

METRICS_PATH = "/api/metrics"


def split_list(text: str) -> list[str]:
    """`"a, b,,c"` -> ["a", "b", "c"] (order kept, duplicates dropped)."""
    return list(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))


async def account_metrics(
    client: KlaviyoClient, observer: RequestObserver | None = None
) -> list[dict[str, Any]]:
    """Every metric resource of the account (following links.next)."""
    out: list[dict[str, Any]] = []
    url: str | None = METRICS_PATH
    while url:
        document = await client.get_json(url, None, observer=observer)
        out.extend(m for m in document.get("data", []) if isinstance(m, dict))
        url = (document.get("links") or {}).get("next")
    return out


def match_metrics(entries: list[str], metrics: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """(ids in the entries' order, warnings for entries that name no metric); [] = every metric."""
    ids = [str(m.get("id")) for m in metrics if m.get("id")]
    if not entries:
        return ids, []
    names: dict[str, str] = {}
    folded: dict[str, str] = {}
    for metric in metrics:
        name = str((metric.get("attributes") or {}).get("name") or "")
        names.setdefault(name, str(metric.get("id")))
        folded.setdefault(name.casefold(), str(metric.get("id")))
    out, warnings = [], []
    for entry in entries:
        found = entry if entry in ids else names.get(entry) or folded.get(entry.casefold())
        if found is None:
            warnings.append(
                f"Metric '{entry}' is neither a metric id nor a metric name of this account; skipped."
            )
        elif found not in out:
            out.append(found)
    return out, warnings


async def resolve_metric_ids(
    client: KlaviyoClient, text: str, observer: RequestObserver | None = None
) -> tuple[list[str], list[str]]:
    """A config's comma-separated metric ids or names -> (metric ids, warnings)."""
    return match_metrics(split_list(text), await account_metrics(client, observer))
