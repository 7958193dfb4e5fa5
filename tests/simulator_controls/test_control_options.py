"""Run-time options: validation and coercion."""

import pytest

from klaviyo_simulator.controls import ControlOptions, Controls


@pytest.mark.parametrize(
    "changes",
    [
        {"rate_limits": 1},
        {"error_rate": 1.5},
        {"latency_ms": -1},
        {"latency_ms": "5"},
        {"seed": 1.5},
        {"extra": []},
        {"predictive_503_max_page": True},
        {"nope": 1},
    ],
)
def test_bad_options_are_rejected(changes: dict[str, object]) -> None:
    controls = Controls()
    with pytest.raises(ValueError):
        controls.set_options(**changes)
    assert controls.options == ControlOptions()


def test_options_change_and_ints_become_floats() -> None:
    controls = Controls()
    options = controls.set_options(rate_limits=True, latency_ms=5, seed=9, predictive_503_max_page=50)
    assert options.rate_limits and options.latency_ms == 5.0 and isinstance(options.latency_ms, float)
    assert (options.seed, options.predictive_503_max_page) == (9, 50)
