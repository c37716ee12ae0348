"""Tests of the `ingest` package (a package: test module names such as test_options.py recur)."""
