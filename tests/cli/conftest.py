"""Simulators the CLI tests share (package scope: started once for tests/cli)."""

from kit.sim import sim_fixture

SIZES = {"events": 600, "profiles": 150, "lists": 2, "campaigns": 6}

# A small simulated account, fast.
sim = sim_fixture(scope="package", seed=3, sizes=SIZES)
# The same account answering each request after 1.2 s: a sync lasts long enough to interrupt.
slow_sim = sim_fixture(scope="package", seed=3, sizes=SIZES, latency_ms=1200)
