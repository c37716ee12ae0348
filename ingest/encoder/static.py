"""Load a static embedding model and encode texts with it.

Supported models are static ones: a token table and mean pooling, stored either as a
sentence-transformers model whose only module is `StaticEmbedding` (optionally followed by
`Normalize`) or as a Model2Vec model. They are given by Hugging Face Hub id, local directory, or
alias:

- `auto` (default): `sentence-transformers/static-retrieval-mrl-en-v1` when it is cached or the Hub
  is reachable, else the offline stand-in (built on first use, with a warning naming it);
- `standin`: the offline stand-in, a Model2Vec model distilled from the packaged all-MiniLM-L6-v2;
- `random` / `random-<dim>`: a random-weight model with the default model's architecture.

What a vector is (both paths, both formats): the mean of the table rows of every token the
model's tokenizer produces for the text, with no special tokens and **no truncation**, then
L2-normalised; a text without tokens gives a zero vector. sentence-transformers models average
every token (as `StaticEmbedding` does, with the tokenizer's own truncation switched off);
Model2Vec models leave out their unknown token, as `StaticModel.encode` does, but are not cut at
512 tokens (`max_length=None`). Chunking keeps texts within the chunk size anyway.

The fast path (`fast=True`) computes exactly that with cached token ids and a sparse product (see
`ingest.encoder.fast`); `fast=False` calls the model's own library.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ingest.encoder.fast import FastStaticEncoder, bag_token_counts, memmap_safetensor, normalise_rows
from ingest.encoder.models import (
    DEFAULT_MODEL,
    build_random_static_model,
    build_standin,
    random_model_path,
    read_marker,
    standin_path,
)
from ingest.errors import ModelError

if TYPE_CHECKING:
    from tokenizers import Tokenizer

log = logging.getLogger(__name__)

STANDIN_ALIASES = ("standin", "stand-in")
RANDOM_ALIAS = re.compile(r"random(?:-(\d+))?")
HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")
# What to fetch of a Hub repo: configs, tokenizer and safetensors weights (no ONNX/OpenVINO copies).
HUB_ALLOW = ["*.json", "*.safetensors", "*.txt", "*.md"]
HUB_IGNORE = ["onnx/*", "openvino/*"]
TRUTHY = {"1", "on", "yes", "true"}


class HubUnavailableError(ModelError):
    """A Hub model is not cached and cannot be downloaded (offline or unreachable)."""


@dataclass(frozen=True)
class ModelLocation:
    """Where a model was found.

    Attributes:
        model_id: Stable name: Hub id, `static-ingest/<name>` for local builds, else the path.
        path: The local directory.
        origin: `hub`, `local`, `stand-in` or `random`.
        revision: The Hub commit hash when known.
    """

    model_id: str
    path: Path
    origin: str
    revision: str | None = None


@dataclass
class StaticModelFiles:
    """What a static model directory holds, read without sentence-transformers or torch.

    Attributes:
        format: `sentence-transformers` or `model2vec`.
        tokenizer: The tokenizer, truncation and padding disabled.
        table: The float32 embedding table (weights folded in for quantised Model2Vec models).
        drop_ids: Token ids left out of the mean (Model2Vec's unknown token).
        prompts: Prompts of a sentence-transformers model (`query`, `document`, ...).
        default_prompt_name: Its default prompt name, if any.
        tokenizer_file: The tokenizer.json read.
        weights_file: The weights file read.
    """

    format: str
    tokenizer: Tokenizer
    table: np.ndarray
    drop_ids: list[int] = field(default_factory=list)
    prompts: dict[str, str] = field(default_factory=dict)
    default_prompt_name: str | None = None
    tokenizer_file: Path | None = None
    weights_file: Path | None = None


def hub_offline() -> bool:
    """Whether `HF_HUB_OFFLINE` forbids Hub access (read now, not at import)."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in TRUTHY:
        return True
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def resolve_hub_model(repo_id: str, *, hf_cache_dir: Path | None = None) -> ModelLocation:
    """Find a Hub model in the local cache, or download it when the Hub is reachable.

    Args:
        repo_id: `owner/name`.
        hf_cache_dir: Hugging Face cache directory; None uses the default (`HF_HOME`, ...).

    Returns:
        The location, with the commit hash as revision.

    Raises:
        HubUnavailableError: not cached, and offline or the Hub cannot be reached.
        ModelError: the Hub answered that the repository does not exist (or is gated).
    """
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    kwargs: dict[str, Any] = {
        "repo_id": repo_id,
        "cache_dir": str(hf_cache_dir) if hf_cache_dir is not None else None,
        "allow_patterns": HUB_ALLOW,
        "ignore_patterns": HUB_IGNORE,
    }
    try:
        path = snapshot_download(local_files_only=True, **kwargs)
    except (OSError, ValueError):
        if hub_offline():
            raise HubUnavailableError(
                f"{repo_id} is not in the Hugging Face cache and HF_HUB_OFFLINE is set"
            ) from None
        try:
            path = snapshot_download(**kwargs)
        except (RepositoryNotFoundError, GatedRepoError) as exc:
            raise ModelError(f"the Hugging Face Hub has no accessible model {repo_id!r}: {exc}") from exc
        except Exception as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise HubUnavailableError(
                f"{repo_id} is not in the Hugging Face cache and the Hub cannot be reached ({reason})"
            ) from exc
    return ModelLocation(model_id=repo_id, path=Path(path), origin="hub", revision=Path(path).name)


def _hub_help(repo_id: str, why: str) -> str:
    return (
        f"{why}. On a machine with internet, download it (`huggingface-cli download {repo_id}`, or "
        f"`SentenceTransformer('{repo_id}').save('<dir>')`), copy the directory here and pass it with "
        "`--model <dir>`; or use `--model standin` for the offline stand-in (not the same model)."
    )


def resolve_model(model: str, *, data_dir: Path, hf_cache_dir: Path | None = None) -> ModelLocation:
    """Turn a `--model` value into a local model directory, building or downloading as needed.

    Args:
        model: `auto`, `standin`, `random[-<dim>]`, a local directory, or a Hub id.
        data_dir: The data directory (local builds go to `<data_dir>/models/`).
        hf_cache_dir: Hugging Face cache directory; None uses the default.

    Returns:
        The model's location.

    Raises:
        ModelError: unknown name, missing directory, or a Hub model that cannot be had (the
            message says what to do).
    """
    name = model.strip()
    if name == "auto":
        try:
            return resolve_hub_model(DEFAULT_MODEL, hf_cache_dir=hf_cache_dir)
        except HubUnavailableError as exc:
            location = _standin(data_dir)
            log.warning(
                "%s; using the offline stand-in %s instead (Model2Vec distilled from all-MiniLM-L6-v2, "
                "256-d, at %s). Its results are not those of %s: pre-download that model to use it.",
                exc,
                location.model_id,
                location.path,
                DEFAULT_MODEL,
            )
            return location
    if name.lower() in STANDIN_ALIASES:
        return _standin(data_dir)
    random_match = RANDOM_ALIAS.fullmatch(name.lower())
    if random_match:
        dim = int(random_match.group(1) or 1024)
        path = build_random_static_model(random_model_path(data_dir, dim), dim=dim)
        return _local(path, origin="random")
    path = Path(name).expanduser()
    if path.is_dir():
        return _local(path.resolve(), origin="local")
    if path.exists():
        raise ModelError(f"--model {name}: {path} is a file; pass the model's directory")
    looks_like_path = name.startswith(("/", ".", "~")) or name.count("/") != 1
    if looks_like_path or not HUB_ID.fullmatch(name):
        raise ModelError(
            f"--model {name}: no such directory, and not a Hub id (owner/name); "
            f"aliases: auto, standin, random, random-<dim>"
        )
    try:
        return resolve_hub_model(name, hf_cache_dir=hf_cache_dir)
    except HubUnavailableError as exc:
        raise ModelError(_hub_help(name, str(exc))) from exc


def _standin(data_dir: Path) -> ModelLocation:
    path = standin_path(data_dir)
    if read_marker(path) is None:
        build_standin(data_dir)
    return _local(path, origin="stand-in")


def _local(path: Path, *, origin: str) -> ModelLocation:
    marker = read_marker(path) or {}
    kind = marker.get("kind")
    if kind in ("stand-in", "random"):
        origin = str(kind)
    return ModelLocation(model_id=str(marker.get("model_id") or path), path=path, origin=origin)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except ValueError as exc:
        raise ModelError(f"{path} is not valid JSON ({exc}): the model directory is damaged") from exc


def _load_tokenizer(path: Path) -> Tokenizer:
    from tokenizers import Tokenizer

    if not path.is_file():
        raise ModelError(f"{path} is missing: a static model needs its tokenizer.json")
    try:
        tokenizer = Tokenizer.from_file(str(path))
    except Exception as exc:
        raise ModelError(f"{path} cannot be read as a tokenizer ({exc})") from exc
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


def _load_tensors(path: Path, keys: Sequence[str]) -> dict[str, np.ndarray]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="numpy") as fh:
            names = set(fh.keys())
            return {k: fh.get_tensor(k) for k in keys if k in names}
    except Exception as exc:
        raise ModelError(f"{path} cannot be read as safetensors ({exc})") from exc


def _model2vec_table(weights_file: Path) -> np.ndarray:
    """Model2Vec's table with its optional token mapping and weights folded in, as float32."""
    direct = memmap_safetensor(weights_file, "embeddings")
    tensors = _load_tensors(
        weights_file, ["mapping", "weights"] + ([] if direct is not None else ["embeddings"])
    )
    table = direct if direct is not None else tensors.get("embeddings")
    if table is None:
        raise ModelError(f"{weights_file} has no `embeddings` tensor: not a Model2Vec model")
    if "mapping" in tensors:
        table = table[tensors["mapping"].astype(np.int64)]
    table = table.astype(np.float32, copy=False)
    if "weights" in tensors:
        table = table * tensors["weights"].astype(np.float32)[:, None]
    return table


def read_static_model(path: Path) -> StaticModelFiles:
    """Read a static model directory (sentence-transformers or Model2Vec format).

    Args:
        path: The model directory.

    Returns:
        Its tokenizer, float32 table and settings.

    Raises:
        ModelError: if the directory is not a static model this package supports.
    """
    config = _read_json(path / "config.json") or {}
    modules = _read_json(path / "modules.json")
    if config.get("model_type") == "model2vec" or (
        modules is None and (path / "model.safetensors").is_file()
    ):
        tokenizer = _load_tokenizer(path / "tokenizer.json")
        weights_file = path / "model.safetensors"
        if not weights_file.is_file():
            raise ModelError(f"{weights_file} is missing: a Model2Vec model needs it")
        table = _model2vec_table(weights_file)
        unk = _unknown_token_id(tokenizer)
        return StaticModelFiles(
            format="model2vec",
            tokenizer=tokenizer,
            table=table,
            drop_ids=[] if unk is None else [unk],
            tokenizer_file=path / "tokenizer.json",
            weights_file=weights_file,
        )
    if not isinstance(modules, list) or not modules:
        raise ModelError(
            f"{path} has neither modules.json (sentence-transformers) nor a Model2Vec config.json: "
            "pass the directory of a static model"
        )
    types = [str(m.get("type", "")) for m in modules]
    if not types[0].endswith("StaticEmbedding") or any(not t.endswith("Normalize") for t in types[1:]):
        raise ModelError(
            f"{path / 'modules.json'}: modules {types} are not a static model "
            "(supported: StaticEmbedding, optionally followed by Normalize)"
        )
    module_dir = path / str(modules[0].get("path", ""))
    tokenizer = _load_tokenizer(module_dir / "tokenizer.json")
    weights_file = module_dir / "model.safetensors"
    if not weights_file.is_file():
        raise ModelError(f"{weights_file} is missing: only safetensors weights are supported")
    mapped = memmap_safetensor(weights_file, "embedding.weight")
    if mapped is not None:
        table = mapped
    else:
        tensors = _load_tensors(weights_file, ["embedding.weight"])
        if "embedding.weight" in tensors:
            table = tensors["embedding.weight"].astype(np.float32)
        else:
            table = _model2vec_table(weights_file)
    st_config = _read_json(path / "config_sentence_transformers.json") or {}
    prompts = {str(k): str(v) for k, v in (st_config.get("prompts") or {}).items()}
    return StaticModelFiles(
        format="sentence-transformers",
        tokenizer=tokenizer,
        table=table,
        prompts=prompts,
        default_prompt_name=st_config.get("default_prompt_name"),
        tokenizer_file=module_dir / "tokenizer.json",
        weights_file=weights_file,
    )


def _unknown_token_id(tokenizer: Tokenizer) -> int | None:
    """The unknown token's id, found the way Model2Vec finds it."""
    unk = getattr(tokenizer.model, "unk_token", None)
    if unk is not None:
        return tokenizer.token_to_id(unk)
    unk_id = json.loads(tokenizer.to_str()).get("model", {}).get("unk_id")
    return int(unk_id) if unk_id is not None else None


def _worker_loader(path: str) -> tuple[str, np.ndarray, list[int]]:
    """Load a model's tokenizer, table and dropped ids in a worker process."""
    files = read_static_model(Path(path))
    return files.tokenizer.to_str(), files.table, files.drop_ids


class Encoder:
    """A loaded static model: encode texts into L2-normalised float32 vectors.

    Use `load_encoder` to make one. Attributes:
        model_id: Stable model name (Hub id, `static-ingest/<name>` for local builds, or the path).
        dim: Output dimension.
        tokenizer: The model's tokenizer, truncation and padding disabled (the chunker uses it).
        location: Where the model was found.
        files: What was read from the model directory.
        fast: Whether `encode` uses the fast path (else the model's own library).
    """

    def __init__(
        self, location: ModelLocation, files: StaticModelFiles, *, fast: bool = True, workers: int = 1
    ):
        self.location = location
        self.files = files
        self.model_id = location.model_id
        self.dim = int(files.table.shape[1])
        self.tokenizer = files.tokenizer
        self.fast = fast
        self._fast = FastStaticEncoder(
            files.tokenizer,
            files.table,
            drop_ids=files.drop_ids,
            workers=workers,
            loader=partial(_worker_loader, str(location.path)) if workers > 1 else None,
        )
        self._plain: Any = None
        self._marker = read_marker(location.path) or {}

    @property
    def kind(self) -> str:
        """`stand-in` or `random` for models this package built (wherever found), else the format."""
        kind = self._marker.get("kind")
        return str(kind) if kind in ("stand-in", "random") else self.files.format

    def _prompt(self, task: str) -> str:
        prompts = self.files.prompts
        if task in prompts:
            return prompts[task]
        default = self.files.default_prompt_name
        return prompts.get(default, "") if default else ""

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Encode documents (or chunks).

        Args:
            texts: The texts. A sentence-transformers `document` prompt (or default prompt), if the
                model has a non-empty one, is prepended.

        Returns:
            float32 array (len(texts) × dim), rows L2-normalised; a text without tokens gives zeros.

        Raises:
            TypeError: if an item is not a string (names its position).
        """
        return self._encode(texts, self._prompt("document"))

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Encode queries: as `encode`, with the model's `query` prompt (if any) instead."""
        return self._encode(texts, self._prompt("query"))

    def _encode(self, texts: Sequence[str], prompt: str) -> np.ndarray:
        texts = _check_texts(texts)
        if prompt:
            texts = [prompt + t for t in texts]
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self._fast.encode(texts) if self.fast else self.plain_encode(texts)

    def plain_encode(self, texts: Sequence[str]) -> np.ndarray:
        """Encode with the model's own library (sentence-transformers or Model2Vec), normalised.

        The reference the fast path is tested against; no prompt is added here.
        """
        texts = _check_texts(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if self.files.format == "model2vec":
            model = self._plain_model()
            out = model.encode(
                texts, max_length=None, use_multiprocessing=False, normalize=True, batch_size=1024
            )
        else:
            out = self._plain_model().encode(
                texts, prompt="", normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
            )
        return normalise_rows(np.array(out, dtype=np.float32))

    def _plain_model(self) -> Any:
        if self._plain is None:
            path = str(self.location.path)
            if self.files.format == "model2vec":
                from model2vec import StaticModel

                # Stored tables are often float16: compute in float32 like the fast path does.
                self._plain = StaticModel.from_pretrained(
                    path, normalize=True, force_download=False, quantize_to="float32"
                )
            else:
                from sentence_transformers import SentenceTransformer

                model = SentenceTransformer(path, device="cpu", local_files_only=True)
                static: Any = model[0]
                static.tokenizer.no_truncation()  # no silent cut: the encoder never truncates
                self._plain = model
        return self._plain

    def document_bag(self, texts: Sequence[str]) -> Any | None:
        """The texts as bags of token counts, when documents encode straight from them.

        Returns:
            A texts × vocabulary matrix for `embed_bag` and `bag_token_counts`, or None when the
            fast path is off or the model has a document prompt (the vectors then need other
            tokens than the counts).
        """
        if not self.fast or self._prompt("document"):
            return None
        return self._fast.bag(_check_texts(texts))

    def embed_bag(self, bag: Any) -> np.ndarray:
        """Encode documents from (a row selection of) `document_bag`'s result; as `encode` would."""
        return self._fast.embed(bag)

    def bag_token_counts(self, bag: Any) -> list[int]:
        """Tokens per text of `document_bag`'s result (as `count_tokens` counts them)."""
        return bag_token_counts(bag).tolist()

    def chunk_token_counts(self, texts: Sequence[str]) -> list[np.ndarray | None]:
        """Tokens in each run of `text.split()` per text, or None where the fast path cannot count so."""
        return self._fast.chunk_token_counts(_check_texts(texts))

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Tokens per text as the tokenizer counts them (no special tokens, no truncation)."""
        return self._fast.count_tokens(_check_texts(texts))

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids per text, identical to `tokenizer.encode(text, add_special_tokens=False).ids`."""
        return self._fast.token_ids(_check_texts(texts))

    def describe(self) -> dict[str, Any]:
        """What model ran and how: stored in every collection's manifest and in reports."""
        from ingest.encoder.wordpiece import describe_tokenizer

        marker = self._marker
        fast = self._fast.describe()
        return {
            "model_id": self.model_id,
            "kind": self.kind,
            "format": self.files.format,
            "origin": self.location.origin,
            "path": str(self.location.path),
            "revision": self.location.revision,
            "dim": self.dim,
            "vocab_size": int(self.files.table.shape[0]),
            "tokenizer": describe_tokenizer(self.tokenizer),
            "pooling": "mean",
            "normalised": True,
            "truncation": None,
            "dropped_token_ids": fast["dropped_token_ids"],
            "prompts": {k: v for k, v in self.files.prompts.items() if v},
            "fast_path": fast["strategy"] if self.fast else None,
            "fast_unsupported_reason": fast["unsupported_reason"],
            "workers": fast["workers"],
            "random_weights": bool(marker.get("random_weights", False)),
            "built": {k: v for k, v in marker.items() if k not in ("model_id", "kind")} or None,
        }

    def close(self) -> None:
        """Stop worker processes, if any."""
        self._fast.close()


def _check_texts(texts: Sequence[str]) -> list[str]:
    out = list(texts)
    for i, text in enumerate(out):
        if not isinstance(text, str):
            raise TypeError(f"text #{i} is {type(text).__name__}, not str")
    return out


def load_encoder(
    model: str = "auto",
    *,
    data_dir: Path,
    fast: bool = True,
    workers: int = 1,
    hf_cache_dir: Path | None = None,
) -> Encoder:
    """Load a static model.

    Args:
        model: `auto`, `standin`, `random[-<dim>]`, a local directory, or a Hub id (see module doc).
        data_dir: The data directory (stand-in and random models are built under `models/`).
        fast: Use the fast exact path (else the model's own library encodes).
        workers: Processes the fast path may use for large batches (1: this process only; see
            `FastStaticEncoder`).
        hf_cache_dir: Hugging Face cache directory; None uses the default.

    Returns:
        The encoder; it logs which model it loaded.

    Raises:
        ModelError: the model cannot be found, downloaded or read; the message says what to do.
    """
    location = resolve_model(model, data_dir=Path(data_dir), hf_cache_dir=hf_cache_dir)
    files = read_static_model(location.path)
    encoder = Encoder(location, files, fast=fast, workers=workers)
    log.info(
        "model %s (%s, %d-d) from %s; fast path: %s",
        encoder.model_id,
        encoder.kind,
        encoder.dim,
        location.path,
        encoder.describe()["fast_path"],
    )
    return encoder


def slice_normalise(vectors: np.ndarray, dim: int) -> np.ndarray:
    """Matryoshka: keep the first `dim` components of each row and L2-normalise again.

    Args:
        vectors: float32 matrix (n × D).
        dim: The prefix length, 1 ≤ dim ≤ D.

    Returns:
        A new float32 C-contiguous matrix (n × dim); zero rows stay zero.

    Raises:
        ValueError: if `dim` is out of range.
    """
    if vectors.ndim != 2:
        raise ValueError(f"expected a 2-D array of vectors, got shape {vectors.shape}")
    if not 1 <= dim <= vectors.shape[1]:
        raise ValueError(f"Matryoshka dim {dim} is outside 1..{vectors.shape[1]} (the model's dimension)")
    return normalise_rows(np.array(vectors[:, :dim], dtype=np.float32, order="C"))
