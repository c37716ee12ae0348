"""The static embedding model: loading (`static`), the exact fast path (`fast`, `wordpiece`) and the
offline models built on this machine (`models`).

Import from the submodules (`from ingest.encoder.static import load_encoder`): this package imports
nothing heavy itself, so `python -m ingest --help` stays instant.
"""
