"""Tests of `ingest.encoder`."""
