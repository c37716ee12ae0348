"""Step 1 of an eval: what is evaluated against: the judged queries, their qrels and the corpus checksum
(`EvalData`), read from the corpus's BEIR layout or from `--queries` / `--qrels` files."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eval.errors import EvalInputError
from eval.metrics import Qrels
from eval.options import EvalOptions


@dataclass
class EvalData:
    """What is evaluated against.

    Attributes:
        dataset: Dataset name (the one the collections carry).
        split: The qrels split.
        queries: Query id → text, only judged queries, in qrels order.
        qrels: Query id → {doc id: grade}, only queries with a text.
        qrels_rows: Judgement lines read.
        corpus_checksum: `sha256:<hex>` of the corpus file(s), if the source can tell.
        source: The source description (kind, path, checksums).
        warnings: Problems worth a line in the report (queries without text, ...).
    """

    dataset: str
    split: str
    queries: dict[str, str]
    qrels: Qrels
    qrels_rows: int
    corpus_checksum: str | None
    source: dict[str, Any]
    warnings: list[str] = field(default_factory=list)

    @property
    def query_ids(self) -> list[str]:
        """Query ids in evaluation order."""
        return list(self.queries)


def open_eval_source(opts: EvalOptions) -> Any:
    """Open the corpus source the way the ingest did (same target, data dir, columns, name).

    Args:
        opts: The eval options (target, data dir, BEIR dirs, column names, name).

    Returns:
        An `ingest.sources` source.

    Raises:
        InputError, DatasetNotFoundError: see `ingest.sources.open_source`.
    """
    from ingest.sources.spec import SourceSpec

    return SourceSpec.of(opts.target, opts).open()


def read_queries_file(path: Path) -> dict[str, str]:
    """Read a BEIR queries.jsonl (`{"_id": ..., "text": ...}` per line).

    Args:
        path: The file.

    Returns:
        Query id → text, in file order.

    Raises:
        EvalInputError: the file is missing.
        InputError: a line is bad (naming `file:line`; raised by the ingest's reader).
    """
    from ingest.sources.jsonl import read_queries

    try:
        with path.open("rb") as fh:
            return read_queries(fh, str(path))
    except FileNotFoundError as exc:
        raise EvalInputError(f"queries file {path} does not exist: check --queries") from exc


def read_qrels_file(path: Path) -> tuple[Qrels, int]:
    """Read a BEIR qrels .tsv (header `query-id corpus-id score`, tab-separated).

    Args:
        path: The file.

    Returns:
        (qrels, number of judgement lines).

    Raises:
        EvalInputError: the file is missing.
        InputError: a line is bad (naming `file:line`; raised by the ingest's reader).
    """
    from ingest.sources.jsonl import read_qrels_rows

    qrels: Qrels = {}
    rows = 0
    try:
        with path.open("rb") as fh:
            for row in read_qrels_rows(fh, str(path)):
                qrels.setdefault(row.query_id, {})[row.doc_id] = row.score
                rows += 1
    except FileNotFoundError as exc:
        raise EvalInputError(f"qrels file {path} does not exist: check --qrels") from exc
    return qrels, rows


def corpus_checksum(described: dict[str, Any]) -> str | None:
    """Pick the corpus checksum out of a source description.

    Args:
        described: `source.describe()`.

    Returns:
        `sha256:<hex>`, else `fingerprint:<x>` / `archive_md5:<x>`, else None.
    """
    for key in ("corpus_sha256", "sha256"):
        value = described.get(key)
        if value:
            return f"sha256:{value}"
    for key in ("fingerprint", "archive_md5"):
        value = described.get(key)
        if value:
            return f"{key}:{value}"
    return None


def load_eval_data(opts: EvalOptions) -> EvalData:
    """Load the judged queries and qrels of the split (BEIR layout, or `--queries/--qrels` files).

    Queries judged in the qrels but missing from the queries file are left out (with a warning),
    as are queries without judgements (BEIR's behaviour).

    Args:
        opts: The eval options.

    Returns:
        The queries, qrels and corpus description.

    Raises:
        EvalInputError: no queries/qrels for this corpus (says which flags to pass), no judged query
            has a text, a queries/qrels file is missing.
        InputError: missing split, bad lines (raised by the ingest's readers).
        DatasetNotFoundError: the corpus cannot be found.
    """
    source = open_eval_source(opts)
    warnings: list[str] = list(getattr(source, "warnings", []))
    if opts.queries_path is not None and opts.qrels_path is not None:
        all_queries = read_queries_file(opts.queries_path)
        qrels, rows = read_qrels_file(opts.qrels_path)
        where = f"{opts.qrels_path}"
    elif hasattr(source, "load_qrels") and hasattr(source, "load_queries"):
        qrels = source.load_qrels(opts.split)
        rows = source.count_qrels_rows(opts.split) if hasattr(source, "count_qrels_rows") else -1
        all_queries = source.load_queries(None)
        where = f"{opts.target} ({opts.split})"
        if hasattr(source, "check_qrels"):
            # Judged docs missing from the corpus (official ArguAna: 5) are warned and counted.
            source.check_qrels(opts.split)
            warnings = list(getattr(source, "warnings", []))
    else:
        raise EvalInputError(
            f"{opts.target}: this corpus has no queries or qrels of its own (not a BEIR layout): pass "
            '--queries FILE.jsonl (one {"_id", "text"} per line) and --qrels FILE.tsv '
            "(query-id, corpus-id, score)"
        )
    missing = [q for q in qrels if q not in all_queries]
    if missing:
        warnings.append(
            f"{where}: {len(missing)} judged query id(s) have no text and are left out (e.g. {missing[:5]})"
        )
    queries = {qid: all_queries[qid] for qid in qrels if qid in all_queries}
    qrels = {qid: qrels[qid] for qid in queries}
    if not queries:
        raise EvalInputError(f"{where}: no judged query has a text: check the split and the queries file")
    described = source.describe()
    return EvalData(
        dataset=source.name,
        split=opts.split,
        queries=queries,
        qrels=qrels,
        qrels_rows=rows,
        corpus_checksum=corpus_checksum(described),
        source={k: v for k, v in described.items() if k != "counters"},
        warnings=warnings,
    )
