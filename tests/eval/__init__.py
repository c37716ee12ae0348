"""Tests of the `eval` package (a package: test module names such as test_options.py recur)."""
