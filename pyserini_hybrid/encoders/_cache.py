"""Embed once: an on-disk embedding cache keyed by (encoder fingerprint, role and prefix, text).

Layout::

    {cache_root}/embeddings/{fingerprint}/{role}/chunk-*.npz    role: 'query' | 'passage'

Each chunk holds ``keys`` (``[n]`` 16-byte BLAKE2b digests of ``prefix + NUL + text``) and
``vectors`` (``[n, dim]`` float32), and is written atomically (temporary file, then rename), so a
chunk file either is complete or does not exist. Completeness is decided per text, never per
file: texts whose key is in no chunk are (re-)encoded, so a run killed half-way leaves a cache
that the next run completes, and a run with the same model over the same texts encodes nothing.
Every Mono, Cross and Multi setting of a collection is a slice of one pool, so
:func:`embed_pool` embeds each distinct text of the pool once per model.
"""
from __future__ import annotations

import hashlib
import json
import os
import uuid
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from pyserini_hybrid._io import atomic_write

if TYPE_CHECKING:  # pragma: no cover
    from pyserini_hybrid.datasets import Pool
    from pyserini_hybrid.encoders import Encoder

__all__ = ['CHUNK_TEXTS', 'ROLES', 'cache_root', 'embedding_cache_dir', 'embed_texts', 'embed_pool', 'text_keys']

ROLES = ('query', 'passage')
# Texts encoded between two cache writes: a killed run loses at most this much work.
CHUNK_TEXTS = 2048
_KEY_BYTES = 16


def cache_root() -> Path:
    """``$PYSERINI_HYBRID_CACHE`` or ``~/.cache/pyserini_hybrid`` (the encoders' cache root)."""
    from pyserini_hybrid.encoders._offline import cache_dir
    return cache_dir()


def embedding_cache_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """Root of the embedding cache: ``cache_dir`` or ``{cache_root}/embeddings``."""
    return Path(cache_dir).expanduser() if cache_dir is not None else cache_root() / 'embeddings'


def _prefix(encoder: 'Encoder', role: str) -> str:
    if role == 'query':
        return getattr(encoder, 'query_prefix', encoder.spec.query_prefix)
    return getattr(encoder, 'passage_prefix', encoder.spec.passage_prefix)


def text_keys(texts: Sequence[str], role: str, prefix: str) -> np.ndarray:
    """16-byte keys (``S16`` array) of ``texts`` for one role and prefix."""
    head = f'{role}\0{prefix}\0'.encode()
    return np.array([hashlib.blake2b(head + t.encode('utf-8'), digest_size=_KEY_BYTES).digest() for t in texts],
                    dtype=f'S{_KEY_BYTES}')


class _Store:
    """The chunks of one (fingerprint, role): a key -> vector lookup, extended chunk by chunk."""

    def __init__(self, directory: Path, dim: int) -> None:
        self.directory = directory
        self.dim = dim
        self.keys: list[np.ndarray] = []
        self.vectors: list[np.ndarray] = []
        self.index: dict[bytes, tuple[int, int]] = {}
        if directory.is_dir():
            for path in sorted(directory.glob('chunk-*.npz')):
                self._load(path)

    def _load(self, path: Path) -> None:
        try:
            with np.load(path, allow_pickle=False) as data:
                keys, vectors = data['keys'], data['vectors']
        except Exception as exc:  # noqa: BLE001 - any unreadable chunk is skipped, its texts re-encoded
            warnings.warn(f"ignoring unreadable embedding cache chunk {path} ({type(exc).__name__}: {exc})",
                          RuntimeWarning, stacklevel=3)
            return
        if (keys.dtype != np.dtype(f'S{_KEY_BYTES}') or vectors.dtype != np.float32 or vectors.ndim != 2
                or vectors.shape != (len(keys), self.dim)):
            warnings.warn(f"ignoring embedding cache chunk {path}: keys {keys.dtype}{keys.shape}, vectors "
                          f"{vectors.dtype}{vectors.shape}, expected [n] S{_KEY_BYTES} and [n, {self.dim}] float32",
                          RuntimeWarning, stacklevel=3)
            return
        self._add(keys, vectors)

    def _add(self, keys: np.ndarray, vectors: np.ndarray) -> None:
        chunk = len(self.keys)
        self.keys.append(keys)
        self.vectors.append(vectors)
        for row, key in enumerate(keys.tolist()):
            self.index.setdefault(key, (chunk, row))

    def write(self, keys: np.ndarray, vectors: np.ndarray) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f'chunk-{uuid.uuid4().hex}.npz'
        with atomic_write(path, 'wb') as out:
            np.savez(out, keys=keys, vectors=np.ascontiguousarray(vectors, dtype=np.float32))
        self._add(keys, vectors)

    def gather(self, keys: np.ndarray) -> np.ndarray:
        out = np.empty((len(keys), self.dim), dtype=np.float32)
        for i, key in enumerate(keys.tolist()):
            chunk, row = self.index[key]
            out[i] = self.vectors[chunk][row]
        return out


def _write_meta(directory: Path, encoder: 'Encoder') -> None:
    meta = directory / 'encoder.json'
    if meta.is_file():
        return
    directory.mkdir(parents=True, exist_ok=True)
    info = {'fingerprint': encoder.fingerprint, 'name': encoder.spec.name, 'dim': int(encoder.dim),
            'precision': getattr(encoder, 'precision', None),
            'query_prefix': _prefix(encoder, 'query'), 'passage_prefix': _prefix(encoder, 'passage')}
    with atomic_write(meta) as out:
        json.dump(info, out, indent=2, sort_keys=True)
        out.write('\n')


def embed_texts(encoder: 'Encoder', texts: Sequence[str], role: str, cache_dir: str | os.PathLike | None = None,
                show_progress: bool = False) -> np.ndarray:
    """Embed ``texts`` as queries or passages, through the on-disk cache.

    Parameters
    ----------
    encoder : Encoder
        Supplies ``fingerprint``, ``dim`` and ``encode_queries`` / ``encode_passages``.
    texts : sequence of str
        Texts to embed; repeats are encoded once.
    role : str
        ``'query'`` or ``'passage'`` (which prefix the encoder applies).
    cache_dir : path, optional
        Embedding cache root (default ``$PYSERINI_HYBRID_CACHE/embeddings``).
    show_progress : bool
        tqdm bar over the texts still to encode.

    Returns
    -------
    numpy.ndarray
        float32 ``[len(texts), encoder.dim]``, row ``i`` the vector of ``texts[i]``.
    """
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, got {role!r}")
    if isinstance(texts, str):
        raise TypeError("expected a sequence of texts, got one str")
    directory = embedding_cache_dir(cache_dir) / encoder.fingerprint
    store = _Store(directory / role, int(encoder.dim))
    keys = text_keys(texts, role, _prefix(encoder, role))
    missing: dict[bytes, int] = {}
    for i, key in enumerate(keys.tolist()):
        if key not in store.index and key not in missing:
            missing[key] = i
    if missing:
        _write_meta(directory, encoder)
        encode = encoder.encode_queries if role == 'query' else encoder.encode_passages
        rows = list(missing.values())
        from tqdm.auto import tqdm

        with tqdm(total=len(rows), desc=f'Embedding {role} texts', unit='text', disable=not show_progress) as bar:
            for start in range(0, len(rows), CHUNK_TEXTS):
                part = rows[start:start + CHUNK_TEXTS]
                vectors = np.asarray(encode([texts[i] for i in part]), dtype=np.float32)
                if vectors.shape != (len(part), store.dim):
                    raise ValueError(f"encoder returned shape {vectors.shape}, expected ({len(part)}, {store.dim})")
                store.write(keys[part], vectors)
                bar.update(len(part))
    return store.gather(keys)


def embed_pool(pool: 'Pool', encoder: 'Encoder', cache_dir: str | os.PathLike | None = None,
               show_progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Embed every query and candidate of a LAReQA pool once, through the cache.

    Parameters
    ----------
    pool : Pool
        From :func:`pyserini_hybrid.datasets.load_pool`.
    encoder : Encoder
    cache_dir : path, optional
        Embedding cache root (default ``$PYSERINI_HYBRID_CACHE/embeddings``).
    show_progress : bool

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        Query vectors aligned with ``pool.queries`` and document vectors aligned with ``pool.docs``
        (float32). Every setting of the pool is a slice of these (see :func:`dense_runs`).
    """
    d_emb = embed_texts(encoder, [d.text for d in pool.docs], 'passage', cache_dir, show_progress)
    q_emb = embed_texts(encoder, [q.text for q in pool.queries], 'query', cache_dir, show_progress)
    return q_emb, d_emb
