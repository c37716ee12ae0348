"""Evaluation of collection configurations: which one is cheapest at acceptable quality.

`python -m eval <dataset>` (see `eval.__main__`) and the Prefect flow both run the steps of
`eval.runner`; `eval.metrics`, `eval.stats`, `eval.search`, `eval.aggregate`, `eval.report`,
`eval.plots` and `eval.compare` are the pure parts they are made of.
"""
