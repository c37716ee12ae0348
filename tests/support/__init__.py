"""Helpers the tests share that are not fixtures: builders of inputs (importable as `tests.support`)."""
