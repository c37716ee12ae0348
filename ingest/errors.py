"""Exceptions with messages meant for the person running the command."""

from __future__ import annotations


class IngestError(Exception):
    """Base class: the message says what went wrong, where, and what to do."""


class InputError(IngestError):
    """Bad input data: names the file and the line, row or field."""


class DatasetNotFoundError(IngestError):
    """A dataset could not be found locally and could not be downloaded."""


class ChecksumError(IngestError):
    """A downloaded or local archive does not match its published checksum."""


class CollectionMismatchError(IngestError):
    """An existing collection differs from the requested configuration."""


class ModelError(IngestError):
    """A model could not be loaded or does not fit the request."""


class StoreError(IngestError):
    """The vector store failed (unreachable server, lock held, ...)."""
