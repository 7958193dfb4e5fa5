"""A finished stream's keys are dropped once its final state is made (`KnownKeys.release`): the
final entry stays what it was, and nothing is added afterwards."""

from __future__ import annotations

from klaviyo_source.engine.known import KnownKeys, decode_keys


def test_release_keeps_the_final_entry_and_drops_the_keys() -> None:
    known = KnownKeys(("list_id", "profile_id"))
    known.add([{"list_id": "L", "profile_id": f"p{i}"} for i in range(6000)])
    known.grouped("list_id")
    checkpoint = known.state(final=False)
    known.release()  # not final yet: kept
    assert len(known.keys) == 6000 and known.state(final=False) == checkpoint
    final = known.state(final=True)
    known.release()
    assert not known.keys and not known.grouped("list_id")
    assert known.worth_saving
    assert known.state(final=True) is final and known.state(final=False) is final
    assert len(decode_keys(final["keys"])) == 6000 and final["count"] == 6000
    known.add([{"list_id": "L", "profile_id": "late"}])
    assert not known.keys and known.state(final=True) is final
