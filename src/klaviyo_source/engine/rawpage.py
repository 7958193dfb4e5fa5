"""Listing pages decoded without building Python objects for every record (the fast path).

msgspec splits the page into one raw JSON slice per record and reads only what the engine needs
(`id` and the cursor attribute); records then go to sinks that accept pre-serialized JSON (the
record's bytes plus the top-level cursor copy Airbyte adds, `rawshape.Serialized`), so nothing
is parsed into dicts, re-serialized or freed object by object. About 3x less CPU per event than
orjson.loads + dumps (bench/read_cpu.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import msgspec
import orjson

from klaviyo_source import jsonio
from klaviyo_source.streams.rawshape import RawSlice


class _Links(msgspec.Struct):
    next: str | None = None


class _Envelope(msgspec.Struct):
    data: list[msgspec.Raw]
    links: _Links | None = None
    included: msgspec.Raw = msgspec.Raw()


Path = tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RawPage:
    records: list[msgspec.Raw]
    ids: list[str]
    cursors: list[str]  # the cursor attribute of each record, as sent
    next: str | None
    included: bytes = b""  # the page's `included` as sent (empty when absent)
    body: bytes = b""  # the whole page (parsed after all when it goes the dict way)
    # A datetime the listing normalizes (`Listing.datetime_paths`) was written with a space.
    spaced: bool = False
    # The parts raw shapers read (("relationships",), ("attributes", "subscriptions")), each
    # record's as sent (empty when absent): found in the same pass that splits the page.
    parts: dict[Path, list[msgspec.Raw]] = field(default_factory=dict)
    breaks: bool = True  # the page holds a raw line break (between tokens): its texts are checked


_ENVELOPE = msgspec.json.Decoder(_Envelope)


@cache
def _head_decoder(attribute: str, reads: tuple[Path, ...]) -> msgspec.json.Decoder[Any]:
    top = [p[0] for p in reads if len(p) == 1]
    under = [p[1] for p in reads if len(p) == 2 and p[0] == "attributes"]
    if len(top) + len(under) != len(reads) or attribute in under or {"id", "attributes"} & set(top):
        raise ValueError(f"the fast path reads top-level and attributes.<name> parts, not {reads}")
    empty = msgspec.Raw()
    attributes = msgspec.defstruct(
        "Attributes", [(attribute, str), *((name, msgspec.Raw, empty) for name in under)]
    )
    head = msgspec.defstruct(
        "Head", [("id", str), ("attributes", attributes), *((name, msgspec.Raw, empty) for name in top)]
    )
    return msgspec.json.Decoder(head)


# A string whose 11th character is a space (`times.iso_datetime` rewrites those: "2024-09-03
# 10:00:00"); with an escape in the part, the offsets are unknown: assume one.
_SPACED = re.compile(rb'"[^"\\]{10} ')


def _part_of(path: Path) -> Path:
    """The part of a record (top-level or under attributes) that holds `path`."""
    return path[:2] if path[0] == "attributes" else path[:1]


def page_decoder(
    cursor_path: Path, reads: tuple[Path, ...] = (), *, checks: tuple[Path, ...] = ()
) -> Callable[[bytes], RawPage]:
    """A decoder for pages whose records keep their cursor at ("attributes", name); `reads`: the
    parts to keep of each record (top-level or under attributes); `checks`: datetimes the
    listing normalizes (`RawPage.spaced` when one of them may be written with a space)."""
    if len(cursor_path) != 2 or cursor_path[0] != "attributes":
        raise ValueError(f"the fast path reads cursors at attributes.<name>, not {cursor_path}")
    attribute = cursor_path[1]
    checked = tuple(dict.fromkeys(_part_of(path) for path in checks))
    heads = _head_decoder(attribute, tuple(sorted(set(reads) | set(checked))))

    def decode(body: bytes) -> RawPage:
        """ValueError (retried as malformed) unless every record has an id and the cursor."""
        try:
            envelope = _ENVELOPE.decode(body)
            decoded = [heads.decode(raw) for raw in envelope.data]
        except msgspec.DecodeError as error:
            raise ValueError(f"malformed page ({error})") from None
        next_url = envelope.links.next if envelope.links is not None else None
        ids = [h.id for h in decoded]
        cursors = [getattr(h.attributes, attribute) for h in decoded]
        parts = {
            path: [getattr(h.attributes if len(path) == 2 else h, path[-1]) for h in decoded]
            for path in {*reads, *checked}
        }
        # One fast test per part (a space at all), the pattern only where there is one.
        spaced = any(
            b"\\" in raw or _SPACED.search(raw) is not None
            for path in checked
            for part in parts[path]
            if b" " in (raw := bytes(part))
        )
        included = bytes(envelope.included)
        breaks = b"\n" in body or b"\r" in body
        return RawPage(envelope.data, ids, cursors, next_url, included, body, spaced, parts, breaks)

    return decode


def cursor_key(field: str) -> bytes:
    """The bytes that open the top-level cursor copy inside a record's JSON object."""
    return b',"' + field.encode() + b'":'


def text(raw: msgspec.Raw, key: bytes, cursor: str) -> bytes:
    """The record's JSON with the top-level cursor copy (`key` from `cursor_key`) appended."""
    view = memoryview(raw)
    return b"".join((view[:-1], key, orjson.dumps(cursor), b"}"))


def repaired(raw: msgspec.Raw, attribute: str, field: str, cursor: str) -> bytes:
    """The record with its cursor attribute replaced by `cursor` (normalized) and the top-level
    copy added: the slow path, for pages whose cursors Klaviyo wrote out of ISO-8601."""
    record = jsonio.loads(raw)
    record["attributes"][attribute] = cursor
    record[field] = cursor
    return jsonio.dumps(record)


def raw_slice(page: RawPage, chosen: Sequence[int], reads: tuple[Path, ...], cursor_field: str) -> RawSlice:
    """The records `chosen` of a page (a range or a list of indices) as a raw shaper reads them."""

    def pick(values: list[Any]) -> list[Any]:
        if isinstance(chosen, range) and chosen.step == 1:
            return values[chosen.start : chosen.stop]
        return [values[i] for i in chosen]

    parts = {path: pick(page.parts[path]) for path in reads}
    part = RawSlice(
        pick(page.records), pick(page.ids), pick(page.cursors), cursor_field, page.included, parts
    )
    part.breaks = page.breaks
    return part
