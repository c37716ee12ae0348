"""Line-numbered streaming of BEIR JSONL files (corpus and queries) and of BEIR qrels TSV files."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from ingest.errors import InputError
from ingest.records import Document
from ingest.sources.base import BadRecord

# BEIR writes `{"_id": "...", ...}`: read the id without decoding a possibly huge line.
_FAST_ID = re.compile(rb'\s*\{\s*"_id"\s*:\s*"([^"\\]*)"')
_BOM = b"\xef\xbb\xbf"
FIX_LINE = "fix or remove that line"


def numbered_lines(lines: Iterable[bytes], digest: Any = None) -> Iterator[tuple[int, bytes]]:
    """Yield `(line number from 1, raw line)` for a binary stream, without the UTF-8 BOM of line 1.

    Args:
        lines: The stream (or any iterable of raw lines).
        digest: An optional `hashlib` object updated with every raw byte, so a complete pass
            yields the file's checksum for free.
    """
    for lineno, raw in enumerate(lines, start=1):
        if digest is not None:
            digest.update(raw)
        yield lineno, (raw[len(_BOM) :] if lineno == 1 and raw.startswith(_BOM) else raw)


def _decode(raw: bytes, location: str) -> tuple[Any, BadRecord | None]:
    """Decode and parse one line; return (value, None) or (None, bad record)."""
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return None, BadRecord(
            "invalid_utf8",
            location,
            f"invalid UTF-8 at byte {exc.start} of the line ({raw[exc.start : exc.start + 4]!r})",
            "re-encode the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8`)",
        )
    try:
        return json.loads(line), None
    except json.JSONDecodeError as exc:
        return None, BadRecord(
            "malformed_json",
            location,
            f"malformed JSON ({exc.msg} at column {exc.colno})",
            f"{FIX_LINE} (each line must be one JSON object)",
        )


def _read_id(
    record: dict[str, Any], location: str, field: str = "_id"
) -> tuple[str | None, BadRecord | None]:
    """Return the record id as a string (ints are accepted), or a bad record."""
    if field not in record:
        return None, BadRecord(
            "missing_id",
            location,
            f'record has no "{field}" field (keys: {sorted(record)[:10]})',
            f'give every line a "{field}" (a string)',
        )
    value = record[field]
    if isinstance(value, bool) or not isinstance(value, str | int):
        return None, BadRecord(
            "bad_id", location, f'"{field}" must be a string, got {type(value).__name__}', "fix the id"
        )
    doc_id = str(value)
    if not doc_id.strip():
        return None, BadRecord("bad_id", location, f'"{field}" is empty', "give the record a non-empty id")
    return doc_id, None


def _read_text(
    record: dict[str, Any], field: str, location: str, doc_id: str
) -> tuple[str | None, BadRecord | None]:
    """Return a text field (missing or null → ""), or a bad record if it is not a string."""
    value = record.get(field)
    if value is None:
        return "", None
    if not isinstance(value, str):
        return None, BadRecord(
            "bad_field_type",
            location,
            f'"{field}" of {doc_id!r} must be a string, got {type(value).__name__}',
            "fix the field",
            doc_id,
        )
    return value, None


def parse_corpus_line(raw: bytes, location: str) -> Document | BadRecord | None:
    """Parse one BEIR corpus line (`_id`, `title`, `text`, optional `metadata`).

    Extra top-level keys and the `metadata` object go into `Document.metadata`.

    Returns:
        The document, a bad record, or None for a blank line.
    """
    if not raw.strip():
        return None
    record, bad = _decode(raw, location)
    if bad is not None:
        return bad
    if not isinstance(record, dict):
        return BadRecord(
            "not_an_object", location, f"expected a JSON object, got {type(record).__name__}", FIX_LINE
        )
    doc_id, bad = _read_id(record, location)
    if bad is not None:
        return bad
    assert doc_id is not None
    title, bad = _read_text(record, "title", location, doc_id)
    if bad is not None:
        return bad
    text, bad = _read_text(record, "text", location, doc_id)
    if bad is not None:
        return bad
    assert title is not None and text is not None
    metadata: dict[str, Any] = {}
    extra = record.get("metadata")
    if isinstance(extra, dict):
        metadata.update(extra)
    elif extra is not None:
        metadata["metadata"] = extra
    metadata.update({k: v for k, v in record.items() if k not in ("_id", "title", "text", "metadata")})
    return Document(id=doc_id, title=title, text=text, metadata=metadata, location=location)


def fast_id(raw: bytes) -> str | None:
    """Return the `_id` of a corpus line cheaply (regex on the line start, JSON as a fallback), or None."""
    match = _FAST_ID.match(raw)
    if match is not None:
        try:
            return match.group(1).decode("utf-8")
        except UnicodeDecodeError:
            return None
    if not raw.strip():
        return None
    try:
        record = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(record, dict):
        return None
    value = record.get("_id")
    if isinstance(value, bool) or not isinstance(value, str | int) or not str(value).strip():
        return None
    return str(value)


def read_queries(lines: Iterable[bytes], display: str) -> dict[str, str]:
    """Read a BEIR queries file (`_id`, `text`) strictly.

    Args:
        lines: The raw lines of the file.
        display: The file name used in messages.

    Returns:
        `{query id: query text}`.

    Raises:
        InputError: on a bad line or a repeated query id, naming `file:line`.
    """
    queries: dict[str, str] = {}
    first_line: dict[str, int] = {}
    for lineno, raw in numbered_lines(lines):
        location = f"{display}:{lineno}"
        if not raw.strip():
            continue
        record, bad = _decode(raw, location)
        if bad is None and not isinstance(record, dict):
            bad = BadRecord("not_an_object", location, "expected a JSON object", FIX_LINE)
        if bad is None:
            qid, bad = _read_id(record, location)
        if bad is None:
            assert qid is not None
            text, bad = _read_text(record, "text", location, qid)
        if bad is not None:
            raise InputError(f"{bad.location}: {bad.detail}: {bad.fix} (queries are always read strictly)")
        assert qid is not None and text is not None
        if qid in queries:
            raise InputError(
                f"{location}: query id {qid!r} repeats (first at line {first_line[qid]}): "
                "remove one of the two lines"
            )
        queries[qid] = text
        first_line[qid] = lineno
    return queries


@dataclass(frozen=True)
class QrelsRow:
    """One judgement line of a qrels TSV file."""

    query_id: str
    doc_id: str
    score: int
    lineno: int


def read_qrels_rows(lines: Iterable[bytes], display: str) -> Iterator[QrelsRow]:
    """Yield the rows of a BEIR qrels TSV (`query-id<TAB>corpus-id<TAB>score`, header line optional).

    The first line is skipped when its score column is not an integer (the BEIR header).

    Raises:
        InputError: on a line without three tab-separated fields or with a non-integer score,
            naming `file:line`.
    """
    for lineno, raw in numbered_lines(lines):
        location = f"{display}:{lineno}"
        try:
            line = raw.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError as exc:
            raise InputError(
                f"{location}: invalid UTF-8 at byte {exc.start}: re-encode the qrels file as UTF-8"
            ) from exc
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) < 3:
            raise InputError(
                f"{location}: expected 3 tab-separated fields (query-id, corpus-id, score), "
                f"got {len(parts)}: fix the line (BEIR qrels: TSV with a `query-id corpus-id score` header)"
            )
        try:
            score = int(parts[2])
        except ValueError as exc:
            if lineno == 1:
                continue
            raise InputError(
                f"{location}: score {parts[2]!r} is not an integer: fix the line (scores are graded integers)"
            ) from exc
        yield QrelsRow(parts[0], parts[1], score, lineno)
