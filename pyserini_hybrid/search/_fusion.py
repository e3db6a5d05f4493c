"""Fusion of runs (dense + BM25) through ``pyserini.fusion`` (pure Python, no JVM).

- ``rrf``: reciprocal rank fusion, score = sum over runs of 1 / (rrf_k + rank);
- ``interpolation``: score = alpha * first + (1 - alpha) * second, on the runs' raw scores, as
  ``pyserini.fusion.interpolation`` does (a document missing from a run adds 0 from it). Dense
  cosine scores and BM25 scores live on different scales, so alpha has to absorb that; RRF needs
  no tuning and is the default.
"""
from __future__ import annotations

from typing import Sequence

from pyserini_hybrid._trec import Run, sort_hits

__all__ = ['FUSION_METHODS', 'fuse_runs']

FUSION_METHODS = ('rrf', 'interpolation')


def _to_trec_run(run: Run):
    from pyserini.trectools import TrecRun

    rows = [(qid, 'Q0', docid, rank, score, 'pyserini_hybrid')
            for qid in sorted(run) for rank, (docid, score) in enumerate(sort_hits(run[qid]), start=1)]
    if not rows:
        return TrecRun()
    return TrecRun.from_list(rows)


def fuse_runs(runs: Sequence[Run], method: str = 'rrf', rrf_k: int = 60, alpha: float = 0.5,
              hits: int = 1000) -> Run:
    """Fuse runs with ``pyserini.fusion``.

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
        Hits per query kept after fusion.

    Returns
    -------
    Run
        Score descending, then docid ascending. Queries in any input run appear in the output.
    """
    from pyserini.fusion import interpolation, reciprocal_rank_fusion

    if method not in FUSION_METHODS:
        raise ValueError(f"fusion method must be one of {', '.join(FUSION_METHODS)}, got {method!r}")
    if hits <= 0:
        raise ValueError(f"hits must be positive, got {hits}")
    if len(runs) < 2:
        raise ValueError(f"fusion needs at least two runs, got {len(runs)}")
    if method == 'interpolation' and len(runs) != 2:
        raise ValueError(f"interpolation fuses exactly two runs, got {len(runs)}")
    if method == 'rrf' and rrf_k < 0:
        raise ValueError(f"rrf_k must be >= 0, got {rrf_k}")
    if method == 'interpolation' and not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    trec_runs = [_to_trec_run(r) for r in runs]
    if method == 'rrf':
        fused = reciprocal_rank_fusion(trec_runs, rrf_k=int(rrf_k), k=int(hits))
    else:
        fused = interpolation(trec_runs, alpha=float(alpha), k=int(hits))
    out: Run = {}
    data = fused.run_data
    for qid, docid, score in zip(data['topic'].astype(str), data['docid'].astype(str), data['score'].astype(float)):
        out.setdefault(qid, []).append((docid, float(score)))
    return {qid: sort_hits(h)[:hits] for qid, h in out.items()}
