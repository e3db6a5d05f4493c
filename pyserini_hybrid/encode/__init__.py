"""Encode a corpus into a FAISS index in Pyserini's layout (``index`` + ``docid``) and/or embeddings JSONL.

CLI: ``python -m pyserini_hybrid.encode --help`` (and ``python -m pyserini_hybrid.encode merge``).
The index loads with ``pyserini.search.faiss.FaissSearcher(index_dir, HybridQueryEncoder(...))``.
Importing this package loads neither torch, faiss nor the JVM.
"""
from pyserini_hybrid.encode._encode import (INDEX_TYPES, EncodeError, MultiProcessEncoder, encode_corpus,
                                            make_faiss_index, merge_shards, read_faiss_index, shard_range,
                                            write_embeddings)

__all__ = ['INDEX_TYPES', 'EncodeError', 'MultiProcessEncoder', 'encode_corpus', 'make_faiss_index', 'merge_shards',
           'read_faiss_index', 'shard_range', 'write_embeddings']
