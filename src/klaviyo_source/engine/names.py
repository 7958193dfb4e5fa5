"""Names standing for ids in a config list (metric names in `event_metric_ids`), resolved once per
read from the listing that names them (`attributes.name` of GET /api/metrics).

A value that is an id of that listing stays as it is; a name becomes the ids of every resource of
that name (exact match first, else case-insensitive: Klaviyo has one metric per integration, so
"Placed Order" can be two); anything else stays as given, with a warning (Airbyte's connector
filters on any value, and a deleted metric's events may still be wanted).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from klaviyo_source.http.client import KlaviyoClient


@dataclass
class Resolved:
    ids: tuple[str, ...]
    notes: list[str] = field(default_factory=list)  # INFO: which name became which ids
    warnings: list[str] = field(default_factory=list)


async def named_ids(client: KlaviyoClient, path: str) -> tuple[set[str], dict[str, list[str]], int]:
    """(every id, name -> ids, requests sent) of a listing, following links.next."""
    ids: set[str] = set()
    by_name: dict[str, list[str]] = {}
    url: str | None = path
    seen: set[str] = set()
    while url is not None and url not in seen:
        seen.add(url)
        doc: dict[str, Any] = await client.get_json(url)
        for item in doc.get("data") or ():
            if not isinstance(item, dict) or not isinstance(item.get("id"), str):
                continue
            ids.add(item["id"])
            name = (item.get("attributes") or {}).get("name")
            if isinstance(name, str):
                by_name.setdefault(name, []).append(item["id"])
        links = doc.get("links")
        url = links.get("next") if isinstance(links, dict) else None
    return ids, by_name, len(seen)


def resolve(values: tuple[str, ...], ids: set[str], by_name: dict[str, list[str]], setting: str) -> Resolved:
    """`values` with names replaced by their ids (order kept, duplicates dropped)."""
    folded: dict[str, list[str]] = {}
    for name, named in by_name.items():
        folded.setdefault(name.casefold(), []).extend(named)
    out: list[str] = []
    result = Resolved(())
    for value in values:
        if value in ids:
            out.append(value)
            continue
        found = by_name.get(value) or folded.get(value.casefold())
        if found:
            out.extend(found)
            result.notes.append(f"{setting}: '{value}' is the name of {', '.join(sorted(found))}.")
        else:
            out.append(value)
            result.warnings.append(
                f"{setting}: '{value}' is neither an id nor a name in {len(ids)} listed; it is used "
                "as an id (no record matches unless it is one)."
            )
    result.ids = tuple(dict.fromkeys(out))
    return result
