"""Model selection on the NTREX validation benchmark: training-side data only, never XQuAD-R / MLQA-R.

The benchmark (:func:`pyserini_hybrid.datasets.load_validation_pool`) has LAReQA's shape: Mono,
Cross and Multi settings over 11 languages, 11 relevant documents per Multi query. Every number a
recipe or a default correction is chosen by comes from :func:`validate`.
"""
from __future__ import annotations

import os
from typing import Sequence

from pyserini_hybrid.eval._exact import correction_label, exact_with_corrections
from pyserini_hybrid.eval._metrics import AGGREGATE_KINDS, PRIMARY, aggregate

__all__ = ['validate', 'summarize', 'render_validation_table']


def summarize(results) -> dict:
    """Mono / Cross / Multi macro AP, Multi rank distance and per-language Multi AP of one system."""
    out = {kind: (aggregate(results, kind) or {}).get('macro') for kind in AGGREGATE_KINDS}
    multi = aggregate(results, 'multi')
    out['rank_distance'] = (aggregate(results, 'multi', 'rank_distance') or {}).get('macro')
    out['multi_by_lang'] = multi['by_lang'] if multi else {}
    return out


def validate(encoders: Sequence[str], corrections: Sequence[tuple[str, int | None]] = (('none', None),), *,
             precision: str = 'auto', batch_size: int = 32, threads: int | None = None, task: str | None = None,
             bias_source: str = 'ntrex', train_dir: str | os.PathLike | None = None, cache_dir=None,
             show_progress: bool = False, log=None) -> list[dict]:
    """Score encoders x corrections on the validation benchmark (exact full-pool AP).

    Returns one row per (encoder, correction): ``{'encoder', 'correction', 'rank', 'mono', 'cross',
    'multi', 'rank_distance', 'multi_by_lang', 'source'}``.
    """
    from pyserini_hybrid.datasets import load_validation_pool, validation_settings

    from pyserini_hybrid.encoders import resolve_precision

    precision = resolve_precision(precision)
    pool = load_validation_pool(train_dir)
    settings = validation_settings(pool)
    rows = []
    for encoder in encoders:
        systems = exact_with_corrections(pool, encoder, list(corrections), settings, batch_size=batch_size,
                                         precision=precision, threads=threads, task=task, cache_dir=cache_dir,
                                         show_progress=show_progress, bias_source=bias_source, log=log)
        for method, rank in corrections:
            results = systems[correction_label(method, rank)]
            rows.append({'encoder': encoder, 'correction': method, 'rank': rank, **summarize(results),
                         'source': next(iter(results.values())).source, 'precision': precision,
                         'queries': len(pool.queries), 'docs': len(pool.docs)})
    return rows


def render_validation_table(rows: Sequence[dict]) -> str:
    """A markdown table of :func:`validate` rows."""
    def f(v):
        return '–' if v is None else (f'{v:.1f}' if v > 1 else f'{v:.4f}')

    lines = ['| encoder | correction | Mono | Cross | Multi | rank distance |', '|---|---|---|---|---|---|']
    for r in rows:
        fix = r['correction'] + (f":{r['rank']}" if r['rank'] else '')
        lines.append(f"| {r['encoder']} | {fix} | {f(r['mono'])} | {f(r['cross'])} | {f(r['multi'])} | "
                     f"{f(r['rank_distance'])} |")
    return '\n'.join(lines) + '\n'
