"""Exact full-pool scoring of a dense model: every candidate ranked, from the full score matrix.

A run file cut at ``hits`` gives AP@hits; here each query's score row over the whole setting
corpus (query vectors @ doc vectors, rounded to the 6 decimals of a run file) gives the rank of
every relevant document directly, with trec_eval's tie rule, so AP is the protocol's full-pool AP
(what trec_eval gives on a full-depth run file) and the rank distance is exact.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Iterable, Sequence

import numpy as np

from pyserini_hybrid.eval._bias import rank_distance
from pyserini_hybrid.eval._metrics import MEASURES, SettingResult, metrics_from_ranks

if TYPE_CHECKING:
    from pyserini_hybrid.datasets import Pool, Setting
    from pyserini_hybrid.encoders import BiasCorrection

__all__ = ['correction_label', 'exact_scores', 'exact_from_encoder', 'exact_with_corrections', 'relevant_ranks_matrix', 'SCORE_DECIMALS']

# Cells of the (queries x relevant x docs) comparison tensor built at once (~64 MB of booleans).
_BLOCK_CELLS = 1 << 26
# Scores are rounded as run files write them (6 decimals, like Pyserini). Besides matching what
# trec_eval sees in a full-depth run file, this restores the ties of identical vectors (repeated
# sentences), which float32 matrix products can split by an ulp depending on the row's position.
SCORE_DECIMALS = 6


def relevant_ranks_matrix(scores: np.ndarray, relevant: np.ndarray, tie_keys: np.ndarray) -> np.ndarray:
    """1-based ranks of given columns of each score row, in trec_eval's order.

    The rank of doc ``j`` in row ``i`` is 1 + the number of docs scoring higher + the number of
    docs with the same score and a larger docid (trec_eval breaks ties by docid, descending).

    Parameters
    ----------
    scores
        ``[n_queries, n_docs]`` scores.
    relevant
        ``[n_queries, k]`` column indices, ``-1`` for padding.
    tie_keys
        ``[n_docs]`` integers ordered as the docids are (a larger key = a larger docid).

    Returns
    -------
    numpy.ndarray
        ``[n_queries, k]`` ranks (0 where ``relevant`` is padding).
    """
    cols = np.maximum(relevant, 0)
    rel_scores = np.take_along_axis(scores, cols, axis=1)[:, :, None]
    rel_keys = tie_keys[cols][:, :, None]
    row_scores = scores[:, None, :]
    ahead = (row_scores > rel_scores) | ((row_scores == rel_scores) & (tie_keys[None, None, :] > rel_keys))
    ranks = 1 + ahead.sum(axis=2)
    return np.where(relevant >= 0, ranks, 0)


def _as_settings(pool: 'Pool', settings: Iterable['Setting | str'] | None) -> list['Setting']:
    from pyserini_hybrid.datasets import list_settings, parse_dataset_id

    if settings is None:
        return list_settings(pool.collection)
    return [parse_dataset_id(s) if isinstance(s, str) else s for s in settings]


def _unit_rows(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, np.finfo(np.float32).tiny)


def exact_scores(pool: 'Pool', q_emb: np.ndarray, d_emb: np.ndarray,
                 settings: Iterable['Setting | str'] | None = None, *, similarity: str = 'ip',
                 measures: Sequence[str] = MEASURES, source: str = 'exact',
                 correction: 'BiasCorrection | None' = None) -> dict[str, SettingResult]:
    """Per-query metrics and rank distances of a dense model over the full pool of each setting.

    Parameters
    ----------
    pool
        The LAReQA pool (``pyserini_hybrid.datasets.load_pool``) or any
        :class:`~pyserini_hybrid.datasets.Collection` (then pass its ``settings``).
    q_emb, d_emb
        Query vectors aligned with ``pool.queries``, doc vectors aligned with ``pool.docs``
        (what ``pyserini_hybrid.encoders._cache.embed_pool`` returns).
    settings
        Settings or dataset ids (default: every setting of the collection).
    similarity
        ``'ip'`` (inner product of the vectors as given) or ``'cosine'`` (rows L2-normalised first).
    measures
        AP, R@k, nDCG@k names.
    source
        Recorded in each result (e.g. ``'exact: me5-small-offline'``).
    correction
        Language-bias correction of the vectors; settings it cannot reorder (``shift`` over a
        one-language corpus) are scored from the uncorrected vectors, so they stay identical.

    Returns
    -------
    dict
        ``{dataset_id: SettingResult}``, each with ``depth == n_docs`` (full pool).
    """
    q_emb = np.asarray(q_emb, dtype=np.float32)
    d_emb = np.asarray(d_emb, dtype=np.float32)
    if q_emb.ndim != 2 or d_emb.ndim != 2 or q_emb.shape[1] != d_emb.shape[1]:
        raise ValueError(f"query vectors {q_emb.shape} and doc vectors {d_emb.shape} must be 2-D with the "
                         f"same dimension")
    if q_emb.shape[0] != len(pool.queries) or d_emb.shape[0] != len(pool.docs):
        raise ValueError(f"vectors do not match the {pool.collection} pool: {q_emb.shape[0]} query vectors for "
                         f"{len(pool.queries)} queries, {d_emb.shape[0]} doc vectors for {len(pool.docs)} docs")
    if not (np.all(np.isfinite(q_emb)) and np.all(np.isfinite(d_emb))):
        raise ValueError("vectors hold NaN or infinite values")
    if similarity == 'cosine':
        q_emb, d_emb = _unit_rows(q_emb), _unit_rows(d_emb)
    elif similarity != 'ip':
        raise ValueError(f"similarity must be 'ip' or 'cosine', got {similarity!r}")
    q_fix, d_fix = correction.apply_pool(pool, q_emb, d_emb) if correction is not None else (q_emb, d_emb)

    docids = [doc.doc_id for doc in pool.docs]
    order = sorted(range(len(docids)), key=docids.__getitem__)
    tie_all = np.empty(len(docids), dtype=np.int64)
    tie_all[order] = np.arange(len(docids))

    out: dict[str, SettingResult] = {}
    for setting in _as_settings(pool, settings):
        doc_idx = pool.doc_indices(setting)
        query_idx = pool.query_indices(setting)
        qrels = pool.qrels_for(setting)
        # a collection's topics may hold unjudged queries: only judged ones are scored (LAReQA: all)
        query_idx = np.asarray([i for i in query_idx if pool.queries[i].query_id in qrels], dtype=np.int64)
        column = {docids[j]: c for c, j in enumerate(doc_idx)}
        qids = [pool.queries[i].query_id for i in query_idx]
        if not qids:  # a Cross pair may share no question: nothing to score
            continue
        rel_lists = [[column[d] for d, rel in qrels[qid].items() if rel > 0] for qid in qids]
        width = max(len(r) for r in rel_lists)
        relevant = np.full((len(qids), width), -1, dtype=np.int64)
        for row, cols in enumerate(rel_lists):
            relevant[row, :len(cols)] = cols
        raw = correction is None or correction.preserves_ranking(setting.doc_langs)
        queries, docs = (q_emb, d_emb[doc_idx]) if raw else (q_fix, d_fix[doc_idx])
        tie_keys = tie_all[doc_idx]
        block = max(1, _BLOCK_CELLS // (width * len(doc_idx)))
        ranks = np.zeros_like(relevant)
        for start in range(0, len(qids), block):
            stop = start + block
            scores = np.round((queries[query_idx[start:stop]] @ docs.T).astype(np.float64), SCORE_DECIMALS)
            ranks[start:stop] = relevant_ranks_matrix(scores, relevant[start:stop], tie_keys)

        per_query = {m: {} for m in measures}
        distances: dict[str, float] = {}
        for qid, row in zip(qids, ranks):
            found = [int(r) for r in row if r > 0]
            for name, value in metrics_from_ranks(found, measures=measures).items():
                per_query[name][qid] = value
            if setting.kind == 'multi':
                distances[qid], _ = rank_distance(found, len(found), len(doc_idx))
        out[setting.dataset_id] = SettingResult(
            dataset_id=setting.dataset_id, kind=setting.kind, query_lang=setting.query_lang,
            doc_langs=tuple(setting.doc_langs), n_docs=len(doc_idx), depth=len(doc_idx), per_query=per_query,
            query_langs={pool.queries[i].query_id: pool.queries[i].lang for i in query_idx},
            rank_distance=distances if setting.kind == 'multi' else None, source=source, full_pool=True)
    return out


def correction_label(method: str, rank: int | None = None) -> str:
    """``('lsar', 8)`` -> ``'lsar:8'``, ``('shift', None)`` -> ``'shift'``: how systems are named."""
    return method if rank is None else f'{method}:{rank}'


def exact_from_encoder(pool: 'Pool', encoder: str, settings: Iterable['Setting | str'] | None = None, *,
                       batch_size: int = 32, precision: str = 'fp32', threads: int | None = None,
                       task: str | None = None, cache_dir=None, show_progress: bool = False,
                       measures: Sequence[str] = MEASURES, bias_correction: str = 'none',
                       bias_rank: int | None = None, bias_source: str = 'ntrex') -> dict[str, SettingResult]:
    """:func:`exact_scores` for an encoder name or model directory, vectors from the search cache.

    Embeds the pool once with ``pyserini_hybrid.encoders._cache.embed_pool`` (cached on disk) and scores with
    the encoder's own similarity (its registry spec). ``batch_size``, ``precision``, ``threads`` and
    ``task`` (for an instruction template) are the :class:`~pyserini_hybrid.encoders.Encoder`'s;
    ``bias_correction`` / ``bias_rank`` / ``bias_source`` choose a language-bias correction
    (:func:`~pyserini_hybrid.encoders.load_bias_correction`; statistics fitted on first use).
    """
    return exact_with_corrections(pool, encoder, [(bias_correction, bias_rank)], settings, batch_size=batch_size,
                                  precision=precision, threads=threads, task=task, cache_dir=cache_dir,
                                  show_progress=show_progress, measures=measures,
                                  bias_source=bias_source)[correction_label(bias_correction, bias_rank)]


def exact_with_corrections(pool: 'Pool', encoder: str, corrections: Sequence[tuple[str, int | None]],
                           settings: Iterable['Setting | str'] | None = None, *, batch_size: int = 32,
                           precision: str = 'fp32', threads: int | None = None, task: str | None = None,
                           cache_dir=None, show_progress: bool = False, measures: Sequence[str] = MEASURES,
                           bias_source: str = 'ntrex', log=None) -> dict[str, dict[str, SettingResult]]:
    """:func:`exact_from_encoder` under several bias corrections, the pool embedded once.

    Returns ``{label: {dataset_id: SettingResult}}`` for each ``(method, rank)`` of ``corrections``,
    labelled by :func:`correction_label` (``'shift'``, ``'lsar:8'``); each result's ``source`` names the
    correction.
    """
    from pyserini_hybrid.encoders import Encoder, load_bias_correction
    from pyserini_hybrid.encoders._cache import embed_pool

    model = Encoder(encoder, batch_size=batch_size, precision=precision, threads=threads, task=task)
    fixes = [load_bias_correction(model, method, rank=rank, source=bias_source, pool=pool, log=log)
             for method, rank in corrections]
    q_emb, d_emb = embed_pool(pool, model, cache_dir=cache_dir, show_progress=show_progress)
    # A normalising encoder already returns unit vectors: score them as given, exactly as the
    # dense runs of pyserini_hybrid.search do, so that both see the same float32 scores.
    similarity = 'cosine' if model.spec.similarity == 'cosine' and not model.spec.normalize else 'ip'
    out = {}
    for (method, rank), fix in zip(corrections, fixes):
        note = '' if method == 'none' else f', bias correction {fix.describe()}'
        out[correction_label(method, rank)] = exact_scores(pool, q_emb, d_emb, settings, similarity=similarity,
                                                           measures=measures, source=f'exact: {encoder}{note}',
                                                           correction=fix)
    return out
