"""BEIR sources: real zips, folder/zip round trip, name resolution, zips, downloads, qrels."""

from __future__ import annotations

import hashlib
import json
import logging
import tracemalloc
import zipfile
from pathlib import Path

import pytest

from ingest.errors import ChecksumError, DatasetNotFoundError, InputError
from ingest.sources import BEIR_DATASETS, BeirSource, Source, download_archive, extract_zip, open_source
from ingest.sources.beir import resolve_beir_name

SHARED_BEIR = Path(__file__).resolve().parents[3].parent / "shared" / "beir"
SCIFACT_CORPUS_SHA256 = "dec31c8182f3d744c7d2c09423756fd1d17cbef75808db13ba01cc0aab4d1ac6"

DOCS = [
    {"_id": "d1", "title": "Alpha", "text": "first text", "metadata": {"url": "http://a"}},
    {"_id": "d2", "text": "no title here"},
    {"_id": 3, "title": "Int id", "text": "ids may be integers", "extra": 7},
]
QUERIES = [{"_id": "q1", "text": "alpha?"}, {"_id": "q2", "text": "beta?"}, {"_id": "q3", "text": "unjudged"}]
QRELS = {"test": [("q1", "d1", 1), ("q2", "d2", 2), ("q2", "3", 0)], "dev": [("q1", "d2", 1)]}


def write_beir(root: Path, docs: list[dict] | None = None, queries: list[dict] | None = None) -> Path:
    """Write a small BEIR dataset folder and return it."""
    root.mkdir(parents=True)
    lines = [json.dumps(d) for d in (DOCS if docs is None else docs)]
    (root / "corpus.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    qlines = [json.dumps(q) for q in (QUERIES if queries is None else queries)]
    (root / "queries.jsonl").write_text("\n".join(qlines) + "\n", encoding="utf-8")
    (root / "qrels").mkdir()
    for split, rows in QRELS.items():
        body = "".join(f"{q}\t{d}\t{s}\n" for q, d, s in rows)
        (root / "qrels" / f"{split}.tsv").write_text("query-id\tcorpus-id\tscore\n" + body, encoding="utf-8")
    return root


def zip_folder(folder: Path, zip_path: Path) -> Path:
    """Zip a folder with its name as the top-level entry, as the BEIR server does."""
    with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(folder.rglob("*")):
            zf.write(p, p.relative_to(folder.parent).as_posix())
    return zip_path


def write_corpus(tmp_path: Path, raw_lines: list[bytes]) -> Path:
    """Write a corpus.jsonl of raw lines inside a dataset folder `toy/`."""
    root = tmp_path / "toy"
    root.mkdir()
    path = root / "corpus.jsonl"
    path.write_bytes(b"\n".join(raw_lines) + b"\n")
    return path


def all_docs(source: BeirSource, batch_size: int = 100) -> list:
    return [d for batch in source.iter_batches(batch_size) for d in batch]


# --- real data ---------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "docs", "queries", "rows", "warned"),
    [("nfcorpus", 3633, 323, 12334, False), ("scifact", 5183, 300, 339, True)],
)
def test_real_beir_zips_exact_counts(
    tmp_path: Path, name: str, docs: int, queries: int, rows: int, warned: bool
) -> None:
    source = open_source(name, data_dir=tmp_path, beir_dirs=[SHARED_BEIR], download=False)
    assert isinstance(source, BeirSource)
    assert source.name == name
    assert source.path == SHARED_BEIR / f"{name}.zip"
    n = 0
    for batch in source.iter_batches(1000):
        assert 0 < len(batch) <= 1000
        n += len(batch)
    assert n == docs == source.counters.docs
    assert source.counters.skipped_empty == source.counters.rejected_count == 0
    assert source.counters.complete
    assert len(source.load_queries("test")) == queries
    qrels = source.load_qrels("test")
    assert len(qrels) == queries
    # Every row of these files is a distinct (query, doc) pair: rows == pairs.
    assert source.count_qrels_rows("test") == rows
    assert sum(len(v) for v in qrels.values()) == rows
    check = source.check_qrels("test")
    assert (check.rows, check.pairs, check.queries) == (rows, rows, queries)
    assert check.missing_doc_pairs == 0 and check.missing_queries == []
    described = source.describe()
    assert described["expected_md5"] == BEIR_DATASETS[name].md5
    assert (described["archive_md5"] == BEIR_DATASETS[name].md5) is not warned
    assert bool(described["warnings"]) is warned
    if warned:
        assert "differs from the published BEIR md5" in described["warnings"][0]
        # The re-zipped scifact holds the official corpus file.
        assert described["corpus_sha256"] == SCIFACT_CORPUS_SHA256


def test_real_zip_by_path_checks_md5(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="ingest.sources"):
        source = open_source(str(SHARED_BEIR / "scifact.zip"), data_dir=Path("unused"))
    assert source.name == "scifact"
    assert "5f7d1de60b170fc8027bb7898e2efca1" in caplog.text
    first = next(source.iter_batches(3))
    assert [d.id for d in first] == ["4983", "5836", "7912"]
    assert first[0].location == f"{SHARED_BEIR / 'scifact.zip'}/scifact/corpus.jsonl:1"


# --- folder / zip round trip -------------------------------------------------------------------


def test_folder_and_zip_round_trip(tmp_path: Path) -> None:
    folder = write_beir(tmp_path / "toy")
    archive = zip_folder(folder, tmp_path / "toy.zip")
    results = []
    for target in (folder, archive, folder / "corpus.jsonl"):
        source = open_source(str(target), data_dir=tmp_path)
        assert isinstance(source, BeirSource) and isinstance(source, Source)
        assert source.name == "toy"
        docs = all_docs(source)
        assert [d.id for d in docs] == ["d1", "d2", "3"]
        assert docs[0].metadata == {"url": "http://a"}
        assert docs[1].title == ""
        assert docs[2].metadata == {"extra": 7}
        assert source.load_queries("test") == {"q1": "alpha?", "q2": "beta?"}
        assert len(source.load_queries(None)) == 3
        assert source.load_qrels("test") == {"q1": {"d1": 1}, "q2": {"d2": 2, "3": 0}}
        assert sorted(source.splits()) == ["dev", "test"]
        results.append(
            ([(d.id, d.title, d.text, d.metadata) for d in docs], source.describe()["corpus_sha256"])
        )
    expected_sha = hashlib.sha256((folder / "corpus.jsonl").read_bytes()).hexdigest()
    assert all(r == results[0] for r in results)
    assert results[0][1] == expected_sha


def test_missing_split_lists_available(tmp_path: Path) -> None:
    source = BeirSource(write_beir(tmp_path / "toy"))
    with pytest.raises(InputError, match=r"qrels/train\.tsv does not exist.*available splits: dev, test"):
        source.load_qrels("train")


def test_bounded_batches_and_counters_reset(tmp_path: Path) -> None:
    docs = [{"_id": f"d{i}", "title": "", "text": f"text {i}"} for i in range(25)]
    source = BeirSource(write_beir(tmp_path / "toy", docs=docs))
    assert [len(b) for b in source.iter_batches(10)] == [10, 10, 5]
    assert source.counters.docs == 25
    assert [len(b) for b in source.iter_batches(25)] == [25]
    assert source.counters.docs == 25  # reset, not accumulated
    with pytest.raises(ValueError, match="batch_size"):
        next(source.iter_batches(0))


# --- name resolution ---------------------------------------------------------------------------


def test_name_resolution_order(tmp_path: Path) -> None:
    first, second, data_dir = tmp_path / "a", tmp_path / "b", tmp_path / "data"
    write_beir(second / "toy")
    first.mkdir()
    zip_folder(second / "toy", first / "toy.zip")
    source = open_source("toy", data_dir=data_dir, beir_dirs=[first, second])
    assert isinstance(source, BeirSource) and source.path == first / "toy.zip"
    source = open_source("toy", data_dir=data_dir, beir_dirs=[second, first])
    assert isinstance(source, BeirSource) and source.path == second / "toy"
    write_beir(data_dir / "beir" / "other")
    source = open_source("other", data_dir=data_dir, beir_dirs=[first])
    assert isinstance(source, BeirSource) and source.path == data_dir / "beir" / "other"
    assert len(all_docs(source)) == 3


def test_offline_known_name_says_where_and_what(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError) as err:
        open_source("SciFact", data_dir=tmp_path / "data", download=False)
    message = str(err.value)
    assert str((tmp_path / "data" / "beir" / "scifact.zip").resolve()) in message
    assert "https://public.ukp.informatik.tu-darmstadt.de/thakur/BEIR/datasets/scifact.zip" in message
    assert "5f7d1de60b170fc8027bb7898e2efca1" in message


def test_unknown_name_suggests_close_matches(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match=r"unknown dataset 'scifakt'.*did you mean 'scifact'"):
        open_source("scifakt", data_dir=tmp_path)
    with pytest.raises(DatasetNotFoundError, match=r"'trec-covid'"):
        open_source("trec_covid", data_dir=tmp_path)


def test_non_public_dataset_explains(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match=r"not publicly downloadable.*examples/dataset.*bioasq"):
        open_source("bioasq", data_dir=tmp_path)


@pytest.mark.parametrize("target", ["../beir/scifact", "some/dir/scifact", "..\\scifact"])
def test_name_with_path_separator_is_refused(tmp_path: Path, target: str) -> None:
    with pytest.raises(InputError, match=r"is not an existing path.*cannot contain path separators"):
        open_source(target, data_dir=tmp_path)


def test_multi_corpus_zip_needs_subset(tmp_path: Path) -> None:
    parent = tmp_path / "src" / "cq"
    write_beir(parent / "android")
    write_beir(parent / "gis", docs=[{"_id": "g1", "title": "gis", "text": "maps"}])
    zip_folder(parent, tmp_path / "cq.zip")
    with pytest.raises(InputError, match=r"holds 2 corpora \(android, gis\): pick one as <name>:<subset>"):
        open_source("cq", data_dir=tmp_path / "data", beir_dirs=[tmp_path])
    source = open_source("cq:gis", data_dir=tmp_path / "data", beir_dirs=[tmp_path])
    assert source.name == "cq-gis"
    assert [d.id for d in all_docs(source)] == ["g1"]
    with pytest.raises(InputError, match=r"no sub-corpus 'tex'; it holds: android, gis"):
        open_source("cq:tex", data_dir=tmp_path / "data", beir_dirs=[tmp_path])


def test_registry_is_the_official_table() -> None:
    public = {n for n, d in BEIR_DATASETS.items() if d.public}
    assert public == {
        "msmarco",
        "trec-covid",
        "nfcorpus",
        "nq",
        "hotpotqa",
        "fiqa",
        "arguana",
        "webis-touche2020",
        "cqadupstack",
        "quora",
        "dbpedia-entity",
        "scidocs",
        "fever",
        "climate-fever",
        "scifact",
    }
    assert {n for n, d in BEIR_DATASETS.items() if not d.public} == {
        "bioasq",
        "signal1m",
        "trec-news",
        "robust04",
    }
    assert BEIR_DATASETS["nfcorpus"].md5 == "a89dba18a62ef92f7d323ec890a0d38d"
    assert BEIR_DATASETS["arguana"].url == (
        "https://public.ukp.informatik.tu-darmstadt.de/thakur/BEIR/datasets/arguana.zip"
    )
    assert all(len(d.md5) == 32 for d in BEIR_DATASETS.values() if d.md5 is not None)


# --- zips and downloads ------------------------------------------------------------------------


@pytest.mark.parametrize("entry", ["../evil.txt", "/etc/evil.txt", "toy/../../evil.txt", "C:/evil.txt"])
def test_zip_slip_is_refused(tmp_path: Path, entry: str) -> None:
    archive = zip_folder(write_beir(tmp_path / "src" / "toy"), tmp_path / "toy.zip")
    with zipfile.ZipFile(archive, "a") as zf:
        zf.writestr(zipfile.ZipInfo(entry), b"pwned")
    with pytest.raises(InputError, match=rf"refusing unsafe zip entry '{entry}'") as err:
        BeirSource(archive)
    assert str(archive) in str(err.value)
    dest = tmp_path / "out" / "toy"
    with pytest.raises(InputError, match="refusing unsafe zip entry"):
        extract_zip(archive, dest)
    assert not dest.exists()
    assert list((tmp_path / "out").iterdir()) == []
    assert not (tmp_path / "evil.txt").exists()


def test_extract_zip_is_atomic_and_complete(tmp_path: Path) -> None:
    archive = zip_folder(write_beir(tmp_path / "src" / "toy"), tmp_path / "toy.zip")
    dest = extract_zip(archive, tmp_path / "data" / "beir" / "toy")
    assert (dest / "toy" / "corpus.jsonl").read_bytes() == (
        tmp_path / "src" / "toy" / "corpus.jsonl"
    ).read_bytes()
    assert [p.name for p in dest.parent.iterdir()] == ["toy"]
    with pytest.raises(InputError, match="already exists"):
        extract_zip(archive, dest)
    assert [d.id for d in all_docs(BeirSource(dest))] == ["d1", "d2", "3"]


def test_download_verifies_md5(tmp_path: Path) -> None:
    archive = zip_folder(write_beir(tmp_path / "src" / "toy"), tmp_path / "toy.zip")
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    dest = tmp_path / "data" / "beir" / "toy.zip"
    assert download_archive(archive.as_uri(), dest, md5) == dest
    assert dest.read_bytes() == archive.read_bytes()
    assert len(all_docs(BeirSource(dest))) == 3

    bad_dest = tmp_path / "data2" / "beir" / "toy.zip"
    with pytest.raises(ChecksumError, match=rf"has md5 {md5}, expected 0{{32}}: the file was deleted"):
        download_archive(archive.as_uri(), bad_dest, "0" * 32)
    assert not bad_dest.exists()
    assert list(bad_dest.parent.iterdir()) == []  # no partial file left


def test_download_failure_says_where_to_put_the_file(tmp_path: Path) -> None:
    dest = tmp_path / "data" / "beir" / "toy.zip"
    url = (tmp_path / "nowhere.zip").as_uri()
    with pytest.raises(DatasetNotFoundError) as err:
        download_archive(url, dest, None)
    assert url in str(err.value) and str(dest.resolve()) in str(err.value)
    assert list(dest.parent.iterdir()) == []


def test_resolve_prefers_local_copy_and_warns_on_md5(tmp_path: Path) -> None:
    folder = write_beir(tmp_path / "src" / "nfcorpus")
    zip_folder(folder, tmp_path / "nfcorpus.zip")
    resolved = resolve_beir_name("nfcorpus", data_dir=tmp_path / "data", beir_dirs=[tmp_path], download=True)
    assert resolved.path == tmp_path / "nfcorpus.zip" and not resolved.downloaded
    assert resolved.warnings and "a89dba18a62ef92f7d323ec890a0d38d" in resolved.warnings[0]


# --- reader errors and policies ----------------------------------------------------------------


def test_malformed_json_fails_with_location_then_skips(tmp_path: Path) -> None:
    corpus = write_corpus(
        tmp_path, [b'{"_id": "a", "text": "ok"}', b'{"_id": "b", "text": "oops"', b'{"_id": "c"}']
    )
    source = BeirSource(corpus.parent)
    with pytest.raises(InputError) as err:
        all_docs(source)
    message = str(err.value)
    assert f"{corpus}:2: malformed JSON" in message
    assert "fix or remove that line" in message and "--on-error skip" in message

    source = BeirSource(corpus.parent, on_error="skip")
    docs = all_docs(source)
    assert [d.id for d in docs] == ["a"]
    assert source.counters.rejected_count == 1
    assert source.counters.skipped_empty == 1  # "c" has neither title nor text
    rejected = source.counters.rejected[0]
    assert (rejected.reason, rejected.location) == ("malformed_json", f"{corpus}:2")


def test_missing_id_and_bad_types(tmp_path: Path) -> None:
    corpus = write_corpus(
        tmp_path,
        [
            b'{"title": "t", "text": "no id"}',
            b'{"_id": "x", "text": ["a", "list"]}',
            b"[1, 2]",
            b'{"_id": "y", "text": "ok"}',
        ],
    )
    with pytest.raises(InputError, match=rf'{corpus}:1: record has no "_id" field.*give every line a "_id"'):
        all_docs(BeirSource(corpus.parent))
    source = BeirSource(corpus.parent, on_error="skip")
    assert [d.id for d in all_docs(source)] == ["y"]
    assert [(r.reason, r.location, r.id) for r in source.counters.rejected] == [
        ("missing_id", f"{corpus}:1", None),
        ("bad_field_type", f"{corpus}:2", "x"),
        ("not_an_object", f"{corpus}:3", None),
    ]
    assert source.describe()["counters"]["rejected_count"] == 3


def test_duplicate_ids_each_policy(tmp_path: Path) -> None:
    corpus = write_corpus(
        tmp_path,
        [
            b'{"_id": "a", "text": "a one"}',
            b'{"_id": "b", "text": "b"}',
            b'{"_id": "a", "text": "a two"}',
            b'{"_id": "a", "text": "a three"}',
        ],
    )
    with pytest.raises(InputError) as err:
        next(BeirSource(corpus.parent).iter_batches(10))
    message = str(err.value)
    assert f"'a' at {corpus}:1, {corpus}:3, {corpus}:4" in message
    assert "--on-duplicate first" in message and "--on-duplicate last" in message

    first = BeirSource(corpus.parent, on_duplicate="first")
    assert [(d.id, d.text) for d in all_docs(first)] == [("a", "a one"), ("b", "b")]
    assert first.counters.duplicates_dropped == 2
    last = BeirSource(corpus.parent, on_duplicate="last")
    assert [(d.id, d.text) for d in all_docs(last)] == [("b", "b"), ("a", "a three")]
    with pytest.raises(InputError, match="unknown on_duplicate policy 'newest'"):
        BeirSource(corpus.parent, on_duplicate="newest")
    with pytest.raises(InputError, match=r"unknown on_error policy 'ignore': use one of fail, skip"):
        open_source("scifact", data_dir=tmp_path, on_error="ignore")


def test_empty_documents_are_skipped_and_counted(tmp_path: Path) -> None:
    corpus = write_corpus(
        tmp_path,
        [
            b'{"_id": "a", "title": "", "text": ""}',
            b'{"_id": "b", "title": " ", "text": null}',
            b'{"_id": "c", "title": "T"}',
            b"",
        ],
    )
    source = BeirSource(corpus.parent)
    assert [d.id for d in all_docs(source)] == ["c"]
    assert source.counters.skipped_empty == 2 and source.counters.docs == 1


def test_invalid_utf8_names_the_line(tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path, [b'{"_id": "a", "text": "ok"}', b'{"_id": "b", "text": "caf\xe9"}'])
    with pytest.raises(
        InputError, match=rf"{corpus}:2: invalid UTF-8 at byte \d+ .*re-encode the file as UTF-8"
    ):
        all_docs(BeirSource(corpus.parent))
    source = BeirSource(corpus.parent, on_error="skip")
    assert [d.id for d in all_docs(source)] == ["a"]
    assert source.counters.rejected[0].reason == "invalid_utf8"


def test_ten_megabyte_document_streams_in_bounded_batches(tmp_path: Path) -> None:
    big = "word " * (2 * 1024 * 1024)  # 10 MiB
    lines = [json.dumps({"_id": f"s{i}", "text": "small"}).encode() for i in range(5)]
    lines.insert(2, json.dumps({"_id": "big", "title": "Big", "text": big}).encode())
    corpus = write_corpus(tmp_path, lines)
    archive = zip_folder(corpus.parent, tmp_path / "toy.zip")
    for target in (corpus.parent, archive):
        sizes, big_len = [], 0
        for batch in BeirSource(target).iter_batches(2):
            sizes.append(len(batch))
            big_len += sum(len(d.text) for d in batch if d.id == "big")
        assert sizes == [2, 2, 2]
        assert big_len == len(big)


def test_memory_does_not_grow_with_the_corpus(tmp_path: Path) -> None:
    big = "word " * (2 * 1024 * 1024)  # 10 MiB each, one per batch of 2: 60 MiB corpus
    lines = [json.dumps({"_id": f"d{i}", "text": big if i % 4 == 0 else "small"}).encode() for i in range(24)]
    corpus = write_corpus(tmp_path, lines)
    del lines
    source = BeirSource(corpus.parent)
    tracemalloc.start()
    try:
        sizes = [len(batch) for batch in source.iter_batches(2)]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sizes == [2] * 12
    assert corpus.stat().st_size > 60_000_000
    assert peak < 40_000_000, f"peak {peak / 1e6:.0f} MB while streaming a 63 MB corpus"


def test_qrels_missing_docs_and_queries_are_counted(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = write_beir(tmp_path / "toy")
    (root / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\tgone1\t1\nq2\tgone2\t1\nq2\tgone2\t2\nq9\td2\t1\n",
        encoding="utf-8",
    )
    source = BeirSource(root)
    with caplog.at_level(logging.WARNING, logger="ingest.sources"):
        check = source.check_qrels("test")
    assert (check.rows, check.pairs, check.queries) == (5, 4, 3)
    assert check.missing_doc_pairs == 2 and check.missing_doc_ids == ["gone1", "gone2"]
    assert check.missing_queries == ["q9"]
    assert "missing from the corpus" in caplog.text and "no text" in caplog.text
    assert source.load_qrels("test")["q2"] == {"gone2": 2}  # a repeated pair keeps its last score
    assert set(source.load_queries("test")) == {"q1", "q2"}


def test_malformed_qrels_and_queries_name_the_line(tmp_path: Path) -> None:
    root = write_beir(tmp_path / "toy")
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\tyes\n", encoding="utf-8")
    with pytest.raises(InputError, match=rf"{root / 'qrels' / 'test.tsv'}:2: score 'yes' is not an integer"):
        BeirSource(root).load_qrels("test")
    (root / "qrels" / "test.tsv").write_text("q1 d1 1\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"test\.tsv:1: expected 3 tab-separated fields"):
        BeirSource(root).load_qrels("test")
    (root / "queries.jsonl").write_text('{"_id": "q1", "text": "a"}\n{"_id": "q1", "text": "b"}\n')
    with pytest.raises(InputError, match=r"queries\.jsonl:2: query id 'q1' repeats \(first at line 1\)"):
        BeirSource(root).load_queries(None)


def test_unreadable_kind_of_path(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(InputError, match=r"notes\.txt: don't know how to read it: expected a BEIR folder"):
        open_source(str(tmp_path / "notes.txt"), data_dir=tmp_path)
    (tmp_path / "broken.zip").write_bytes(b"not a zip")
    with pytest.raises(InputError, match=r"broken\.zip: not a valid zip archive"):
        open_source(str(tmp_path / "broken.zip"), data_dir=tmp_path)
