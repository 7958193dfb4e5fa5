"""Shared test kit: simulator fixtures, config and catalog builders, CLI runner, ground truth."""
