"""A stream's records on their way to the destination: JSON lines in a temporary file.

The sink appends each page as it arrives (`{"o": ordinal, "e": extracted_at_us, "r": record}` per
line), so the process holds no batch in memory however large a batch grows; the destination
loads the file in one transaction with the state that covers it (DuckDB parses it itself, in its
own threads, without the GIL). Records are dicts or pre-serialized `orjson.Fragment`s (the
engine's events fast path): both serialize with one `orjson.dumps`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from klaviyo_source import jsonio
from klaviyo_source.engine.contract import Record

SPOOL_PREFIX = "klaviyo-sync-"
OWNER_FILE = "owner.pid"  # the pid of the sync that made the folder
UNOWNED_AGE = 6 * 3600.0
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


MICROSECOND = timedelta(microseconds=1)
Text = bytes  # a record's JSON text (`Spool.bytes` shadows the name inside the class)


@dataclass
class SpoolFile:
    """A closed spool: what a destination loads."""

    path: Path
    rows: int
    top_keys: frozenset[str] = frozenset()  # top-level keys seen in dict records (fragments: unknown)


def _lines(parts: Sequence[bytes], start: int, micros: int) -> bytes:
    """Spool lines `{"o": ordinal, "e": extracted_at_us, "r": record}` for serialized records, in
    one join (no per-record copy of the record's bytes before it)."""
    prefix = b'{"o":%d,"e":' + b"%d" % micros + b',"r":'
    return b"".join([piece for o, part in enumerate(parts, start) for piece in (prefix % o, part, b"}\n")])


@dataclass
class Spool:
    """One stream's open spool file in `directory`."""

    directory: Path
    rows: int = 0
    bytes: int = 0
    top_keys: set[str] = field(default_factory=set)
    _file: BinaryIO | None = None
    _path: Path | None = None

    def add(self, records: Sequence[Record | orjson.Fragment], extracted_at: datetime) -> None:
        if not records:
            return
        dumps = orjson.dumps
        for record in records:
            if record.__class__ is dict:
                self.top_keys.update(record)
        try:
            parts = [dumps(r) for r in records]
        except TypeError:  # an integer beyond 64 bits: msgspec writes it digit for digit
            parts = [jsonio.dumps(r) for r in records]
        self.add_serialized(parts, extracted_at)

    def add_serialized(self, parts: Sequence[Text], extracted_at: datetime, *, breaks: bool = True) -> None:
        """Records given as their JSON texts (what `add` writes for them); `breaks` False: no text
        holds a raw line break (no need to count them)."""
        if not parts:
            return
        if self._file is None:
            fd, name = tempfile.mkstemp(prefix="batch-", suffix=".jsonl", dir=self.directory)
            self._file, self._path = os.fdopen(fd, "wb", buffering=1 << 20), Path(name)
        micros = (extracted_at - EPOCH) // MICROSECOND
        start = self.rows
        lines = _lines(parts, start, micros)
        if breaks and lines.count(b"\n") != len(parts):  # line breaks between tokens: spaces mean the same
            parts = [jsonio.one_line(part) for part in parts]
            lines = _lines(parts, start, micros)
        self._file.write(lines)
        self.rows += len(parts)
        self.bytes += len(lines)

    def mark(self) -> tuple[int, int]:
        """Where the spool is now (rows, bytes): what a state arriving now covers."""
        return self.rows, self.bytes

    def take(self, upto: tuple[int, int] | None = None) -> SpoolFile | None:
        """Close the file (cut at `upto` when given) and start afresh; None when nothing was added."""
        file, path = self._file, self._path
        rows, top_keys = self.rows, frozenset(self.top_keys)
        self._file, self._path, self.rows, self.bytes, self.top_keys = None, None, 0, 0, set()
        if file is None or path is None:
            return None
        file.close()
        if upto is not None:
            rows = upto[0]
            os.truncate(path, upto[1])
        if rows == 0:
            path.unlink(missing_ok=True)
            return None
        return SpoolFile(path, rows, top_keys)

    def discard(self) -> None:
        taken = self.take()
        if taken is not None:
            taken.path.unlink(missing_ok=True)


def write_spool(directory: Path, records: Sequence[Record], extracted_at: Sequence[datetime]) -> SpoolFile:
    """A spool file of records with their own extraction times (for callers holding a list)."""
    spool = Spool(directory)
    for record, moment in zip(records, extracted_at, strict=True):
        spool.add([record], moment)
    taken = spool.take()
    if taken is None:
        fd, name = tempfile.mkstemp(prefix="batch-", suffix=".jsonl", dir=directory)
        os.close(fd)
        return SpoolFile(Path(name), 0)
    return taken


def read_spool(spool: SpoolFile) -> tuple[list[Record], list[datetime]]:
    """Records (as dicts) and their extraction times, in order (for the Python load path)."""
    records: list[Record] = []
    extracted: list[datetime] = []
    loads, times = orjson.loads, _times()
    with open(spool.path, "rb") as file:
        for line in file:
            item: dict[str, Any] = loads(line)
            records.append(item["r"])
            extracted.append(times(item["e"]))
    return records, extracted


def _times() -> Any:
    cache: dict[int, datetime] = {}

    def at(micros: int) -> datetime:
        moment = cache.get(micros)
        if moment is None:
            moment = cache[micros] = EPOCH + micros * MICROSECOND
        return moment

    return at


def remove(spools: Iterable[SpoolFile]) -> None:
    for spool in spools:
        spool.path.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def remove_stale_spools(root: Path | None = None) -> list[Path]:
    """Remove spool folders whose sync is gone (killed: kill -9 skips `close`); the removed paths.
    A folder whose owner's pid is alive is left alone; one without an owner file (an older
    version's) once it has not changed for `UNOWNED_AGE` seconds."""
    removed: list[Path] = []
    for folder in Path(root or tempfile.gettempdir()).glob(SPOOL_PREFIX + "*"):
        with contextlib.suppress(OSError, ValueError):
            owner_file = folder / OWNER_FILE
            if owner_file.exists():
                owner = int(owner_file.read_text().strip())
                stale = owner != os.getpid() and not _alive(owner)
            else:
                stale = time.time() - folder.stat().st_mtime > UNOWNED_AGE
            if stale:
                shutil.rmtree(folder, ignore_errors=True)
                removed.append(folder)
    return removed
