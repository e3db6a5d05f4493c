"""Language bias as rank distance (KD-SPD, arXiv 2305.09025), from a Multi (pooled) ranking.

For a Multi query, take the ranks of all its relevant (parallel) sentences in the pooled ranking;
its rank distance is max rank - min rank. Average over the queries of each query language, then
macro-average over query languages (:func:`pyserini_hybrid.eval.aggregate` with
``value='rank_distance'``). Lower is less biased.

Ranks follow trec_eval's order (:func:`~pyserini_hybrid.eval.trec_eval_order`). A run cut at
``hits`` may miss relevant sentences; :data:`MISSING_RANK_RULE` says what is done then.
"""
from __future__ import annotations

from typing import Collection, Sequence

from pyserini_hybrid._trec import Qrels, Run
from pyserini_hybrid.eval._metrics import trec_eval_order

__all__ = ['MISSING_RANK_RULE', 'relevant_ranks', 'rank_distance', 'run_rank_distances']

MISSING_RANK_RULE = ('a relevant sentence absent from a query\'s ranking (run cut at hits) is given rank '
                     'n + 1, n being the number of sentences ranked for that query: the best rank it could '
                     'have. The distance is then a lower bound of the full-pool distance (min rank is exact '
                     'when one relevant sentence was ranked; max rank can only be larger), and the number '
                     'of queries with such a lower bound is reported')


def relevant_ranks(hits: Sequence[tuple[str, float]], relevant: Collection[str]) -> tuple[list[int], int]:
    """1-based ranks, in trec_eval's order, of the relevant docs present in ``hits``.

    Returns
    -------
    ranks, n_ranked
        The ranks found (ascending) and the number of docs ranked for the query.
    """
    ordered = trec_eval_order(hits)
    ranks = [rank for rank, (docid, _) in enumerate(ordered, start=1) if docid in relevant]
    return ranks, len(ordered)


def rank_distance(ranks: Sequence[int], n_relevant: int, n_ranked: int) -> tuple[float, bool]:
    """Rank distance of one query under :data:`MISSING_RANK_RULE`.

    Parameters
    ----------
    ranks
        Ranks of the relevant docs that were ranked.
    n_relevant
        Number of relevant docs of the query in the pooled corpus.
    n_ranked
        Number of docs ranked for the query.

    Returns
    -------
    distance, lower_bound
        ``max - min`` of the ranks (missing docs at ``n_ranked + 1``) and whether any was missing.
    """
    missing = n_relevant - len(ranks)
    if missing < 0:
        raise ValueError(f"{len(ranks)} ranks for {n_relevant} relevant documents")
    full = list(ranks) + [n_ranked + 1] * missing
    if not full:
        raise ValueError("a query needs at least one relevant document")
    return float(max(full) - min(full)), missing > 0


def run_rank_distances(run: Run, qrels: Qrels) -> tuple[dict[str, float], int]:
    """Rank distance of every query of ``qrels`` in a Multi run.

    Returns
    -------
    distances, n_lower_bounds
        ``{qid: distance}`` for every query of ``qrels`` (a query absent from the run has nothing
        ranked: distance 0, a lower bound), and how many distances are lower bounds.
    """
    out: dict[str, float] = {}
    bounded = 0
    for qid, judged in qrels.items():
        relevant = {docid for docid, rel in judged.items() if rel > 0}
        ranks, n_ranked = relevant_ranks(run.get(qid, []), relevant)
        out[qid], lower = rank_distance(ranks, len(relevant), n_ranked)
        bounded += lower
    return out, bounded
