"""Conformance fixtures: one simulator on 127.0.0.1 for the session, with scoped keys."""

from kit.keys import scoped_keys
from kit.sim import sim_fixture

SIZES = {"events": 1500, "profiles": 300, "campaigns": 24, "flows": 8, "lists": 6, "templates": 8}
sim = sim_fixture(scope="session", seed=7, sizes=SIZES, keys=scoped_keys())
