"""The known-key set's checkpoint encoding (engine/known.py): a checkpoint appends the keys added
since the last one to a running zlib stream; every checkpoint decodes to the set as it is then,
and the final state is the canonical (sorted) encoding of the same set."""

from __future__ import annotations

from klaviyo_source.engine.known import APPEND_FROM, KnownKeys, decode_keys, encode_keys


def rows(group: str, start: int, stop: int) -> list[dict[str, str]]:
    return [{"list_id": group, "profile_id": f"p{i:06d}"} for i in range(start, stop)]


def test_checkpoints_decode_to_the_set_and_the_final_state_is_canonical() -> None:
    known = KnownKeys(("list_id", "profile_id"))
    known.add(rows("b", 0, APPEND_FROM + 10))
    first = known.state(final=False)
    assert decode_keys(first["keys"]) == known.keys and first["count"] == APPEND_FROM + 10
    known.add(rows("a", 0, 300) + rows("b", 5, 8))  # repeats are not appended twice
    second = known.state(final=False)
    assert decode_keys(second["keys"]) == known.keys and second["count"] == APPEND_FROM + 310
    assert known.state(final=False) is second  # unchanged: the same entry
    final = known.state()
    assert final["keys"] == encode_keys(known.keys) and final["count"] == second["count"]
    known.remove([("b", "p000001")])  # keys left the set: encoded whole again
    known.add(rows("c", 0, 2))
    assert decode_keys(known.state(final=False)["keys"]) == known.keys
    assert ("b", "p000001") not in known.keys


def test_small_sets_and_a_saved_baseline() -> None:
    small = KnownKeys(("id",))
    small.add([{"id": "x"}, {"id": "y"}])
    assert small.state(final=False)["keys"] == encode_keys({("x",), ("y",)})
    saved = {"_reconcile": {"at": None, "count": 1, "keys": encode_keys({("old",)})}}
    known = KnownKeys.from_state(("id",), saved)
    known.add([{"id": f"n{i}"} for i in range(APPEND_FROM)])
    known.state(final=False)
    known.add([{"id": "late"}])
    assert decode_keys(known.state(final=False)["keys"]) == {("old",), ("late",)} | {
        (f"n{i}",) for i in range(APPEND_FROM)
    }


def test_many_checkpoints_each_decode_to_the_set_so_far() -> None:
    """Each checkpoint sync-flushes the stream and keeps the blob's base64 up to its last whole
    3 bytes: blobs of every length in between still decode."""
    known = KnownKeys(("list_id", "profile_id"))
    known.add(rows("a", 0, APPEND_FROM))
    for step in range(1, 12):
        known.add(rows(f"g{step}", 0, step))
        entry = known.state(final=False)
        assert decode_keys(entry["keys"]) == known.keys and entry["count"] == len(known.keys)
