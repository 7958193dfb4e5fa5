"""The load path's parts: the key filter, raw chunks, and the cleanup of spools a killed sync left."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from klaviyo_source.destinations.keyfilter import KeyFilter, build
from klaviyo_source.destinations.rawbatch import Shape, blocks, decode_any
from klaviyo_source.destinations.spool import OWNER_FILE, SPOOL_PREFIX, Spool, remove_stale_spools


def test_the_key_filter_never_misses_a_key_and_rarely_claims_one() -> None:
    rng = np.random.default_rng(7)
    held = rng.integers(0, 2**63, size=200_000, dtype=np.uint64)
    keys = build(len(held), lambda: [held[:100_000], held[100_000:]])
    assert keys.may_hold(held).all()
    others = rng.integers(0, 2**63, size=200_000, dtype=np.uint64)
    assert keys.may_hold(others).mean() < 0.001
    assert not KeyFilter().may_hold(others).any()


def test_raw_chunks_keep_values_as_sent(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    big = 2**70 + 1
    spool.add([{"id": "a", "attributes": {"n": big, "o": {"x": [1, 2]}}}], _now())
    spool.add([{"id": "b", "attributes": None, "extra": "tab\there"}], _now())
    taken = spool.take()
    assert taken is not None
    (block,) = blocks(taken.path)
    chunk = decode_any(block)
    assert chunk.top == {"id", "attributes", "extra"} and chunk.attributes == {"n", "o"}
    assert [bytes(v) for v in chunk.values(("attributes", "n"))] == [str(big).encode(), b"null"]
    assert [bytes(v) for v in chunk.values(("attributes", "o"))] == [b'{"x":[1,2]}', b"null"]
    lines = chunk.tsv([("id",), ("extra",), ("attributes", "n")]).splitlines()
    assert lines[1].split(b"\t")[2:] == [b'"b"', b'"tab\\there"', b"null"]
    # a shape of known keys decodes the same; a record with another key makes it step aside
    assert Shape(["id", "extra"], ["n", "o"]).decode(block) is not None
    assert Shape(["id"], ["n", "o"]).decode(block) is None


def test_spool_folders_of_dead_syncs_are_removed(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True)
    stale, alive, unowned = (tmp_path / f"{SPOOL_PREFIX}{n}" for n in ("stale", "alive", "unowned"))
    for folder in (stale, alive, unowned):
        folder.mkdir()
    (stale / OWNER_FILE).write_text(dead.stdout.decode().strip())
    (stale / "batch-1.jsonl").write_text("{}\n")
    (alive / OWNER_FILE).write_text(str(os.getppid()))
    assert remove_stale_spools(tmp_path) == [stale]
    assert not stale.exists() and alive.exists() and unowned.exists()


def _now() -> datetime:
    return datetime.now(UTC)
