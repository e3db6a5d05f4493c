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
from pyserini_hybrid.encoders._bias import BiasCorrection, load_bias_correction, parse_bias_method
from pyserini_hybrid.encoders._langid import identify_languages
from pyserini_hybrid.encoders._model import Encoder
from pyserini_hybrid.encoders._registry import DEFAULT_ENCODER

__all__ = ['HybridQueryEncoder', 'HybridDocumentEncoder']


def _encoder(encoder: str | Encoder, kwargs: dict) -> Encoder:
    if isinstance(encoder, Encoder):
        if kwargs:
            raise TypeError(f"options {sorted(kwargs)} apply only when building an Encoder from a name")
        return encoder
    return Encoder(encoder, **kwargs)


def _correction(encoder: Encoder, bias_correction: str | BiasCorrection | None, bias_source: str) -> BiasCorrection:
    if isinstance(bias_correction, BiasCorrection):
        return bias_correction
    method, rank = parse_bias_method(bias_correction or 'none')
    return load_bias_correction(encoder, method, rank=rank, source=bias_source)


def _languages(fix: BiasCorrection, texts: Sequence[str], langs: Sequence[str] | str | None) -> list[str]:
    """Each text's language: given (one for all, or one each), else identified among the fitted ones."""
    if isinstance(langs, str):
        return [langs] * len(texts)
    if langs is not None:
        return list(langs)
    return identify_languages(texts, fix.stats.langs)


class HybridQueryEncoder(QueryEncoder):
    """A ``pyserini.encode.QueryEncoder`` for any registered or trained encoder.

    Parameters
    ----------
    encoder : str or Encoder
        Encoder name / model directory, or an :class:`Encoder` to share (one model in memory
        for queries and documents).
    bias_correction : str or BiasCorrection, optional
        Language-bias correction of the query vectors (``'center'``, ``'lir:1'``, ...; ``'shift'``
        leaves queries as they are): use the one the FAISS index was built with (its ``bias.json``).
    bias_source : str
        Statistics source when ``bias_correction`` is a name (``'ntrex'``).
    lang : str, optional
        Language of every query; when unset and the correction needs one, each query's language is
        identified offline (py3langid) among the languages the statistics cover.
    **kwargs
        ``batch_size``, ``precision``, ``threads``, ``device``, ``task``: see :class:`Encoder`.
    """

    def __init__(self, encoder: str | Encoder = DEFAULT_ENCODER, *, bias_correction: str | BiasCorrection | None = None,
                 bias_source: str = 'ntrex', lang: str | None = None, **kwargs) -> None:
        super().__init__(encoded_query_dir=None)
        self.encoder = _encoder(encoder, kwargs)
        self.correction = _correction(self.encoder, bias_correction, bias_source)
        self.lang = lang
        self.has_model = True

    def encode(self, query: str, lang: str | None = None, **kwargs) -> np.ndarray:
        """One query -> float32 vector ``[dim]`` (the model's query prefix applied)."""
        return self.encode_batch([query], langs=[lang] if lang else None)[0]

    def encode_batch(self, queries: Sequence[str], langs: Sequence[str] | None = None, **kwargs) -> np.ndarray:
        """Queries -> float32 ``[n, dim]``; ``FaissSearcher.batch_search`` uses this when present."""
        queries = list(queries)
        vectors = self.encoder.encode_queries(queries)
        if not self.correction.needs_query_langs:
            return self.correction.queries(vectors)
        return self.correction.queries(vectors, _languages(self.correction, queries, langs or self.lang))


class HybridDocumentEncoder(DocumentEncoder):
    """A ``pyserini.encode.DocumentEncoder`` for any registered or trained encoder.

    Titles, when given, are joined to their texts with a space before the passage prefix is
    applied (LAReQA candidates have none). ``bias_correction``, ``bias_source`` and ``lang`` are
    as for :class:`HybridQueryEncoder` (documents are shifted by ``'shift'`` too).
    """

    def __init__(self, encoder: str | Encoder = DEFAULT_ENCODER, *, bias_correction: str | BiasCorrection | None = None,
                 bias_source: str = 'ntrex', lang: str | None = None, **kwargs) -> None:
        self.encoder = _encoder(encoder, kwargs)
        self.correction = _correction(self.encoder, bias_correction, bias_source)
        self.lang = lang

    def encode(self, texts: Sequence[str], titles: Sequence[str] | None = None, langs: Sequence[str] | None = None,
               **kwargs) -> np.ndarray:
        """Passages (optionally with titles) -> float32 ``[n, dim]``."""
        texts = list(texts)
        if titles is not None:
            titles = list(titles)
            if len(titles) != len(texts):
                raise ValueError(f"got {len(titles)} titles for {len(texts)} texts")
            texts = [f'{title} {text}'.strip() for title, text in zip(titles, texts)]
        vectors = self.encoder.encode_passages(texts, show_progress=bool(kwargs.get('show_progress', False)))
        if not self.correction.needs_doc_langs:
            return self.correction.docs(vectors)
        return self.correction.docs(vectors, _languages(self.correction, texts, langs or self.lang))
