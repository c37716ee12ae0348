"""Errors the eval raises itself (errors of the ingest functions it calls stay `ingest.errors` ones).

Every message says what went wrong, where, and what to do, in one line.
"""

from __future__ import annotations


class EvalError(Exception):
    """Base class of the eval's own errors."""


class EvalInputError(EvalError):
    """Bad eval input: queries or qrels missing or malformed, a collection not written by the ingest."""


class MissingCollectionError(EvalInputError):
    """No usable collection to evaluate (not ingested, unfinished, or no float baseline): says which
    ingest to run."""


class EvalModelError(EvalError):
    """A query encoder or baseline model cannot be loaded or differs from the collections' model."""
