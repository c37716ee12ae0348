"""The test suite, a package so that `python -m benchmarks.bad_inputs` can import `tests.support`."""
