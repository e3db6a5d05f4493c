"""Fusion of runs (dense + BM25): ``pyserini.fusion``'s RRF and interpolation, vectorised with numpy.

- ``rrf``: reciprocal rank fusion, score = sum over runs of 1 / (rrf_k + rank);
- ``interpolation``: score = alpha * first + (1 - alpha) * second, on the runs' raw scores, as
  ``pyserini.fusion.interpolation`` does (a document missing from a run adds 0 from it). Dense
  cosine scores and BM25 scores live on different scales, so alpha has to absorb that; RRF needs
  no tuning and is the default.

The results are those of ``pyserini.fusion`` bit for bit (the tests compare both): ranks are the
positions in score-descending, docid-ascending order; ``depth`` keeps that many hits of each input
run, ``hits`` that many fused hits; per-document sums are Kahan-compensated in input-run order as
pandas' ``groupby().sum()`` computes them; ties are broken by docid ascending. Going through
pandas ``TrecRun`` objects cost ~2 s a setting at 100 hits for 1,190 queries; this is array work.
"""
from __future__ import annotations

from operator import itemgetter
from typing import Sequence

import numpy as np

from pyserini_hybrid._trec import Run

__all__ = ['FUSION_METHODS', 'fuse_runs']

FUSION_METHODS = ('rrf', 'interpolation')


def _block_starts(sorted_keys: np.ndarray) -> np.ndarray:
    """Index of the first element of each element's block of equal keys (``sorted_keys`` sorted)."""
    n = len(sorted_keys)
    new = np.ones(n, dtype=bool)
    new[1:] = sorted_keys[1:] != sorted_keys[:-1]
    return np.maximum.accumulate(np.where(new, np.arange(n), 0))


def _unpack(run: Run) -> tuple[list[str], list[int], list[str], np.ndarray]:
    """A run's queries with hits, their hit counts, and every hit's docid and score."""
    qids = [q for q in run if run[q]]
    pairs = [hit for q in qids for hit in run[q]]
    docs = list(map(itemgetter(0), pairs))
    scores = np.fromiter(map(itemgetter(1), pairs), dtype=np.float64, count=len(pairs))
    return qids, [len(run[q]) for q in qids], docs, scores


def _flatten(unpacked, topic_code: dict[str, int], doc_code: dict[str, int]):
    """One run as arrays (topic code, doc code, score), each topic's hits in score-descending,
    docid-ascending order (``sort_hits``), with each hit's 1-based rank in its topic."""
    qids, lens, doc_ids, scores = unpacked
    topics = np.repeat(np.array([topic_code[q] for q in qids], dtype=np.int64), lens)
    docs = np.array(list(map(doc_code.__getitem__, doc_ids)), dtype=np.int64)
    # Runs usually come sorted (read_run of our files, dense_search): check in O(n) before sorting.
    same_topic = topics[1:] == topics[:-1]
    ordered = (scores[:-1] > scores[1:]) | ((scores[:-1] == scores[1:]) & (docs[:-1] < docs[1:]))
    if not np.all(ordered | ~same_topic):
        # doc codes follow docid order, so this is sort_hits' order per topic (lexsort is stable)
        order = np.lexsort((docs, -scores, topics))
        topics, docs, scores = topics[order], docs[order], scores[order]
    ranks = np.arange(len(topics), dtype=np.int64) - _block_starts(topics) + 1
    return topics, docs, scores, ranks


def _kahan_step(total: np.ndarray, compensation: np.ndarray, g: np.ndarray, v: np.ndarray) -> None:
    """Add ``v`` to groups ``g`` (each at most once) as pandas' compensated ``group_sum`` does."""
    y = v - compensation[g]
    t = total[g] + y
    c = (t - total[g]) - y
    compensation[g] = np.where(np.isnan(c), 0.0, c)   # pandas resets a NaN compensation (infinite values)
    total[g] = t


def _kahan_group_sum(groups: list[np.ndarray], values: list[np.ndarray], n_groups: int) -> np.ndarray:
    """Per-group sums of the runs' values in input order (run by run), Kahan-compensated as pandas'
    ``groupby().sum()`` computes them."""
    total = np.zeros(n_groups)
    compensation = np.zeros(n_groups)
    if all(np.bincount(g, minlength=n_groups).max(initial=0) <= 1 for g in groups):
        # A group's first value lands on (0, 0) exactly, so a run that lacks it changes nothing:
        # one step per run is the same as one step per occurrence.
        for g, v in zip(groups, values):
            _kahan_step(total, compensation, g, v)
        return total
    # A run repeats a (query, docid): one step per occurrence, in input order.
    flat_groups, flat_values = np.concatenate(groups), np.concatenate(values)
    order = np.argsort(flat_groups, kind='stable')
    occurrence = np.empty(len(flat_groups), dtype=np.int64)
    occurrence[order] = np.arange(len(flat_groups)) - _block_starts(flat_groups[order])
    for level in range(int(occurrence.max(initial=-1)) + 1):
        at = occurrence == level
        _kahan_step(total, compensation, flat_groups[at], flat_values[at])
    return total


def fuse_runs(runs: Sequence[Run], method: str = 'rrf', rrf_k: int = 60, alpha: float = 0.5,
              hits: int = 1000, depth: int | None = None) -> Run:
    """Fuse runs as ``pyserini.fusion`` does (same scores, same order, ties included).

    Parameters
    ----------
    runs : sequence of Run
        At least two runs (exactly two for interpolation: ``alpha`` weights the first).
    method : str
        ``'rrf'`` or ``'interpolation'``.
    rrf_k : int
        RRF constant (Cormack et al.: 60).
    alpha : float
        Interpolation weight of the first run, in [0, 1].
    hits : int
        Hits per query kept after fusion (``pyserini.fusion``'s ``k``).
    depth : int, optional
        Hits of each input run considered (``pyserini.fusion``'s ``depth``); default all.

    Returns
    -------
    Run
        Score descending, then docid ascending. Every query with a hit in an input run appears.
    """
    if method not in FUSION_METHODS:
        raise ValueError(f"fusion method must be one of {', '.join(FUSION_METHODS)}, got {method!r}")
    if hits <= 0:
        raise ValueError(f"hits must be positive, got {hits}")
    if depth is not None and depth <= 0:
        raise ValueError(f"depth must be positive, got {depth}")
    if len(runs) < 2:
        raise ValueError(f"fusion needs at least two runs, got {len(runs)}")
    if method == 'interpolation' and len(runs) != 2:
        raise ValueError(f"interpolation fuses exactly two runs, got {len(runs)}")
    if method == 'rrf' and rrf_k < 0:
        raise ValueError(f"rrf_k must be >= 0, got {rrf_k}")
    if method == 'interpolation' and not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")

    # Codes in sorted order: integer comparisons then give Python's str order for qids and docids.
    unpacked = [_unpack(run) for run in runs]
    topic_names = sorted(set().union(*(u[0] for u in unpacked)))
    doc_names = sorted(set().union(*(u[2] for u in unpacked)))
    topic_code = {q: i for i, q in enumerate(topic_names)}
    doc_code = {d: i for i, d in enumerate(doc_names)}
    n_docs = max(len(doc_names), 1)
    keys, values = [], []
    for index, run in enumerate(unpacked):
        topics, docs, scores, ranks = _flatten(run, topic_code, doc_code)
        if depth is not None:
            keep = ranks <= depth
            topics, docs, scores, ranks = topics[keep], docs[keep], scores[keep], ranks[keep]
        if method == 'rrf':
            values.append(1 / (int(rrf_k) + ranks))
        else:
            values.append(scores * (float(alpha) if index == 0 else 1 - float(alpha)))
        keys.append(topics * n_docs + docs)
    all_keys = np.concatenate(keys)
    if not len(all_keys):
        return {}
    unique, groups = np.unique(all_keys, return_inverse=True)
    groups = np.split(groups.ravel(), np.cumsum([len(k) for k in keys])[:-1])
    total = _kahan_group_sum(groups, values, len(unique))
    topics, docs = unique // n_docs, unique % n_docs
    # unique keys are sorted by (topic, docid); a stable sort by (topic, -score) keeps docid ascending on ties
    order = np.lexsort((-total, topics))
    topics, docs, total = topics[order], docs[order], total[order]
    keep = np.arange(len(topics)) - _block_starts(topics) < hits
    topics, docs, total = topics[keep], docs[keep], total[keep]
    bounds = np.flatnonzero(np.r_[True, topics[1:] != topics[:-1], True])
    names = list(map(doc_names.__getitem__, docs.tolist()))
    scores = total.tolist()
    starts = bounds[:-1].tolist()
    first = topics[starts].tolist()
    return {topic_names[t]: list(zip(names[a:b], scores[a:b])) for t, a, b in zip(first, starts, bounds[1:].tolist())}
