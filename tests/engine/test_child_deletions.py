"""Deletions of fan-out children found by their per-parent relationship scans (`Reconcile.per_parent`
with `parents`): a form version and a flow message deleted through the simulator's
`POST /__sim/delete`, and a whole form (its versions go with it), come out as deletions on the
next incremental sync, once, and nothing still live does. On the Airbyte face (records with
`_ab_cdc_deleted_at`) and in the standalone sync (soft delete: the row stays, `_deleted_at`
set), over real sockets."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from pathlib import Path
from typing import Any

from kit.cli import read_in_process
from kit.documents import make_catalog, make_config, state_document
from kit.ground_truth import soft_deleted
from kit.sim import simulator
from kit.truth import expected
from klaviyo_simulator.server import Simulator
from klaviyo_source.engine.known import DELETED_AT
from klaviyo_source.sync.command import parse_args, run_sync

STREAMS = ["form_versions", "flow_messages"]
# Small: both per-parent scans sit in a 3/s, 60/min tier.
SIZES = {"events": 20, "profiles": 40, "campaigns": 2, "flows": 2, "forms": 3, "lists": 1, "templates": 3}
CONFIG = {"deletion_check_days": 0, "start_date": None}  # every sync checks for deletions


def delete(sim: Simulator, rtype: str, ids: list[str]) -> list[str]:
    """`POST /__sim/delete` (docs/simulator-controls.md): the deleted `type/id`s, owned rows too."""
    request = urllib.request.Request(
        f"{sim.base_url}/__sim/delete",
        data=json.dumps({"type": rtype, "ids": ids}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        deleted: list[str] = json.load(response)["deleted"]
    return deleted


def delete_some(sim: Simulator) -> dict[str, set[str]]:
    """One version of a form that keeps others, a whole other form, and one flow message of an
    action that keeps its others when it has any: stream -> the ids that must come out deleted."""
    store = sim.store
    by_form: dict[str, list[str]] = {}
    for version in store.records("form-version"):
        by_form.setdefault(version.relationships["form"][1], []).append(version.id)
    kept = max(by_form, key=lambda form: len(by_form[form]))
    assert len(by_form[kept]) > 1 and len(by_form) > 1, by_form
    whole = next(form for form in by_form if form != kept)
    message = store.records("flow-message")[0].id
    gone = delete(sim, "form-version", [by_form[kept][0]])
    gone += delete(sim, "form", [whole])
    gone += delete(sim, "flow-message", [message])
    versions = {i.split("/", 1)[1] for i in gone if i.startswith("form-version/")}
    assert versions == {by_form[kept][0], *by_form[whole]}, gone
    return {"form_versions": versions, "flow_messages": {message}}


def settle() -> None:
    time.sleep(1.05)  # a sync reads up to its start second: changes and syncs in distinct seconds


def test_the_airbyte_face_emits_deleted_form_versions_and_flow_messages_once(tmp_path: Path) -> None:
    with simulator(sizes=SIZES, seed=5) as sim:
        config, catalog = {**make_config(sim), **CONFIG}, make_catalog(STREAMS)
        states: dict[str, Any] = {}

        def sync() -> dict[str, list[dict[str, Any]]]:
            out = read_in_process(tmp_path, config=config, catalog=catalog, state=state_document(states))
            assert out.code == 0, out.errors()
            states.update(out.final_states())
            return {s: [r for r in out.records(s) if r.get(DELETED_AT)] for s in STREAMS}

        first = sync()
        assert first == {s: [] for s in STREAMS}
        assert all("_reconcile" in states[s] for s in STREAMS)  # the keys the destination holds
        settle()
        gone = delete_some(sim)
        settle()
        second = sync()
        for stream, cursor in (("form_versions", "updated_at"), ("flow_messages", "updated")):
            assert {r["id"] for r in second[stream]} == gone[stream], stream
            assert len(second[stream]) == len(gone[stream]), stream  # once each
            for record in second[stream]:  # the key, the cursor (the deletion time), the marker
                assert set(record) == {"id", cursor, DELETED_AT}, record
        truth = expected(sim.store)
        assert not any(set(truth[s]) & gone[s] for s in STREAMS)
        settle()
        assert sync() == {s: [] for s in STREAMS}  # not again


def test_the_standalone_sync_soft_deletes_them(destination_url: str, tmp_path: Path) -> None:
    with simulator(sizes=SIZES, seed=5) as sim:
        config = tmp_path / "config.json"
        config.write_text(json.dumps({**make_config(sim), **CONFIG}))
        args = ["--config", str(config), "--destination", destination_url, "--progress", "none",
                "--streams", ",".join(STREAMS)]  # fmt: skip

        def sync() -> tuple[dict[str, dict[str, int | None]], dict[str, set[str]]]:
            report = asyncio.run(run_sync(parse_args(args, environ={})))
            assert report.exit_code == 0, (report.error, [(o.name, o.error) for o in report.outcomes])
            return soft_deleted(destination_url, STREAMS)

        live, marked = sync()
        truth = expected(sim.store)
        assert {s: set(live[s]) for s in STREAMS} == {s: set(truth[s]) for s in STREAMS}
        assert marked == {s: set() for s in STREAMS}
        settle()
        gone = delete_some(sim)
        settle()
        live, marked = sync()
        truth = expected(sim.store)
        assert marked == gone  # the rows stay, `_deleted_at` set
        assert {s: set(live[s]) for s in STREAMS} == {s: set(truth[s]) for s in STREAMS}
        settle()
        assert sync() == (live, marked)  # nothing more
