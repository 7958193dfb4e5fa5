"""Shapers of the pre-serialized fast path: a page's records as raw JSON in, JSON texts out.

Each raw shaper gives, byte for byte, what its dict shaper (streams/records.py) followed by
`orjson.dumps` gives for the same records (tests/engine/test_rawshape.py compares them), but
reads only the parts of a record it needs (`Stream.raw_reads`: a profile's location, its
subscriptions, an event's relationships), which the engine keeps as raw JSON in the same pass
that splits the page; the rest of the record stays the bytes Klaviyo sent. A record whose parts
are not shaped as expected takes the dict shaper (`RawSlice.record` parses it as the dict path
does), so odd data costs time, never correctness. A shaper's records are `Serialized`: the JSON
text of each record (bytes), which a sink that writes lines joins as they are, and which reads as
`orjson.Fragment`s for any other.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import overload

import msgspec
import orjson

from klaviyo_source.streams import records as shape
from klaviyo_source.streams.records import Page, Record

Path = tuple[str, ...]
RELATIONSHIPS: Path = ("relationships",)
LOCATION: Path = ("attributes", "location")
SUBSCRIPTIONS: Path = ("attributes", "subscriptions")

_DIGITS = frozenset(b"-0123456789")
_NOTHING = (b"", b"null")


class RawSlice:
    """The records of one page a member stream receives: raw JSON slices, the id and cursor of
    each (as sent), the parts its shaper reads (`parts[path][i]`, empty when absent) and the page's
    `included` (as sent)."""

    __slots__ = (
        "_key",
        "_page",
        "breaks",
        "cursor_field",
        "cursors",
        "ids",
        "included",
        "keyed",
        "parts",
        "records",
    )

    def __init__(
        self,
        records: list[msgspec.Raw],
        ids: list[str],
        cursors: list[str],
        cursor_field: str,
        included: bytes,
        parts: dict[Path, list[msgspec.Raw]],
    ) -> None:
        self.records = records
        self.ids = ids
        self.cursors = cursors
        self.cursor_field = cursor_field
        self.included = included
        self.parts = parts
        self.keyed = True  # False: nobody tracks these records' keys (no key rows needed)
        self.breaks = True  # False: the page holds no raw line break (`RawPage.breaks`)
        self._key = b',"' + cursor_field.encode() + b'":'
        self._page: Page | None = None

    def text(self, i: int) -> bytes:
        """Record i as listed plus the top-level cursor copy (the passthrough record)."""
        raw = memoryview(self.records[i])
        return b"".join((raw[:-1], self._key, orjson.dumps(self.cursors[i]), b"}"))

    def spliced(self, i: int, head: bytes | memoryview, tail: bytes | memoryview) -> bytes:
        """`head` + `tail` + the cursor copy + "}": record i rebuilt around a replaced part."""
        return b"".join((head, tail, self._key, orjson.dumps(self.cursors[i]), b"}"))

    def record(self, i: int) -> Record:
        """Record i as the dict path has it: parsed, with the top-level cursor copy."""
        record: Record = orjson.loads(memoryview(self.records[i]))
        record[self.cursor_field] = self.cursors[i]
        return record

    @property
    def page(self) -> Page:
        """The page as dict shapers see it (only its `included` is parsed)."""
        if self._page is None:
            included = orjson.loads(self.included) if self.included else None
            self._page = Page({"included": included} if included is not None else {})
        return self._page


class Serialized(Sequence[orjson.Fragment]):
    """Records as JSON texts (`texts`, bytes: what `orjson.dumps` gives for the dict records),
    read as `orjson.Fragment`s (one made per item read). `breaks`: a text may hold a raw line
    break (between tokens, from the page as sent; orjson's own output never does)."""

    __slots__ = ("breaks", "texts")

    def __init__(self, texts: list[bytes], *, breaks: bool = False) -> None:
        self.texts = texts
        self.breaks = breaks

    def __len__(self) -> int:
        return len(self.texts)

    @overload
    def __getitem__(self, index: int) -> orjson.Fragment: ...
    @overload
    def __getitem__(self, index: slice) -> list[orjson.Fragment]: ...
    def __getitem__(self, index: int | slice) -> orjson.Fragment | list[orjson.Fragment]:
        if isinstance(index, slice):
            return [orjson.Fragment(t) for t in self.texts[index]]
        return orjson.Fragment(self.texts[index])

    def __iter__(self) -> Iterator[orjson.Fragment]:
        return map(orjson.Fragment, self.texts)


# The records, and rows holding at least each record's primary key (and `Stream.replaces`
# column) in the same order, for the engine's key tracking (deletions).
RawRows = tuple[Serialized, list[Record]]
RawShaper = Callable[[RawSlice], RawRows]


def _dumped(records: list[Record]) -> RawRows:
    dumps = orjson.dumps
    return Serialized([dumps(r) for r in records]), records


def _by_id(s: RawSlice, out: list[bytes]) -> RawRows:
    """One record out per record in: their keys are the ids."""
    return Serialized(out, breaks=s.breaks), [{"id": i} for i in s.ids] if s.keyed else []


# events_detailed: relationships merged from the page's `included`.


class _Relationship(msgspec.Struct):
    data: msgspec.Raw = msgspec.Raw()  # empty when absent


_RELATIONSHIPS = msgspec.json.Decoder(dict[str, _Relationship])
_RELATIONSHIPS_KEY = b',"relationships":'
_DATA_KEY = b'"data":'
_TYPE_OPEN = b'{"type":"'
_SAME = b""  # a cached `data` value the merge leaves as it is


def _merge_data(data: bytes, index: shape.IncludedIndex) -> bytes:
    """A relationship's `data` (as sent) merged as `records.merge_included` merges it, serialized;
    `_SAME` when unchanged."""
    value = orjson.loads(data)
    if isinstance(value, list):
        value = [shape.merged_ref(ref, index) for ref in value]
    elif isinstance(value, dict):
        value = shape.merged_ref(value, index)
    else:
        return _SAME
    merged = orjson.dumps(value)
    return _SAME if merged == data else merged


def merge_included_page(s: RawSlice) -> RawRows:
    """`records.merge_included_page`: only each record's `relationships` is read, and only the
    `data` values that point into the page's `included` are replaced (each distinct value is
    merged once per page: an event's metric), in place in the record's bytes."""
    index = s.page.included
    if not index:
        return _by_id(s, [s.text(i) for i in range(len(s.records))])
    return _by_id(s, _merged_each(s, index))


def _merged_each(s: RawSlice, index: shape.IncludedIndex) -> list[bytes]:
    """The records' texts merged. A record whose relationships are not {name: {"data": ...}}
    with exactly one "data" key each goes the dict way; `data` objects of a type the page does
    not include (an event's profile) are left as they are without a look inside."""
    included = tuple({b'{"type":' + orjson.dumps(t) for t, _ in index})
    done: dict[bytes, bytes] = {b"[]": _SAME, b"null": _SAME}
    decode, key, data_key, same = _RELATIONSHIPS.decode, _RELATIONSHIPS_KEY, _DATA_KEY, _SAME
    out = []
    relationships = s.parts[RELATIONSHIPS]
    for i, part in enumerate(relationships):
        value = bytes(part)
        try:
            decoded = decode(value) if value else {}
        except msgspec.DecodeError:
            decoded = None
        parts: list[bytes] | None = None  # None: the dict way
        if decoded is not None:
            parts = []
            offset = present = 0
            for relationship in decoded.values():
                if not relationship.data:
                    continue
                present += 1
                data = bytes(relationship.data)
                new = done.get(data)
                if new is None:
                    if data.startswith(_TYPE_OPEN) and not data.startswith(included) and b"\\" not in data:
                        continue  # a type the page does not include: as it is
                    new = done[data] = _merge_data(data, index)
                if new is same:
                    continue
                at = value.find(data_key + data, offset)
                if at < 0:
                    parts = None
                    break
                at += len(data_key)
                parts += (value[offset:at], new)
                offset = at + len(data)
            if parts and value.count(data_key) != present:
                parts = None
        if parts == []:
            out.append(s.text(i))
            continue
        whole = bytes(s.records[i])
        at = whole.rfind(key)
        start = at + len(key)
        end = start + len(value)
        if parts is None or at < 0 or whole[start:end] != value:  # not shaped as expected
            out.append(orjson.dumps(shape.merge_included(s.record(i), index)))
        else:
            view = memoryview(whole)
            parts.append(value[offset:])
            out.append(s.spliced(i, b"".join((view[:start], *parts)), view[end:-1]))
    return out


# profiles: a numeric location.region becomes a string.


class _Location(msgspec.Struct):
    region: msgspec.Raw = msgspec.Raw()


_LOCATION = msgspec.json.Decoder(_Location)


def normalize_profiles(s: RawSlice) -> RawRows:
    """`records.normalize_profiles`: records pass as they are unless their region is a number."""
    out = []
    locations = s.parts[LOCATION]
    for i in range(len(s.records)):
        location = bytes(locations[i])
        plain = location in _NOTHING
        if not plain:
            try:
                region = bytes(_LOCATION.decode(location).region)
                plain = not region or region[0] not in _DIGITS
            except msgspec.DecodeError:
                pass
        if plain:
            out.append(s.text(i))
        else:
            record = s.record(i)
            shape.normalize_profile(record)
            out.append(orjson.dumps(record))
    return _by_id(s, out)


# global_exclusions: only profiles with an email suppression (few), shaped the dict way.


class _Marketing(msgspec.Struct):
    suppression: msgspec.Raw = msgspec.Raw()


class _Email(msgspec.Struct):
    marketing: _Marketing | None = None


class _Subscriptions(msgspec.Struct):
    email: _Email | None = None


_SUBSCRIPTIONS = msgspec.json.Decoder(_Subscriptions | None)


def _maybe_suppressed(subscriptions: bytes) -> bool:
    if not subscriptions:
        return False
    try:
        decoded = _SUBSCRIPTIONS.decode(subscriptions)
    except msgspec.DecodeError:
        return True  # shaped otherwise: the dict shaper decides
    if decoded is None or decoded.email is None or decoded.email.marketing is None:
        return False
    suppression = bytes(decoded.email.marketing.suppression)
    return suppression not in _NOTHING and suppression != b"[]"


def global_exclusions(s: RawSlice) -> RawRows:
    """`records.global_exclusions`: the suppressed profiles only are parsed and shaped."""
    rows = []
    subscriptions = s.parts[SUBSCRIPTIONS]
    for i in range(len(s.records)):
        if _maybe_suppressed(bytes(subscriptions[i])):
            shaped = shape.global_exclusion(s.record(i))
            if shaped is not None:
                rows.append(shaped)
    return _dumped(rows)


# profile_subscriptions, list_exclusions: rows from the subscriptions alone.


def from_subscriptions(shaper: shape.Shaper) -> RawShaper:
    """A dict shaper that reads a profile's id, cursor and `attributes.subscriptions` only, run
    on those parts (its rows hold nothing else, so they serialize the same)."""

    def run(s: RawSlice) -> RawRows:
        field = s.cursor_field
        loads = orjson.loads
        partial: list[Record] = []
        subscriptions = s.parts[SUBSCRIPTIONS]
        ids, cursors = s.ids, s.cursors
        for i, part in enumerate(subscriptions):
            if not part:
                partial.append(s.record(i))  # absent: the dict shaper sees the whole record
                continue
            attributes = {"subscriptions": loads(memoryview(part))}
            partial.append({"id": ids[i], "attributes": attributes, field: cursors[i]})
        return _dumped(shaper(partial, s.page))

    return run
