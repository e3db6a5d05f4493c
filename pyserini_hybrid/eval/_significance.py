"""Paired significance between two systems over the same query units, Holm correction, bootstrap CIs.

Every test works on *paired per-unit values* (a unit is one query of one setting) with optional unit
weights. A weighted mean is how the paper's macro averages are built (each setting, or each query
language, counts equally whatever its number of queries), so the tests below test exactly the
difference that the report prints: with weights ``w`` (summing to 1) the units are rescaled to
``n * w_i * x_i``, whose plain mean is the weighted mean. With equal weights nothing changes.

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


def _scaled(a: Sequence[float], b: Sequence[float] | None, weights: Sequence[float] | None) -> np.ndarray:
    """Per-unit values (``a - b`` when ``b`` is given) rescaled so their plain mean is the weighted mean."""
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
        return x
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != x.shape or np.any(w < 0) or w.sum() <= 0:
        raise ValueError("weights must be non-negative, one per unit, and not all zero")
    return x * (w * (x.size / w.sum()))


def randomization_test(a, b, weights: Sequence[float] | None = None,
                       n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0):
    """Two-sided paired randomization (sign-flip) test of the (weighted) mean difference ``a - b``.

    Under the null hypothesis the two systems' values of a unit are exchangeable, so each unit's
    difference keeps or flips its sign with probability 1/2. The p-value counts resampled
    |mean difference| at least as large as the observed one, ``(hits + 1) / (n_resamples + 1)``
    (never 0, as a Monte Carlo p-value should be).

    Parameters
    ----------
    a, b
        Per-unit values of the two systems, aligned (same queries of the same settings). 2-D
        ``[n_units, k]`` arrays test ``k`` columns at once with shared sign flips (zero padding
        of shorter columns changes nothing: a zero difference is the same with either sign).
    weights
        Optional per-unit weights (1-D input only), e.g. macro-averaging weights; ``None`` = plain mean.
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
        if weights is not None:
            raise ValueError("weights are for 1-D samples only")
        if x.shape != y.shape or x.shape[0] == 0 or not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
            raise ValueError("paired samples must have the same non-empty shape and finite values")
        d = x - y
    else:
        d = _scaled(x, y, weights)[:, None]
    n = d.shape[0]
    total = d.sum(axis=0)
    observed = np.abs(total)
    # float32 products are ~2x faster than float64 on large Cross sets; the tolerance absorbs the
    # rounding so that resamples equal to the observed statistic still count as "at least as large".
    d32 = d.astype(np.float32)
    tolerance = 1e-5 * np.abs(d).sum(axis=0) + 1e-12
    rng = np.random.default_rng(seed)
    block = max(1, _BLOCK_CELLS // n)
    hits = np.zeros(d.shape[1], dtype=np.int64)
    done = 0
    while done < n_resamples:
        size = min(block, n_resamples - done)
        # One random bit per unit: 1 keeps the sign, 0 flips it; sum = 2 * sum(kept) - total.
        bits = np.unpackbits(rng.integers(0, 256, size=(size, -(-n // 8)), dtype=np.uint8), axis=1, count=n)
        kept = bits.astype(np.float32) @ d32
        stats = np.abs(2.0 * kept.astype(np.float64) - total)
        hits += np.count_nonzero(stats >= observed - tolerance, axis=0)
        done += size
    p = (hits + 1) / (n_resamples + 1)
    p[observed == 0] = 1.0
    return p if x.ndim == 2 else float(p[0])


def paired_t_test(a: Sequence[float], b: Sequence[float], weights: Sequence[float] | None = None) -> float:
    """Two-sided paired t-test of the (weighted) mean difference ``a - b`` (``scipy.stats.ttest_1samp``).

    With ``weights=None`` this is exactly ``scipy.stats.ttest_rel(a, b)``. Returns the p-value
    (1.0 when every difference is zero).
    """
    from scipy import stats

    d = _scaled(a, b, weights)
    if np.all(d == d[0]):
        return 1.0 if d[0] == 0 else 0.0
    if d.size < 2:
        return 1.0
    return float(stats.ttest_1samp(d, 0.0).pvalue)


def bootstrap_ci(a: Sequence[float], b: Sequence[float] | None = None, weights: Sequence[float] | None = None,
                 level: float = 0.95, n_resamples: int = DEFAULT_BOOTSTRAP, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of the (weighted) mean of ``a`` (or of ``a - b``).

    Units are resampled with replacement (``scipy.stats.bootstrap``, percentile method: BCa's
    jackknife is quadratic in the number of units, too slow for 10^5 Cross units).

    Returns
    -------
    tuple of float
        ``(low, high)``.
    """
    from scipy import stats

    if not 0 < level < 1:
        raise ValueError(f"confidence level must be in (0, 1), got {level}")
    d = _scaled(a, b, weights)
    if np.all(d == d[0]):
        return float(d[0]), float(d[0])
    batch = max(1, _BLOCK_CELLS // d.size)
    result = stats.bootstrap((d,), np.mean, n_resamples=n_resamples, confidence_level=level,
                             method='percentile', vectorized=True, batch=batch,
                             random_state=np.random.default_rng(seed))
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def seed_for(seed: int, label: str) -> int:
    """A per-test seed derived from the user's seed and a stable label (independent of test order)."""
    return (seed * 1_000_003 + zlib.crc32(label.encode('utf-8'))) % (1 << 32)


def compare(results_a: Mapping[str, 'SettingResult'], results_b: Mapping[str, 'SettingResult'], kind: str,
            value: str = 'AP', *, seed: int = 0, n_resamples: int = DEFAULT_RESAMPLES,
            n_bootstrap: int = DEFAULT_BOOTSTRAP, label: str = '') -> dict | None:
    """Paired comparison of two systems on one aggregate: ``b - a`` over the settings both have.

    The units are the queries of every shared setting of ``kind`` (for Multi, the queries of the
    pooled ranking), weighted as the aggregate weights them (:func:`~pyserini_hybrid.eval.aggregate_units`),
    so the tested difference is the difference of the printed macro averages.

    Returns
    -------
    dict or None
        ``a``, ``b`` (macro values on the shared settings), ``diff`` (b - a), ``ci95`` (bootstrap),
        ``p_randomization``, ``p_t``, ``n_settings``, ``n_units``; ``None`` when no setting is shared.
    """
    from pyserini_hybrid.eval._metrics import aggregate_units

    shared = {d for d, r in results_a.items() if r.kind == kind} & {d for d, r in results_b.items()
                                                                   if r.kind == kind}
    if not shared:
        return None
    keys_a, weights, va = aggregate_units(results_a, kind, value, shared)
    keys_b, _, vb = aggregate_units(results_b, kind, value, shared)
    if keys_a != keys_b:
        raise ValueError(f"{kind}: the two systems were scored on different queries")
    tag = f'{label}|{kind}|{value}'
    return {
        'a': float(np.dot(weights, va)), 'b': float(np.dot(weights, vb)), 'diff': float(np.dot(weights, vb - va)),
        'ci95': list(bootstrap_ci(vb, va, weights, n_resamples=n_bootstrap, seed=seed_for(seed, 'ci|' + tag))),
        'p_randomization': randomization_test(vb, va, weights, n_resamples=n_resamples,
                                              seed=seed_for(seed, 'rand|' + tag)),
        'p_t': paired_t_test(vb, va, weights),
        'n_settings': len(shared), 'n_units': len(keys_a)}


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values, in the input order.

    The i-th smallest p-value (1-based) of ``m`` is multiplied by ``m - i + 1``; adjusted values are
    made non-decreasing in that order and capped at 1. Reject where the adjusted value <= alpha.
    """
    p = np.asarray(pvalues, dtype=np.float64)
    if p.size == 0:
        return []
    if np.any((p < 0) | (p > 1) | ~np.isfinite(p)):
        raise ValueError("p-values must lie in [0, 1]")
    m = p.size
    order = np.argsort(p, kind='stable')
    adjusted = np.minimum(1.0, np.maximum.accumulate(p[order] * (m - np.arange(m))))
    out = np.empty(m)
    out[order] = adjusted
    return out.tolist()
