"""Search any collection (:func:`pyserini_hybrid.datasets.load_collection`: a JsonCollection folder with
topics, any ir_datasets id, LAReQA settings): dense (embed once, matrix search), BM25 through
Pyserini, and fusion; a FAISS index written by :mod:`pyserini_hybrid.encode` is searched through
Pyserini's ``FaissSearcher`` (``python -m pyserini_hybrid.search --index DIR --topics FILE``).

- :func:`embed_pool` embeds a collection's queries and candidates once per model, through an
  on-disk cache; :func:`dense_runs` then scores any settings as slices of those vectors.
- :func:`build_faiss_index` writes a setting's corpus as a FAISS index in Pyserini's layout
  (``index`` + ``docid``) for ``pyserini.search.faiss.FaissSearcher``.
- :func:`bm25_runs` searches Lucene indexes built through Pyserini with a Lucene analyzer per
  language (see :mod:`pyserini_hybrid.search._bm25` for Thai and the pooled Multi index).
- :func:`fuse_runs` fuses runs (RRF, interpolation) with numpy, agreeing exactly with ``pyserini.fusion``;
  :func:`fuse_columns` does it on :class:`~pyserini_hybrid._trec.RunColumns` (read, fused, written as arrays),
  :func:`fuse_run_files` from run files to run files, the settings in parallel processes.

CLI: ``python -m pyserini_hybrid.search --help``. Importing this package loads neither torch,
pyserini nor the JVM.
"""
from pyserini_hybrid.search._bm25 import (ANALYZERS, BM25_B, BM25_K1, bm25_index_for, bm25_runs, bm25_search,
                                          build_bm25_index, default_index_root, iter_bm25_runs, thai_bigrams)
from pyserini_hybrid.encoders._cache import cache_root, embed_pool, embed_texts, embedding_cache_dir
from pyserini_hybrid.search._dense import (build_faiss_index, dense_runs, dense_search, iter_dense_runs, top_k,
                                           write_faiss_index)
from pyserini_hybrid.search._fusion import FUSION_METHODS, fuse_columns, fuse_run_files, fuse_runs

__all__ = ['ANALYZERS', 'BM25_B', 'BM25_K1', 'FUSION_METHODS', 'bm25_index_for', 'bm25_runs', 'bm25_search',
           'build_bm25_index', 'build_faiss_index', 'cache_root', 'default_index_root', 'dense_runs', 'dense_search',
           'embed_pool', 'embed_texts', 'embedding_cache_dir', 'fuse_columns', 'fuse_run_files', 'fuse_runs',
           'iter_bm25_runs', 'iter_dense_runs', 'thai_bigrams', 'top_k', 'write_faiss_index']
