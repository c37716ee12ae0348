"""Evaluation of collection configurations: which one is cheapest at acceptable quality.

`python -m eval <dataset>` (see `eval.__main__`) and the Prefect flow both run the steps that
`eval.runner` orchestrates, one module per step:

- `eval.data`: judged queries, qrels and corpus checksum (`EvalData`).
- `eval.plan`: the store and which collections to evaluate, the baseline (`CollectionPlan`).
- `eval.query_encoder`: the collections' model, checked, encoding the queries (`QueryEmbeddings`).
- `eval.scoring`: search one collection × mode, score it, compare with the baseline.
- `eval.teacher`: the optional transformer baseline (`TeacherResult`).
- `eval.assemble`: the typed results of a run (`EvalResults`) and the recommendation.
- `eval.results`: the result dataclasses and their one serialised form, results.json.
- `eval.environment`: engine description and package versions.
- `eval.errors`: the eval's own errors (`EvalError`, `EvalInputError`, `MissingCollectionError`,
  `EvalModelError`).

`eval.metrics`, `eval.stats`, `eval.search`, `eval.aggregate`, `eval.report`, `eval.plots` and
`eval.compare` are the pure parts they are made of; `eval.options` holds `EvalOptions`.
"""
