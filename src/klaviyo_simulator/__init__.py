"""A faithful local Klaviyo API simulator (aiohttp), driven by the vendored OpenAPI spec."""

from klaviyo_simulator.server import Simulator, SimulatorOptions, run_simulator, start_in_thread

__all__ = ["Simulator", "SimulatorOptions", "run_simulator", "start_in_thread"]
