"""Corpus -> FAISS index in Pyserini's layout (``index`` + ``docid``) and/or embeddings JSONL.

Thin wrappers: documents come from a :class:`~pyserini_hybrid.datasets.Collection`, vectors from the
embedding cache (:func:`~pyserini_hybrid.encoders.embed_texts`: a killed run resumes where it
stopped), several processes from sentence-transformers' multi-process encoding, indexes from faiss.
Shards split the corpus as ``pyserini.encode`` does (``--shard-id`` / ``--shard-num``);
:func:`merge_shards` joins them in shard order.
"""
from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from pyserini_hybrid._io import atomic_write

if TYPE_CHECKING:  # pragma: no cover
    from pyserini_hybrid.datasets import Collection
    from pyserini_hybrid.encoders import BiasCorrection, Encoder

__all__ = ['INDEX_TYPES', 'EncodeError', 'MultiProcessEncoder', 'encode_corpus', 'make_faiss_index', 'merge_shards',
           'read_faiss_index', 'shard_range', 'write_embeddings']

INDEX_TYPES = ('flat', 'hnsw', 'pq')
EMBEDDINGS_FILE = 'embeddings.jsonl'


class EncodeError(ValueError):
    """Bad encode / merge input (one line)."""


def shard_range(total: int, shard_id: int = 0, shard_num: int = 1) -> tuple[int, int]:
    """``[start, end)`` of shard ``shard_id`` of ``shard_num`` over ``total`` documents, as
    ``pyserini.encode`` splits a collection (equal shards, the last one takes the remainder)."""
    if shard_num <= 0 or not 0 <= shard_id < shard_num:
        raise EncodeError(f"need 0 <= --shard-id < --shard-num, got shard {shard_id} of {shard_num}")
    size = total // shard_num
    start = shard_id * size
    end = total if shard_id == shard_num - 1 else min(start + size, total)
    return start, end


def make_faiss_index(dim: int, index_type: str = 'flat', *, hnsw_m: int = 32, ef_construction: int = 40,
                     pq_m: int = 8, pq_nbits: int = 8):
    """An empty inner-product FAISS index: ``IndexFlatIP``, ``IndexHNSWFlat`` or ``IndexPQ``.

    Raises
    ------
    EncodeError
        An unknown type, or PQ sub-quantisers that do not divide the dimension.
    """
    import faiss

    if index_type == 'flat':
        return faiss.IndexFlatIP(dim)
    if index_type == 'hnsw':
        if hnsw_m <= 0 or ef_construction <= 0:
            raise EncodeError(f"--hnsw-m and --ef-construction must be positive, got {hnsw_m}, {ef_construction}")
        index = faiss.IndexHNSWFlat(dim, hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = ef_construction
        return index
    if index_type == 'pq':
        if pq_m <= 0 or dim % pq_m:
            raise EncodeError(f"--pq-m {pq_m} must be positive and divide the dimension {dim}")
        if not 1 <= pq_nbits <= 16:
            raise EncodeError(f"--pq-nbits must be in [1, 16], got {pq_nbits}")
        return faiss.IndexPQ(dim, pq_m, pq_nbits, faiss.METRIC_INNER_PRODUCT)
    raise EncodeError(f"unknown index type {index_type!r}; choices: {', '.join(INDEX_TYPES)}")


class MultiProcessEncoder:
    """An :class:`Encoder` whose passages are embedded by sentence-transformers' multi-process pool.

    ``SentenceTransformer.start_multi_process_pool`` starts one worker per device (several GPUs, or
    CPU processes); :meth:`encode_passages` sends each batch of texts to ``encode(..., pool=...)``.
    It keeps the encoder's fingerprint, dimension and prefixes, so the embedding cache is shared
    with one-process runs. Use it as a context manager (the pool is stopped on exit).
    """

    def __init__(self, encoder: 'Encoder', processes: int, devices: Sequence[str] | None = None) -> None:
        if processes <= 0:
            raise EncodeError(f"--processes must be positive, got {processes}")
        if encoder.precision != 'fp32':
            raise EncodeError(f"multi-process encoding runs the model as it is in each worker: build the Encoder "
                              f"at precision 'fp32', not {encoder.precision!r} (quantised or autocast models "
                              f"are not sent to the workers)")
        self.encoder = encoder
        self.spec, self.dim, self.fingerprint = encoder.spec, encoder.dim, encoder.fingerprint
        self.query_prefix, self.passage_prefix = encoder.query_prefix, encoder.passage_prefix
        self.precision = encoder.precision
        if devices is None:
            import torch

            if torch.cuda.is_available():
                devices = [f'cuda:{i % torch.cuda.device_count()}' for i in range(processes)]
            else:
                devices = ['cpu'] * processes
        self.devices = list(devices)
        self._pool = None

    def __enter__(self) -> 'MultiProcessEncoder':
        self._pool = self.encoder.model.start_multi_process_pool(target_devices=self.devices)
        return self

    def __exit__(self, *exc) -> None:
        if self._pool is not None:
            self.encoder.model.stop_multi_process_pool(self._pool)
            self._pool = None

    def _encode(self, texts: Sequence[str], prefix: str) -> np.ndarray:
        if self._pool is None:
            raise RuntimeError("MultiProcessEncoder is used outside its 'with' block")
        inputs = [prefix + t.strip() for t in texts]
        out = self.encoder.model.encode(inputs, pool=self._pool, batch_size=self.encoder.batch_size,
                                        convert_to_numpy=True, normalize_embeddings=bool(self.spec.normalize))
        return np.asarray(out, dtype=np.float32)

    def encode_passages(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray:
        return self._encode(texts, self.passage_prefix)

    def encode_queries(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray:
        return self._encode(texts, self.query_prefix)


def write_embeddings(path: str | os.PathLike, docids: Sequence[str], texts: Sequence[str],
                     vectors: np.ndarray) -> Path:
    """Embeddings JSONL as ``pyserini.encode``'s ``JsonlRepresentationWriter`` writes it
    (``{"id", "contents", "vector"}`` per line), atomically."""
    with atomic_write(path) as out:
        for doc_id, text, vector in zip(docids, texts, np.asarray(vectors, dtype=np.float32)):
            out.write(json.dumps({'id': doc_id, 'contents': text, 'vector': vector.tolist()}, ensure_ascii=False)
                      + '\n')
    return Path(path)


def encode_corpus(collection: 'Collection', encoder, *, index_dir: str | os.PathLike | None = None,
                  embeddings: str | os.PathLike | None = None, shard_id: int = 0, shard_num: int = 1,
                  index_type: str = 'flat', correction: 'BiasCorrection | None' = None,
                  cache_dir: str | os.PathLike | None = None, show_progress: bool = False,
                  **index_options) -> dict[str, Path]:
    """Encode one shard of a collection's documents into a FAISS index and/or embeddings JSONL.

    Parameters
    ----------
    collection : Collection
        Its documents, in order (``shard_range`` picks this shard's slice).
    encoder : Encoder or MultiProcessEncoder
    index_dir : path, optional
        FAISS index directory in Pyserini's layout (``index``, ``docid``, ``bias.json`` when corrected),
        written atomically.
    embeddings : path, optional
        Embeddings JSONL file.
    correction : BiasCorrection, optional
        Applied to the document vectors (documents need a language unless the method is ``lsar``);
        recorded in ``bias.json`` so that queries get the same correction.
    **index_options
        ``hnsw_m``, ``ef_construction``, ``pq_m``, ``pq_nbits`` (see :func:`make_faiss_index`).

    Returns
    -------
    dict
        ``{'index': path, 'embeddings': path}`` for what was written.
    """
    from pyserini_hybrid.encoders import embed_texts
    from pyserini_hybrid.search import write_faiss_index

    if index_dir is None and embeddings is None:
        raise EncodeError("nothing to write: give --index DIR and/or --embeddings FILE")
    start, end = shard_range(len(collection.docs), shard_id, shard_num)
    docs = collection.docs[start:end]
    if not docs:
        raise EncodeError(f"shard {shard_id} of {shard_num} holds no document ({len(collection.docs)} in the corpus)")
    index = make_faiss_index(int(encoder.dim), index_type, **index_options)
    texts = [d.text for d in docs]
    vectors = embed_texts(encoder, texts, 'passage', cache_dir, show_progress)
    if correction is not None and correction.method != 'none':
        vectors = correction.docs(vectors, [d.lang for d in docs] if correction.needs_doc_langs else None)
    docids = [d.doc_id for d in docs]
    out: dict[str, Path] = {}
    if index_dir is not None:
        out['index'] = write_faiss_index(index_dir, vectors, docids, correction, index=index)
    if embeddings is not None:
        out['embeddings'] = write_embeddings(embeddings, docids, texts, vectors)
    return out


def read_faiss_index(index_dir: str | os.PathLike):
    """``(faiss index, docids, bias.json dict or None)`` of an index directory in Pyserini's layout."""
    import faiss

    index_dir = Path(index_dir)
    for name in ('index', 'docid'):
        if not (index_dir / name).is_file():
            raise EncodeError(f"{index_dir}: missing {name} (a FAISS index in Pyserini's layout expected)")
    index = faiss.read_index(str(index_dir / 'index'))
    docids = (index_dir / 'docid').read_text(encoding='utf-8').split('\n')[:-1]
    if len(docids) != index.ntotal:
        raise EncodeError(f"{index_dir}: {len(docids)} docids for {index.ntotal} vectors")
    bias = index_dir / 'bias.json'
    return index, docids, json.loads(bias.read_text(encoding='utf-8')) if bias.is_file() else None


def merge_shards(shard_dirs: Sequence[str | os.PathLike], index_dir: str | os.PathLike, index_type: str = 'flat',
                 **index_options) -> Path:
    """Join shard indexes (flat, in the order given: shard 0 first) into one index.

    Raises
    ------
    EncodeError
        Fewer than one shard, a shard that is not a flat index (encode shards flat and choose the
        final type here), shards of different dimensions or bias corrections, a docid in two shards.
    """
    import faiss

    from pyserini_hybrid.search import write_faiss_index

    if not shard_dirs:
        raise EncodeError("merge needs at least one shard directory")
    vectors, docids, biases = [], [], []
    for shard in shard_dirs:
        index, ids, bias = read_faiss_index(shard)
        if not isinstance(index, faiss.IndexFlat):
            raise EncodeError(f"{shard}: not a flat index; encode shards with --index-type flat and choose the "
                              f"merged index's type with merge --index-type")
        vectors.append(index.reconstruct_n(0, index.ntotal))
        docids += ids
        biases.append(bias)
    dims = {v.shape[1] for v in vectors}
    if len(dims) != 1:
        raise EncodeError(f"shards differ in dimension: {sorted(dims)}")
    if any(b != biases[0] for b in biases):
        raise EncodeError("shards were written with different bias corrections (bias.json differs)")
    if len(set(docids)) != len(docids):
        dup = next(d for d, n in Counter(docids).items() if n > 1)
        raise EncodeError(f"docid {dup!r} is in more than one shard (a shard given twice?)")
    merged = np.concatenate(vectors)
    index = make_faiss_index(merged.shape[1], index_type, **index_options)
    return write_faiss_index(index_dir, merged, docids, biases[0], index=index)
