"""Dense search as matrix work over cached vectors, and FAISS indexes in Pyserini's layout.

:func:`dense_runs` scores every setting of a pool by slicing one query matrix and one document
matrix (from :func:`~pyserini_hybrid.search.embed_pool`): exact inner-product search, the same
ranking as a FAISS ``IndexFlatIP`` over the setting's documents (Pyserini's ``FaissSearcher``),
without re-encoding or re-indexing anything per setting.

Ties are broken deterministically: score descending, then docid ascending (as ``write_run``),
with scores rounded to the 6 decimals a run file holds.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Iterator, Sequence

import numpy as np

from pyserini_hybrid._io import atomic_dir
from pyserini_hybrid._trec import Run

if TYPE_CHECKING:  # pragma: no cover
    from pyserini_hybrid.datasets import Pool, Setting
    from pyserini_hybrid.encoders import BiasCorrection, Encoder

__all__ = ['top_k', 'dense_search', 'dense_runs', 'iter_dense_runs', 'build_faiss_index', 'write_faiss_index']

# Query rows scored at once: bounds the score matrix to ~QUERY_BLOCK x docs float32.
QUERY_BLOCK = 1024
# Decimals of scores in TREC run files (pyserini_hybrid._trec.write_run).
SCORE_DECIMALS = 6


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top ``k`` columns of each row: score descending, then column ascending.

    Exact, including ties at the cut-off (the lowest columns win). Columns are expected in
    docid order, so column order is docid order.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        Column indices ``[rows, k']`` and their scores, ``k' = min(k, columns)``.
    """
    rows, cols = scores.shape
    k = min(int(k), cols)
    if k <= 0 or rows == 0:
        return np.zeros((rows, 0), dtype=np.int64), np.zeros((rows, 0), dtype=scores.dtype)
    if k < cols:
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    else:
        part = np.broadcast_to(np.arange(cols), (rows, cols)).copy()
    vals = np.take_along_axis(scores, part, axis=1)
    # lexsort: last key first, so score descending then column ascending.
    order = np.lexsort((part, -vals), axis=1)
    idx = np.take_along_axis(part, order, axis=1)
    vals = np.take_along_axis(vals, order, axis=1)
    if k < cols:
        # argpartition picks arbitrary members of a tie that straddles the cut-off: redo those rows.
        kth = vals[:, -1]
        tied = np.flatnonzero((scores >= kth[:, None]).sum(axis=1) > k)
        for r in tied:
            cand = np.flatnonzero(scores[r] >= kth[r])
            best = cand[np.argsort(-scores[r, cand], kind='stable')[:k]]
            idx[r], vals[r] = best, scores[r, best]
    return idx, vals


def dense_search(q_emb: np.ndarray, d_emb: np.ndarray, qids: Sequence[str], docids: Sequence[str],
                 hits: int = 1000) -> Run:
    """Exact inner-product search of ``q_emb`` against ``d_emb``.

    Parameters
    ----------
    q_emb, d_emb : numpy.ndarray
        ``[n_queries, dim]`` and ``[n_docs, dim]`` float32 (L2-normalised for cosine models).
    qids, docids : sequences of str
        Ids aligned with the rows of ``q_emb`` and ``d_emb``.
    hits : int
        Hits per query (at most ``n_docs``).
    """
    if hits <= 0:
        raise ValueError(f"hits must be positive, got {hits}")
    if len(qids) != len(q_emb) or len(docids) != len(d_emb):
        raise ValueError(f"ids and vectors differ in length: {len(qids)} qids for {len(q_emb)} query vectors, "
                         f"{len(docids)} docids for {len(d_emb)} document vectors")
    docids = np.asarray(docids, dtype=str)
    # Columns in docid order make "column ascending" mean "docid ascending".
    by_id = np.argsort(docids, kind='stable')
    sorted_ids = docids[by_id].tolist()
    docs = np.ascontiguousarray(d_emb[by_id], dtype=np.float32)
    run: Run = {}
    for start in range(0, len(qids), QUERY_BLOCK):
        block = np.ascontiguousarray(q_emb[start:start + QUERY_BLOCK], dtype=np.float32)
        # Rounded to the run file's 6 decimals before ranking: BLAS may score two identical vectors a
        # few ulps apart; rounded, they tie in the ranking as they do in the file, broken by docid.
        scores = np.round(block @ docs.T, SCORE_DECIMALS)
        idx, vals = top_k(scores, hits)
        for qid, row_idx, row_vals in zip(qids[start:start + QUERY_BLOCK], idx.tolist(), vals.tolist()):
            run[qid] = [(sorted_ids[c], v) for c, v in zip(row_idx, row_vals)]
    return run


def iter_dense_runs(pool: 'Pool', q_emb: np.ndarray, d_emb: np.ndarray, settings: Iterable['Setting | str'],
                    hits: int = 1000, correction: 'BiasCorrection | None' = None) -> Iterator[tuple[str, Run]]:
    """Like :func:`dense_runs`, one ``(dataset_id, run)`` at a time (bounded memory for many settings)."""
    from pyserini_hybrid.datasets import parse_dataset_id

    if len(q_emb) != len(pool.queries) or len(d_emb) != len(pool.docs):
        raise ValueError(f"vectors do not match the {pool.collection} pool: {len(q_emb)} query vectors for "
                         f"{len(pool.queries)} queries, {len(d_emb)} document vectors for {len(pool.docs)} docs")
    qids = [q.query_id for q in pool.queries]
    docids = [d.doc_id for d in pool.docs]
    corrected = correction.apply_pool(pool, q_emb, d_emb) if correction is not None else (q_emb, d_emb)
    for setting in settings:
        if isinstance(setting, str):
            setting = parse_dataset_id(setting)
        qi, di = pool.query_indices(setting), pool.doc_indices(setting)
        # A correction that cannot reorder this corpus (shift over one language) is skipped: rankings
        # stay bit-identical instead of differing where rounding to 6 decimals splits a near-tie.
        raw = correction is None or correction.preserves_ranking(setting.doc_langs)
        q, d = (q_emb, d_emb) if raw else corrected
        run = dense_search(q[qi], d[di], [qids[i] for i in qi], [docids[i] for i in di], hits)
        yield setting.dataset_id, run


def dense_runs(pool: 'Pool', q_emb: np.ndarray, d_emb: np.ndarray, settings: Iterable['Setting | str'],
               hits: int = 1000, correction: 'BiasCorrection | None' = None) -> dict[str, Run]:
    """Dense runs of many settings of one pool from one set of vectors.

    Each setting's queries (``pool.query_indices``) are scored against its corpus
    (``pool.doc_indices``) by exact inner product; nothing is re-encoded.

    Parameters
    ----------
    pool : Pool
    q_emb, d_emb : numpy.ndarray
        From :func:`embed_pool`: aligned with ``pool.queries`` and ``pool.docs``.
    settings : iterable of Setting or dataset id
    hits : int
        Hits per query.
    correction : BiasCorrection, optional
        Language-bias correction applied to the vectors (see
        :class:`~pyserini_hybrid.encoders.BiasCorrection`).

    Returns
    -------
    dict
        ``{dataset_id: run}``. All runs are held in memory: use :func:`iter_dense_runs` for the
        whole grid at 1000 hits (~150 M hits for XQuAD-R).
    """
    return dict(iter_dense_runs(pool, q_emb, d_emb, settings, hits, correction))


def build_faiss_index(dataset_id: str, encoder: 'Encoder', output_dir: str | os.PathLike,
                      cache_dir: str | os.PathLike | None = None, show_progress: bool = False,
                      correction: 'BiasCorrection | None' = None) -> Path:
    """A FAISS index of one setting's corpus in Pyserini's layout: ``index`` + ``docid``.

    Usable with ``pyserini.search.faiss.FaissSearcher(output_dir, HybridQueryEncoder(...))``.
    Vectors come through the embedding cache; the directory appears atomically.

    Parameters
    ----------
    dataset_id : str
        E.g. ``'lareqa/xquad-r/de'`` (the German corpus) or ``'lareqa/xquad-r'`` (the pool).
    encoder : Encoder
    output_dir : path
        The index directory to create (replaced if it exists).
    cache_dir : path, optional
        Embedding cache root.
    correction : BiasCorrection, optional
        Applied to the document vectors before indexing; recorded in ``bias.json`` beside the index
        so that queries get the same correction (``HybridQueryEncoder(..., bias_correction=...)``).
    """
    from pyserini_hybrid.datasets import load_pool, parse_dataset_id
    from pyserini_hybrid.encoders._cache import embed_texts

    setting = parse_dataset_id(dataset_id)
    pool = load_pool(setting.collection)
    docs = [pool.docs[i] for i in pool.doc_indices(setting)]
    vectors = embed_texts(encoder, [d.text for d in docs], 'passage', cache_dir, show_progress)
    if correction is not None and correction.method != 'none':
        vectors = correction.docs(vectors, [d.lang for d in docs])
    return write_faiss_index(output_dir, vectors, [d.doc_id for d in docs], correction)


def write_faiss_index(output_dir: str | os.PathLike, vectors: np.ndarray, docids: Sequence[str],
                      correction: 'BiasCorrection | dict | None' = None, index=None) -> Path:
    """Write ``vectors`` as a FAISS ``IndexFlatIP`` plus a ``docid`` file (Pyserini's layout), atomically.

    With a ``correction`` (already applied to ``vectors``; a BiasCorrection or its ``to_dict()``
    record), ``bias.json`` records it beside the index. ``index``, when given, is an empty FAISS index (HNSW, PQ, ...: see
    :func:`pyserini_hybrid.encode.make_faiss_index`) trained on and filled with ``vectors`` instead.
    """
    import faiss

    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or len(vectors) != len(docids) or not len(docids):
        raise ValueError(f"need one vector per docid: got vectors {vectors.shape} for {len(docids)} docids")
    if any(not d or any(c.isspace() for c in d) for d in docids):
        raise ValueError("docids must be non-empty and free of whitespace (one per line in the docid file)")
    if index is None:
        index = faiss.IndexFlatIP(int(vectors.shape[1]))
    if index.d != vectors.shape[1]:
        raise ValueError(f"index dimension {index.d} differs from the vectors' {vectors.shape[1]}")
    if not index.is_trained:
        index.train(vectors)
    index.add(vectors)
    output_dir = Path(output_dir)
    with atomic_dir(output_dir) as tmp:
        faiss.write_index(index, str(tmp / 'index'))
        (tmp / 'docid').write_text(''.join(f'{d}\n' for d in docids), encoding='utf-8')
        record = correction if isinstance(correction, dict) or correction is None else correction.to_dict()
        if record is not None and record.get('method') != 'none':
            (tmp / 'bias.json').write_text(json.dumps(record, indent=2) + '\n', encoding='utf-8')
    return output_dir
