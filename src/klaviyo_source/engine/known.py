"""The keys a destination holds of one stream, kept in the stream's state, and deletion markers.

The engine cannot see the destination, so it keeps the set itself: every key it emitted (the
saved set plus this run's records), minus every key it emitted a deletion for. The set travels
in the stream's state under `_reconcile` (next to the cursor, which old readers ignore), so both
faces work the same way and a state without it still loads (reconciliation then starts from
what this run emits and what the first scan lists). Encoding: keys one per line (composite keys
tab-joined), zlib, base64: a 6-character Klaviyo id costs ~4 bytes, a 26-character profile id ~17.
The final state of a read holds the keys sorted (`encode_keys`: the same set, the same text);
checkpoints before it append this run's new keys to one running zlib stream (`_Appender`), so a
checkpoint compresses the keys added since the last one, not the whole set again (a fan-out stream of
100,000 rows checkpoints a dozen times); sets under `APPEND_FROM` keys are encoded whole. Above
`MAX_KEYS` the set is dropped (state stays small) and the stream's deletions are no longer
detected, with a warning.
"""

from __future__ import annotations

import base64
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from klaviyo_source.times import format_time, parse_time

Key = tuple[str, ...]
STATE_KEY = "_reconcile"
DELETED_AT = "_ab_cdc_deleted_at"  # Airbyte's CDC convention, honoured by destinations in dedup mode
MAX_KEYS = 250_000
APPEND_FROM = 5_000  # smaller sets are encoded whole at every checkpoint (an appender holds ~0.4 MB)


def encode_keys(keys: Iterable[Key]) -> str:
    text = "\n".join(sorted("\t".join(key) for key in keys))
    return base64.b64encode(zlib.compress(text.encode(), 6)).decode()


_FINAL = b"\x03\x00"  # an empty final block: ends a zlib stream whose output was sync-flushed


class _Appender:
    """A set's encoding kept up to date as keys are added: one zlib stream fed in insertion
    order and sync-flushed at each checkpoint, so the last blob, minus its ending (an empty final
    block and the Adler-32 of the text), is the start of the next one. Only the compressor's
    state is kept between checkpoints (the blob itself lives in the state)."""

    def __init__(self, keys: Iterable[Key]) -> None:
        self._stream = zlib.compressobj(1)  # a checkpoint's keys: speed over the last 7 % of size
        self._adler = zlib.adler32(b"")
        self._out: list[bytes] = []
        self._blob = ""  # the last blob: its first `_head` characters encode the stream so far,
        self._head = 0  # but for the last bytes (`_rest`, under 3) and the ending
        self._rest = b""
        self._empty = True
        self.feed(sorted(keys))

    def feed(self, keys: Sequence[Key]) -> None:
        if not keys:
            return
        text = "\n".join(["\t".join(key) for key in keys])
        data = (text if self._empty else "\n" + text).encode()
        self._empty = False
        self._adler = zlib.adler32(data, self._adler)
        self._out.append(self._stream.compress(data))

    def blob(self) -> str:
        new = b"".join((self._rest, *self._out, self._stream.flush(zlib.Z_SYNC_FLUSH)))
        self._out = []
        whole = len(new) - len(new) % 3  # base64 encodes 3 bytes at a time: those stay as they are
        head = base64.b64encode(new[:whole]).decode()
        self._rest = new[whole:]
        ending = base64.b64encode(self._rest + _FINAL + self._adler.to_bytes(4, "big")).decode()
        self._blob = "".join((self._blob[: self._head], head, ending))
        self._head += len(head)
        return self._blob


def decode_keys(blob: str) -> set[Key]:
    text = zlib.decompress(base64.b64decode(blob)).decode()
    return {tuple(line.split("\t")) for line in text.split("\n")} if text else set()


@dataclass(eq=False)
class KnownKeys:
    """One stream's destination keys (`primary_key` order) and its last reconciliation time."""

    primary_key: tuple[str, ...]
    keys: set[Key] = field(default_factory=set)
    at: datetime | None = None  # the last reconciliation (None: never)
    baseline: bool = False  # the keys came from a saved state (else only from this run)
    overflow: bool = False  # more than MAX_KEYS: not tracked
    _columns: dict[int, dict[str, set[Key]]] = field(default_factory=dict)
    _encoded: dict[str, Any] | None = None
    _final: bool = False  # `_encoded` holds the keys sorted
    _appender: _Appender | None = None  # this run's checkpoints (None: start again from `keys`)
    _pending: list[Key] = field(default_factory=list)  # added since the appender was last fed
    _released: bool = False  # read to the end: only the final entry is kept (`release`)

    @classmethod
    def from_state(cls, primary_key: tuple[str, ...], raw: Any) -> KnownKeys:
        """From a saved stream state (any shape); a missing or unreadable entry starts empty."""
        known = cls(primary_key)
        entry = raw.get(STATE_KEY) if isinstance(raw, Mapping) else None
        if not isinstance(entry, Mapping):
            return known
        try:
            if isinstance(entry.get("at"), str):
                known.at = parse_time(entry["at"])
            if entry.get("overflow") is True:
                known.overflow = True
            elif isinstance(entry.get("keys"), str):
                known.keys = decode_keys(entry["keys"])
                known.baseline = True
        except (ValueError, zlib.error, UnicodeDecodeError):
            return cls(primary_key)
        return known

    @property
    def worth_saving(self) -> bool:
        """Anything to keep (a state without the entry reads back the same)."""
        return self._released or bool(self.keys) or self.at is not None or self.overflow

    def state(self, *, final: bool = True) -> dict[str, Any]:
        """The `_reconcile` entry of the stream's state (cached until the keys change). `final`:
        the keys sorted (the read's last state); else in the order they came (a checkpoint)."""
        if self._encoded is None or (final and not self._final):
            entry: dict[str, Any] = {"at": format_time(self.at) if self.at else None}
            if self.overflow:
                entry["overflow"] = True
            else:
                entry["count"] = len(self.keys)
                small = final or len(self.keys) < APPEND_FROM
                entry["keys"] = encode_keys(self.keys) if small else self._appended()
            self._encoded, self._final = entry, final
        if final:
            self._appender, self._pending = None, []  # read to the end: its last blob goes too
        return self._encoded

    def release(self) -> None:
        """The stream was read to the end and its final state made: keep that entry (`state`
        returns it again) and drop the keys, which nothing reads any more (a finished stream's set
        would otherwise stay in memory until the whole read ends)."""
        if self._encoded is None or not self._final:
            return
        self._released = True
        self.keys, self._columns, self._appender, self._pending = set(), {}, None, []

    def _appended(self) -> str:
        if self._appender is None:
            self._appender = _Appender(self.keys)
        else:
            self._appender.feed(self._pending)
        self._pending = []
        return self._appender.blob()

    def _restart(self) -> None:
        """Keys left the set: the next checkpoint encodes it again."""
        self._appender, self._pending, self._encoded = None, [], None

    def key_of(self, record: Mapping[str, Any]) -> Key:
        return tuple(str(record.get(k)) for k in self.primary_key)

    def add(self, records: Iterable[Mapping[str, Any]]) -> None:
        if self.overflow or self._released:
            return
        keys, fresh = self.keys, []
        for key in [self.key_of(r) for r in records]:
            if key not in keys:
                keys.add(key)
                fresh.append(key)
        if not fresh:
            return
        for index, groups in self._columns.items():
            for key in fresh:
                groups.setdefault(key[index], set()).add(key)
        self._encoded = None
        if self._appender is not None:
            self._pending += fresh
        if len(keys) > MAX_KEYS:
            self.overflow = True
            self.keys = set()
            self._columns = {}
            self._restart()

    def remove(self, keys: Iterable[Key]) -> None:
        for key in keys:
            self.keys.discard(key)
            for index, groups in self._columns.items():
                group = groups.get(key[index])
                if group is not None:
                    group.discard(key)
        self._restart()

    def reset(self, keys: set[Key]) -> None:
        self.keys = keys
        self._columns = {}
        self._restart()

    def grouped(self, column: str) -> dict[str, set[Key]]:
        """Known keys by their value in one key column (built once, kept up to date)."""
        index = self.primary_key.index(column)
        groups = self._columns.get(index)
        if groups is None:
            groups = {}
            for key in self.keys:
                groups.setdefault(key[index], set()).add(key)
            self._columns[index] = groups
        return groups

    def stale(self, column: str, parents: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> list[Key]:
        """Known keys of these parents (by `column`) that the parents' current rows no longer have."""
        if self.overflow or not self.keys:
            return []
        groups = self.grouped(column)
        current = {self.key_of(r) for r in rows}
        return sorted(k for p in parents for k in groups.get(p, ()) if k not in current)

    def set_at(self, at: datetime) -> None:
        self.at = at
        self._encoded = None


def deletion_markers(
    primary_key: tuple[str, ...], cursor_field: str | None, keys: Iterable[Key], at: datetime
) -> list[dict[str, Any]]:
    """Deletion records: the key, `_ab_cdc_deleted_at`, and the cursor set to the deletion time (so
    a destination ordering versions by cursor keeps the deletion as the newest version)."""
    stamp = format_time(at)
    out = []
    for key in keys:
        record: dict[str, Any] = dict(zip(primary_key, key, strict=True))
        if cursor_field is not None and cursor_field not in record:
            record[cursor_field] = stamp
        record[DELETED_AT] = stamp
        out.append(record)
    return out


def state_size(entry: Mapping[str, Any]) -> int:
    """Bytes of an entry as JSON (for docs and benchmarks)."""
    return len(orjson.dumps(entry))
