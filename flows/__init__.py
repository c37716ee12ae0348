"""Prefect flows over the ingest and eval pipelines (the only package that imports Prefect)."""

from flows.settings import apply_prefect_env_defaults

# Before any `prefect` import: Prefect reads its settings from the environment when first imported.
apply_prefect_env_defaults()
