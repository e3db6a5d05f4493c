"""Paired significance between two systems, Holm correction, bootstrap confidence intervals.

Units, weights, clusters. A *unit* is one query of one setting, with the two systems' values
paired. Units carry *weights*: the paper's macro averages count each setting (or each query
language) equally whatever its number of queries, so every test here is on the weighted mean,
i.e. exactly the difference the report prints. Units may be grouped in *clusters* that are
resampled as a whole: in LAReQA the same SQuAD question appears in every language, so the units
of one question (its queries in each language, against each corpus) are not independent. Flipping
or resampling whole questions keeps the tests honest; a cluster of one unit is the usual per-query
test.

With per-cluster sums ``S_c = sum(w_i * d_i)`` and weights ``W_c = sum(w_i)`` (``sum W = 1``), the
statistic is ``D = sum S_c`` (the weighted mean difference):

- randomization test: each cluster's sign flips with probability 1/2 (exchangeable systems);
- paired t-test: one-sample t-test of ``S_c / mean(W)`` (mean = D); unweighted and unclustered it is
  ``scipy.stats.ttest_rel``;
- bootstrap: clusters resampled with replacement, ratio ``sum S / sum W``, percentile interval.

All randomness comes from ``numpy.random.default_rng(seed)``: the same inputs and seed give the
same p-values and intervals on every run.
"""
from __future__ import annotations

import zlib
from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np

if TYPE_CHECKING:
    from pyserini_hybrid.eval._metrics import SettingResult

__all__ = ['randomization_test', 'paired_t_test', 'bootstrap_ci', 'holm', 'compare', 'seed_for',
           'DEFAULT_RESAMPLES', 'DEFAULT_BOOTSTRAP']

DEFAULT_RESAMPLES = 10_000
DEFAULT_BOOTSTRAP = 2_000
# Random sign matrices are drawn in blocks of about this many cells (memory stays ~100 MB).
_BLOCK_CELLS = 1 << 23


def _clustered(a: Sequence[float], b: Sequence[float] | None, weights: Sequence[float] | None,
               clusters: Sequence | None) -> tuple[np.ndarray, np.ndarray]:
    """Per-cluster weighted sums of ``a - b`` (or ``a``) and per-cluster weights summing to 1."""
    x = np.asarray(a, dtype=np.float64)
    if b is not None:
        y = np.asarray(b, dtype=np.float64)
        if x.shape != y.shape:
            raise ValueError(f"paired samples differ in length: {x.shape[0]} vs {y.shape[0]}")
        x = x - y
    if x.ndim != 1 or x.size == 0:
        raise ValueError("paired samples must be non-empty 1-D sequences")
    if not np.all(np.isfinite(x)):
        raise ValueError("paired samples hold non-finite values")
    if weights is None:
        w = np.full(x.size, 1.0 / x.size)
    else:
        w = np.asarray(weights, dtype=np.float64)
        if w.shape != x.shape or np.any(w < 0) or not w.sum() > 0:
            raise ValueError("weights must be non-negative, one per unit, and not all zero")
        w = w / w.sum()
    if clusters is None:
        return w * x, w
    if len(clusters) != x.size:
        raise ValueError(f"{len(clusters)} cluster labels for {x.size} units")
    _, codes = np.unique(np.asarray(clusters), return_inverse=True)
    return np.bincount(codes, weights=w * x), np.bincount(codes, weights=w)


def randomization_test(a, b, weights: Sequence[float] | None = None, clusters: Sequence | None = None,
                       n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0):
    """Two-sided paired randomization (sign-flip) test of the weighted mean difference ``a - b``.

    Under the null hypothesis the two systems' values are exchangeable within each cluster, so
    each cluster's differences keep or flip their sign together with probability 1/2. The p-value
    counts resampled |statistic| at least as large as the observed one, ``(hits + 1) /
    (n_resamples + 1)`` (never 0, as a Monte Carlo p-value should be).

    Parameters
    ----------
    a, b
        Per-unit values of the two systems, aligned. 2-D ``[n_units, k]`` arrays test ``k`` columns
        at once with shared sign flips (equal weights, no clusters; zero padding of shorter columns
        changes nothing, a zero difference being the same with either sign).
    weights
        Per-unit weights (default equal).
    clusters
        Per-unit cluster labels (default: every unit its own cluster).
    n_resamples
        Number of random sign vectors.
    seed
        Seed of the random generator.

    Returns
    -------
    float or numpy.ndarray
        The two-sided p-value (one per column for 2-D input).
    """
    if n_resamples <= 0:
        raise ValueError(f"n_resamples must be positive, got {n_resamples}")
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if x.ndim == 2:
        if weights is not None or clusters is not None:
            raise ValueError("weights and clusters are for 1-D samples only")
        if x.shape != y.shape or x.shape[0] == 0 or not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
            raise ValueError("paired samples must have the same non-empty shape and finite values")
        d = x - y
    else:
        d = _clustered(x, y, weights, clusters)[0][:, None]
    n = d.shape[0]
    total = d.sum(axis=0)
    observed = np.abs(total)
    # float32 products are ~2x faster than float64; the tolerance absorbs their rounding so that
    # resamples equal to the observed statistic still count as "at least as large".
    d32 = d.astype(np.float32)
    tolerance = 1e-5 * np.abs(d).sum(axis=0) + 1e-15
    rng = np.random.default_rng(seed)
    block = max(1, _BLOCK_CELLS // n)
    hits = np.zeros(d.shape[1], dtype=np.int64)
    done = 0
    while done < n_resamples:
        size = min(block, n_resamples - done)
        # One random bit per cluster: 1 keeps the sign, 0 flips it; sum = 2 * sum(kept) - total.
        bits = np.unpackbits(rng.integers(0, 256, size=(size, -(-n // 8)), dtype=np.uint8), axis=1, count=n)
        kept = bits.astype(np.float32) @ d32
        stats = np.abs(2.0 * kept.astype(np.float64) - total)
        hits += np.count_nonzero(stats >= observed - tolerance, axis=0)
        done += size
    p = (hits + 1) / (n_resamples + 1)
    p[observed == 0] = 1.0
    return p if x.ndim == 2 else float(p[0])


def paired_t_test(a: Sequence[float], b: Sequence[float], weights: Sequence[float] | None = None,
                  clusters: Sequence | None = None) -> float:
    """Two-sided paired t-test of the weighted mean difference ``a - b`` over clusters.

    With no weights and no clusters this is exactly ``scipy.stats.ttest_rel(a, b)``. Returns the
    p-value (1.0 when every difference is zero or there is a single cluster).
    """
    from scipy import stats

    sums, cluster_weights = _clustered(a, b, weights, clusters)
    values = sums / cluster_weights.mean()
    if values.size < 2:  # no variance to estimate: no evidence either way
        return 1.0
    if np.all(values == values[0]):
        return 1.0 if values[0] == 0 else 0.0
    return float(stats.ttest_1samp(values, 0.0).pvalue)


def bootstrap_ci(a: Sequence[float], b: Sequence[float] | None = None, weights: Sequence[float] | None = None,
                 clusters: Sequence | None = None, level: float = 0.95, n_resamples: int = DEFAULT_BOOTSTRAP,
                 seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the weighted mean of ``a`` (or of ``a - b``), clusters resampled.

    Uses ``scipy.stats.bootstrap`` on the per-cluster (sum, weight) pairs with the ratio statistic
    ``sum S / sum W``.

    Returns
    -------
    tuple of float
        ``(low, high)``.
    """
    from scipy import stats

    if not 0 < level < 1:
        raise ValueError(f"confidence level must be in (0, 1), got {level}")
    if n_resamples <= 0:
        raise ValueError(f"n_resamples must be positive, got {n_resamples}")
    sums, cluster_weights = _clustered(a, b, weights, clusters)
    ratio = sums / cluster_weights
    if np.all(ratio == ratio[0]):
        return float(ratio[0]), float(ratio[0])

    def statistic(s, w, axis=-1):
        return s.sum(axis=axis) / w.sum(axis=axis)

    result = stats.bootstrap((sums, cluster_weights), statistic, paired=True, vectorized=True,
                             n_resamples=n_resamples, confidence_level=level, method='percentile',
                             batch=max(1, _BLOCK_CELLS // sums.size), random_state=np.random.default_rng(seed))
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def seed_for(seed: int, label: str) -> int:
    """A per-test seed derived from the user's seed and a stable label (independent of test order)."""
    return (seed * 1_000_003 + zlib.crc32(label.encode('utf-8'))) % (1 << 32)


def compare(results_a: Mapping[str, 'SettingResult'], results_b: Mapping[str, 'SettingResult'], kind: str,
            value: str = 'AP', *, seed: int = 0, n_resamples: int = DEFAULT_RESAMPLES,
            n_bootstrap: int = DEFAULT_BOOTSTRAP, label: str = '') -> dict | None:
    """Paired comparison of two systems on one aggregate: ``b - a`` over the settings both have.

    The units are the queries of every shared setting of ``kind`` (for Multi, the queries of the
    pooled ranking), weighted as the aggregate weights them
    (:func:`~pyserini_hybrid.eval.aggregate_units`) and clustered by SQuAD question (another
    collection: each query its own cluster), so the tested
    difference is the difference of the printed macro averages.

    Returns
    -------
    dict or None
        ``a_value``, ``b_value`` (macro values on the shared settings), ``diff`` (b - a), ``ci95``,
        ``p_randomization``, ``p_t``, ``n_settings``, ``n_units``, ``n_clusters``; ``None`` when no
        setting is shared.
    """
    from pyserini_hybrid.eval._metrics import aggregate_units, unit_cluster

    shared = ({d for d, r in results_a.items() if r.kind == kind}
              & {d for d, r in results_b.items() if r.kind == kind})
    if not shared:
        return None
    keys_a, weights, va = aggregate_units(results_a, kind, value, shared)
    keys_b, _, vb = aggregate_units(results_b, kind, value, shared)
    if keys_a != keys_b:
        raise ValueError(f"{kind}: the two systems were scored on different queries")
    clusters = [unit_cluster(results_a[d], qid) for d, qid in keys_a]
    tag = f'{label}|{kind}|{value}'
    return {
        'a_value': float(np.dot(weights, va)), 'b_value': float(np.dot(weights, vb)),
        'diff': float(np.dot(weights, vb - va)),
        'ci95': list(bootstrap_ci(vb, va, weights, clusters, n_resamples=n_bootstrap,
                                  seed=seed_for(seed, 'ci|' + tag))),
        'p_randomization': randomization_test(vb, va, weights, clusters, n_resamples=n_resamples,
                                              seed=seed_for(seed, 'rand|' + tag)),
        'p_t': paired_t_test(vb, va, weights, clusters),
        'n_settings': len(shared), 'n_units': len(keys_a), 'n_clusters': len(set(clusters))}


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values, in the input order.

    The i-th smallest p-value (1-based) of ``m`` is multiplied by ``m - i + 1``; adjusted values are
    made non-decreasing in that order and capped at 1. Reject where the adjusted value <= alpha.
    """
    p = np.asarray(pvalues, dtype=np.float64)
    if p.size == 0:
        return []
    if np.any(~np.isfinite(p) | (p < 0) | (p > 1)):
        raise ValueError("p-values must lie in [0, 1]")
    m = p.size
    order = np.argsort(p, kind='stable')
    adjusted = np.minimum(1.0, np.maximum.accumulate(p[order] * (m - np.arange(m))))
    out = np.empty(m)
    out[order] = adjusted
    return out.tolist()
