"""A spool file as columns of raw JSON text, a chunk at a time.

msgspec splits each spooled line into its record's top-level values and the values of its
`attributes`, as raw JSON slices (`msgspec.Raw`: nested objects never parsed into Python objects
or re-serialized, integers of any size kept digit for digit). A chunk is then written as
tab-separated lines of those slices (`"text"` values keep their quotes; JSON `null` and a missing
key are both `null`), which DuckDB's CSV reader and Postgres' COPY take without any quoting or
escaping: raw JSON holds no tab or line break outside its strings once whitespace is normalized,
and none inside them. The destination's SQL turns the text into typed columns. A chunk is about
`CHUNK_BYTES` (4 MB) of JSON, so memory does not grow with the batch (no Arrow: its libraries alone
would add ~65 MB to the sync's resident memory).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from operator import attrgetter
from pathlib import Path
from typing import Any

import msgspec

CHUNK_BYTES = 4 << 20
NULL = b"null"
ORD, EXTRACTED = "_ord", "_e"


@dataclass
class RawChunk:
    """Some lines of a spool: their records split into raw values."""

    rows: int
    ords: list[int]
    extracted: list[int]  # microseconds since the epoch
    top: set[str]  # top-level keys the records may have
    attributes: set[str]  # keys their `attributes` may have
    _values: Callable[[tuple[str, ...]], list[Any]]
    nonobject_attributes: int = 0  # records whose `attributes` was not an object (not stored)

    def values(self, path: tuple[str, ...]) -> list[Any]:
        return self._values(path)

    def tsv(self, paths: list[tuple[str, ...]], rows: Sequence[int] | None = None) -> bytes:
        """Lines of `_ord`, `_e` and one raw value per path, tab-separated (only `rows`, indexes
        into the chunk, when given)."""
        columns: list[list[Any]] = [[b"%d" % o for o in self.ords], [b"%d" % e for e in self.extracted]]
        columns += [self.values(path) for path in paths]
        if rows is not None:
            columns = [[column[i] for i in rows] for column in columns]
        count = len(columns[0])
        if not count:
            return b""
        data = b"\n".join(map(b"\t".join, zip(*columns, strict=True))) + b"\n"
        if data.count(b"\n") != count or data.count(b"\t") != count * (len(columns) - 1) or b"\r" in data:
            # whitespace between a value's tokens: a space means the same in JSON
            columns = [[_flat(v) for v in column] for column in columns]
            data = b"\n".join(map(b"\t".join, zip(*columns, strict=True))) + b"\n"
        return data


def _flat(value: Any) -> bytes:
    return bytes(value).replace(b"\t", b" ").replace(b"\n", b" ").replace(b"\r", b" ")


class _Line(msgspec.Struct, gc=False):
    o: int
    e: int
    r: dict[str, msgspec.Raw]


_LINES = msgspec.json.Decoder(_Line)
_OBJECTS = msgspec.json.Decoder(list[dict[str, msgspec.Raw] | None])
_OBJECT = msgspec.json.Decoder(dict[str, msgspec.Raw])
_RAW_NULL = msgspec.Raw(NULL)


def _attributes(records: list[dict[str, msgspec.Raw]]) -> tuple[list[dict[str, msgspec.Raw]], int]:
    raws = [r.get("attributes", NULL) for r in records]
    try:
        parsed = _OBJECTS.decode(b"[" + b",".join(raws) + b"]")
        return [a if a is not None else {} for a in parsed], 0
    except msgspec.ValidationError:  # some record's attributes is not an object: one by one
        out: list[dict[str, msgspec.Raw]] = []
        odd = 0
        for raw in raws:
            try:
                out.append(_OBJECT.decode(raw))
            except msgspec.ValidationError:
                out.append({})
                odd += 1 if bytes(raw) != NULL else 0
        return out, odd


def decode_any(block: bytes) -> RawChunk:
    """Spool lines -> a chunk, whatever keys the records have (dicts of raw values)."""
    lines = _LINES.decode_lines(block)
    records = [line.r for line in lines]
    attributes, odd = _attributes(records)

    def values(path: tuple[str, ...]) -> list[Any]:
        source = records if len(path) == 1 else attributes
        key = path[-1]
        return [item.get(key, NULL) for item in source]

    return RawChunk(
        len(lines),
        [line.o for line in lines],
        [line.e for line in lines],
        set().union(*records),
        set().union(*attributes),
        values,
        odd,
    )


class Shape:
    """A decoder for records whose keys are all known (structs of raw values: about twice as
    fast as dicts); a record with another key, or an `attributes` that is not an object, makes
    `decode` return None (the caller then takes `decode_any` and learns the new keys)."""

    def __init__(self, top: Iterable[str], attributes: Iterable[str]) -> None:
        self.top = sorted(set(top) - {"attributes"})
        self.attribute_keys = sorted(set(attributes))
        inner = msgspec.defstruct(
            "Attributes",
            [(f"a{i}", msgspec.Raw, _RAW_NULL) for i in range(len(self.attribute_keys))],
            rename={f"a{i}": key for i, key in enumerate(self.attribute_keys)},
            forbid_unknown_fields=True,
            gc=False,
        )
        record = msgspec.defstruct(
            "Record",
            [(f"t{i}", msgspec.Raw, _RAW_NULL) for i in range(len(self.top))]
            + [("attributes", inner | None, None)],
            rename={f"t{i}": key for i, key in enumerate(self.top)},
            forbid_unknown_fields=True,
            gc=False,
        )
        line = msgspec.defstruct("Line", [("o", int), ("e", int), ("r", record)], gc=False)
        self._decoder = msgspec.json.Decoder(line)
        self._top = {key: f"t{i}" for i, key in enumerate(self.top)}
        self._inner = {key: f"a{i}" for i, key in enumerate(self.attribute_keys)}

    def fits(self, block: bytes) -> bool:
        """Whether every record of the block has only known keys (and an object or null as its
        `attributes`): a parse with nothing kept."""
        try:
            self._decoder.decode_lines(block)
        except msgspec.ValidationError:
            return False
        return True

    def decode(self, block: bytes) -> RawChunk | None:
        try:
            lines: list[Any] = self._decoder.decode_lines(block)
        except msgspec.ValidationError:
            return None
        records = [line.r for line in lines]
        attributes = [r.attributes for r in records]

        def values(path: tuple[str, ...]) -> list[Any]:
            if len(path) == 1:
                if path[0] not in self._top:
                    return [NULL] * len(records)
                return list(map(attrgetter(self._top[path[0]]), records))
            if path[1] not in self._inner:
                return [NULL] * len(records)
            get = attrgetter(self._inner[path[1]])
            return [NULL if a is None else get(a) for a in attributes]

        return RawChunk(
            len(lines),
            [line.o for line in lines],
            [line.e for line in lines],
            set(self.top),
            set(self.attribute_keys),
            values,
        )


def blocks(path: Path, chunk_bytes: int = CHUNK_BYTES) -> Iterator[bytes]:
    """The spool file in blocks of whole lines of about `chunk_bytes`, in order."""
    rest = b""
    with open(path, "rb") as file:
        while block := file.read(chunk_bytes):
            block = rest + block
            cut = block.rfind(b"\n") + 1
            if cut == 0:  # one line longer than a chunk: read on
                rest = block
                continue
            rest = block[cut:]
            yield block[:cut]
    if rest.strip():
        yield rest


def read_chunks(path: Path, chunk_bytes: int = CHUNK_BYTES) -> Iterator[RawChunk]:
    """The spool file's lines in chunks, whatever their keys (dicts of raw values)."""
    for block in blocks(path, chunk_bytes):
        yield decode_any(block)
