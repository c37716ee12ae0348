"""Benchmarks: encoder speed and exactness (`encoder`), crash-and-resume (`kill_resume`)."""
