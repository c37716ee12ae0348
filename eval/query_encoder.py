"""Step 3 of an eval: the query encoder: load the model the collections were built with (from their
manifest), refuse a different one, and encode the judged queries (`QueryEmbeddings`)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from eval.data import EvalData
from eval.errors import EvalModelError
from eval.options import EvalOptions

# Model description keys that identify the weights; any difference between the collection's
# manifest and the loaded query encoder is a mismatch.
MODEL_IDENTITY_KEYS: tuple[str, ...] = (
    "model_id",
    "dim",
    "revision",
    "sha256",
    "fingerprint",
    "weights_sha256",
)


def model_identity(model: dict[str, Any]) -> tuple[Any, ...]:
    """The values of `MODEL_IDENTITY_KEYS` in a model description (equal tuples: the same weights)."""
    return tuple(model.get(k) for k in MODEL_IDENTITY_KEYS)


def load_query_encoder(model: dict[str, Any], opts: EvalOptions) -> Any:
    """Load the encoder that built the collections (from their manifest) to encode queries.

    Args:
        model: The manifest's model description (`encoder.describe()` at ingest time).
        opts: `opts.model` overrides which model is loaded; it must still match the manifest.

    Returns:
        An `ingest.encoder.static.Encoder`.

    Raises:
        EvalModelError: the manifest names no model, it cannot be loaded, or the loaded model differs
            from the one the collections were built with (queries and documents would live in
            different vector spaces).
    """
    from ingest.encoder.static import load_encoder
    from ingest.errors import ModelError

    candidates = [opts.model] if opts.model else model_candidates(model)
    if not candidates:
        raise EvalModelError("the collection manifest records no model: re-ingest the collections")
    errors: list[str] = []
    encoder = None
    for candidate in candidates:
        try:
            encoder = load_encoder(candidate, data_dir=opts.data_dir)
            break
        except ModelError as exc:
            errors.append(f"{candidate}: {exc}")
    if encoder is None:
        raise EvalModelError(
            f"cannot load the model the collections were built with ({model.get('model_id')!r}): "
            + "; ".join(errors)
        )
    check_same_model(model, encoder.describe())
    return encoder


def model_candidates(model: dict[str, Any]) -> list[str]:
    """Ways to load the manifest's model, most faithful first.

    A Hub model loads by its id (a cached snapshot path would get another model id); local builds
    load from their directory, falling back to the alias that rebuilds them (`standin`, `random-<dim>`).

    Args:
        model: The manifest's model description.

    Returns:
        Model names or paths for `ingest.encoder.static.load_encoder`, without duplicates.
    """
    model_id, path, origin = (
        model.get("model_id"),
        model.get("path"),
        model.get("origin") or model.get("kind"),
    )
    out: list[str] = []
    if origin == "hub" and model_id:
        out.append(str(model_id))
    if path:
        out.append(str(path))
    if origin == "stand-in":
        out.append("standin")
    elif origin == "random" and model.get("dim"):
        out.append(f"random-{model['dim']}")
    elif model_id:
        out.append(str(model_id))
    return list(dict.fromkeys(out))


def check_same_model(stored: dict[str, Any], loaded: dict[str, Any]) -> None:
    """Refuse a query encoder that differs from the collections' model.

    Every identity key (`MODEL_IDENTITY_KEYS`) present in both descriptions must be equal.

    Args:
        stored: The manifest's model description.
        loaded: The loaded encoder's `describe()`.

    Raises:
        EvalModelError: naming both models and the first differing key.
    """
    for key in MODEL_IDENTITY_KEYS:
        if key in stored and key in loaded and stored[key] != loaded[key]:
            raise EvalModelError(
                f"query encoder mismatch: the collections were built with {stored.get('model_id')!r} "
                f"({key}={stored[key]!r}) but the loaded model is {loaded.get('model_id')!r} "
                f"({key}={loaded[key]!r}); evaluate with the ingest's model (drop --model) or re-ingest "
                "with this one"
            )


@dataclass
class QueryEmbeddings:
    """Encoded queries at the model's full dimension.

    Attributes:
        ids: Query ids (row order).
        vectors: n × model dim, L2-normalised float32.
        seconds: Encoding wall time.
    """

    ids: list[str]
    vectors: np.ndarray
    seconds: float

    @property
    def queries_per_s(self) -> float:
        """Encoding throughput."""
        return len(self.ids) / self.seconds if self.seconds > 0 else math.inf

    def at_dim(self, dim: int) -> np.ndarray:
        """The vectors cut to a Matryoshka prefix of `dim` and re-normalised."""
        from ingest.encoder.static import slice_normalise

        if dim == self.vectors.shape[1]:
            return self.vectors
        return np.asarray(slice_normalise(self.vectors, dim), dtype=np.float32)


def encode_queries(encoder: Any, data: EvalData) -> QueryEmbeddings:
    """Encode every judged query with the collection's model (timed).

    Args:
        encoder: The query encoder (`load_query_encoder`).
        data: The judged queries.

    Returns:
        The embeddings in `data.query_ids` order and the encoding time.
    """
    ids = data.query_ids
    start = time.perf_counter()
    texts = [data.queries[q] for q in ids]
    # The query prompt of the model, if it has one (the ingest used the document prompt).
    encode = getattr(encoder, "encode_queries", None) or encoder.encode
    vectors = np.asarray(encode(texts), dtype=np.float32)
    return QueryEmbeddings(ids, vectors, time.perf_counter() - start)
