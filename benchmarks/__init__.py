"""Ingest benchmarks and reliability harnesses; not part of the installed package.

Run them from the project root (`python -m benchmarks.<name>`); they use only the public APIs of
`ingest` and `eval`:

- `encoder`: the fast exact encoder against `SentenceTransformer.encode` (speed, exactness);
- `scale`: a TREC-COVID-sized corpus encoded, upserted and indexed, with memory watched from outside
  (`rss_watch`) on a synthetic corpus (`synth_corpus`);
- `kill_resume`: SIGKILL a real ingest at seeded moments, rerun it, compare with a clean run;
- `bad_inputs`: every bad input of `tests/support/bad_inputs.py` through the CLI, as a person sees it;
- `machine`: what machine a benchmark ran on.
"""
