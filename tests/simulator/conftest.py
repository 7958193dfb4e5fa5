"""Shared fixture: one small simulator per module, served on 127.0.0.1 from its own thread."""

from kit.sim import sim_fixture

KEYS: dict[str, list[str] | None] = {"pk_full": None, "pk_events_only": ["events:read"]}
sim = sim_fixture(seed=7, sizes={"events": 3000, "profiles": 600}, keys=KEYS)
