"""Pyserini dense-encoder classes over :class:`Encoder`.

Importing this module imports ``pyserini.encode``, which starts the JVM: ``pyserini_hybrid`` must be
imported first (it sets Java up), which the package import below guarantees.

Usage::

    import pyserini_hybrid
    from pyserini.search.faiss import FaissSearcher
    from pyserini_hybrid.encoders import HybridQueryEncoder
    searcher = FaissSearcher('indexes/xquad-r.en', HybridQueryEncoder('me5-small-offline'))
    hits = searcher.search('query text', k=10)
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

import pyserini_hybrid  # noqa: F401 - Java set-up must precede pyserini's JVM start
from pyserini.encode import DocumentEncoder, QueryEncoder
from pyserini_hybrid.encoders._model import Encoder
from pyserini_hybrid.encoders._registry import DEFAULT_ENCODER

__all__ = ['HybridQueryEncoder', 'HybridDocumentEncoder']


def _encoder(encoder: str | Encoder, kwargs: dict) -> Encoder:
    if isinstance(encoder, Encoder):
        if kwargs:
            raise TypeError(f"options {sorted(kwargs)} apply only when building an Encoder from a name")
        return encoder
    return Encoder(encoder, **kwargs)


class HybridQueryEncoder(QueryEncoder):
    """A ``pyserini.encode.QueryEncoder`` for any registered or trained encoder.

    Parameters
    ----------
    encoder : str or Encoder
        Encoder name / model directory, or an :class:`Encoder` to share (one model in memory
        for queries and documents).
    **kwargs
        ``batch_size``, ``precision``, ``threads``, ``device``, ``task``: see :class:`Encoder`.
    """

    def __init__(self, encoder: str | Encoder = DEFAULT_ENCODER, **kwargs) -> None:
        super().__init__(encoded_query_dir=None)
        self.encoder = _encoder(encoder, kwargs)
        self.has_model = True

    def encode(self, query: str, **kwargs) -> np.ndarray:
        """One query -> float32 vector ``[dim]`` (the model's query prefix applied)."""
        return self.encoder.encode_queries([query])[0]

    def encode_batch(self, queries: Sequence[str], **kwargs) -> np.ndarray:
        """Queries -> float32 ``[n, dim]``; ``FaissSearcher.batch_search`` uses this when present."""
        return self.encoder.encode_queries(list(queries))


class HybridDocumentEncoder(DocumentEncoder):
    """A ``pyserini.encode.DocumentEncoder`` for any registered or trained encoder.

    Titles, when given, are joined to their texts with a space before the passage prefix is
    applied (LAReQA candidates have none).
    """

    def __init__(self, encoder: str | Encoder = DEFAULT_ENCODER, **kwargs) -> None:
        self.encoder = _encoder(encoder, kwargs)

    def encode(self, texts: Sequence[str], titles: Sequence[str] | None = None, **kwargs) -> np.ndarray:
        """Passages (optionally with titles) -> float32 ``[n, dim]``."""
        texts = list(texts)
        if titles is not None:
            titles = list(titles)
            if len(titles) != len(texts):
                raise ValueError(f"got {len(titles)} titles for {len(texts)} texts")
            texts = [f'{title} {text}'.strip() for title, text in zip(titles, texts)]
        return self.encoder.encode_passages(texts, show_progress=bool(kwargs.get('show_progress', False)))
