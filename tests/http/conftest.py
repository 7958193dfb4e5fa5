"""A simulated account shared by the HTTP tests of one module (see http_sim.py)."""

from http_sim import GRANTED, SCOPED_KEY, SIZES

from kit.sim import sim_fixture
from klaviyo_simulator.server import DEFAULT_KEY

sim = sim_fixture(seed=5, sizes=SIZES, keys={DEFAULT_KEY: None, SCOPED_KEY: list(GRANTED)})
