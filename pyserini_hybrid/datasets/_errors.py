"""Dataset errors, in a module of their own so that the parsers and the downloads share them
without importing each other."""
from __future__ import annotations

__all__ = ['CollectionError', 'LareqaDataError']


class LareqaDataError(ValueError):
    """A bad, missing or checksum-mismatched LAReQA data file; the message names the file."""


class CollectionError(ValueError):
    """A bad collection: unknown id, missing or malformed corpus, topics or qrels file (one line)."""
