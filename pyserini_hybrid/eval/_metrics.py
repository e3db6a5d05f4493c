"""Per-setting retrieval metrics (ir_measures over pytrec_eval) and the paper's Mono/Cross/Multi aggregates.

This module is the one place where a metric value is produced from a run: per query, through
``ir_measures`` with its pytrec_eval provider (the trec_eval C code), and, for exact full-pool
scoring, from the ranks of the relevant documents (:func:`metrics_from_ranks`, same definitions).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Mapping, Sequence

import numpy as np

from pyserini_hybrid._trec import Qrels, Run
from pyserini_hybrid.datasets._collection import COLLECTION_KIND

__all__ = ['MEASURES', 'PRIMARY', 'TIE_RULE', 'MISSING_RULE', 'AGGREGATE_KINDS', 'COLLECTION_KIND',
           'COLLECTION_MEASURES', 'SettingResult', 'per_query_metrics', 'metrics_from_ranks', 'trec_eval_order',
           'aggregate_units', 'aggregate', 'question_of', 'unit_cluster']

MEASURES: tuple[str, ...] = ('AP', 'R@1', 'R@10', 'nDCG@10')
PRIMARY = 'AP'
AGGREGATE_KINDS: tuple[str, ...] = ('mono', 'cross', 'multi')
# A collection that is not LAReQA has one setting of COLLECTION_KIND (datasets.Collection): every query
# against every document; its one aggregate is the plain mean over its judged queries.
COLLECTION_MEASURES: tuple[str, ...] = ('AP', 'nDCG@10', 'R@10', 'R@100')
TIE_RULE = ('score descending, then docid descending (byte order): the order trec_eval and pytrec_eval '
            'use, whatever the rank column or line order of the run file says')
MISSING_RULE = ('a query of the setting that is absent from a run scores 0 on every measure '
                '(trec_eval -c); the count of such queries is reported per setting')


def trec_eval_order(hits: Iterable[tuple[str, float]]) -> list[tuple[str, float]]:
    """Sort ``(docid, score)`` pairs the way trec_eval ranks them: score desc, ties by docid desc.

    trec_eval ignores the rank column and re-sorts by score; its tie-break (``comp_sim_docno``,
    ``strcmp(b, a)``) puts the larger docid first. Python compares str by code point, which is
    the byte order of their UTF-8 encoding, so no encoding is needed.
    """
    return sorted(hits, key=lambda h: (h[1], h[0]), reverse=True)


def question_of(query_id: str, lang: str) -> str:
    """The SQuAD question of a LAReQA query id ``{squad_id}_{lang}`` (shared by its translations).

    Significance tests resample whole questions: a question's queries in different languages are
    not independent units.
    """
    suffix = '_' + lang
    return query_id[:-len(suffix)] if query_id.endswith(suffix) else query_id


def unit_cluster(result: 'SettingResult', query_id: str) -> str:
    """The cluster a query's unit is resampled with: its SQuAD question in LAReQA, else the query itself
    (nothing says that two queries of another collection are translations of each other)."""
    if result.kind not in AGGREGATE_KINDS:
        return query_id
    return question_of(query_id, result.query_langs[query_id])


def per_query_metrics(qrels: Qrels, run: Run, measures: Sequence[str] = MEASURES) -> dict[str, dict[str, float]]:
    """Per-query metric values through ``ir_measures`` with the pytrec_eval backend.

    Parameters
    ----------
    qrels
        ``{qid: {docid: relevance}}``: the setting's judged queries.
    run
        ``{qid: [(docid, score), ...]}``; queries not in ``qrels`` are ignored (callers check ids).
    measures
        ir_measures names, e.g. ``'AP'``, ``'R@10'``, ``'nDCG@10'``.

    Returns
    -------
    dict
        ``{measure: {qid: value}}`` holding every query of ``qrels``; a query absent from the run
        scores 0 (trec_eval ``-c``).
    """
    import ir_measures

    calc = [ir_measures.parse_measure(name) for name in measures]
    # The provider yields the very measure objects it was given: key by identity (hashing a
    # measure formats its repr, which dominated the time on 10^6 values).
    tables = {id(m): dict.fromkeys(qrels, 0.0) for m in calc}
    scored = {qid: {docid: float(score) for docid, score in hits} for qid, hits in run.items()
              if qid in qrels and hits}
    if scored:
        for metric in ir_measures.pytrec_eval.iter_calc(calc, qrels, scored):
            tables[id(metric.measure)][metric.query_id] = float(metric.value)
    return {name: tables[id(m)] for name, m in zip(measures, calc)}


def metrics_from_ranks(ranks: Sequence[int], n_relevant: int | None = None,
                       measures: Sequence[str] = MEASURES) -> dict[str, float]:
    """Binary-relevance metrics of one query from the 1-based ranks of its relevant documents.

    Same definitions as trec_eval: AP = sum over retrieved relevant docs of (i / rank_i) divided
    by the number of relevant docs; R@k = relevant docs in the top k / relevant docs; nDCG@k =
    sum over relevant docs in the top k of 1/log2(rank + 1), divided by the ideal DCG@k.

    Parameters
    ----------
    ranks
        Ranks of the relevant documents that were ranked (any order).
    n_relevant
        Number of relevant documents (default: ``len(ranks)``, i.e. all were ranked).
    """
    ordered = sorted(int(r) for r in ranks)
    n_rel = len(ordered) if n_relevant is None else n_relevant
    if n_rel <= 0:
        raise ValueError("a query needs at least one relevant document")
    out = {}
    for name in measures:
        if name == 'AP':
            out[name] = sum(i / r for i, r in enumerate(ordered, start=1)) / n_rel
        elif name.startswith('R@'):
            k = int(name[2:])
            out[name] = sum(1 for r in ordered if r <= k) / n_rel
        elif name.startswith('nDCG@'):
            k = int(name[5:])
            dcg = sum(1.0 / math.log2(r + 1) for r in ordered if r <= k)
            ideal = sum(1.0 / math.log2(i + 1) for i in range(1, min(n_rel, k) + 1))
            out[name] = dcg / ideal
        else:
            raise ValueError(f"exact mode supports AP, R@k and nDCG@k, not {name!r}")
    return out


@dataclass
class SettingResult:
    """Per-query results of one system on one setting (one dataset id).

    Attributes
    ----------
    dataset_id, kind, query_lang, doc_langs
        The setting (``kind`` is 'mono', 'cross' or 'multi'; ``query_lang`` is None for Multi).
    n_docs
        Candidates in the setting's corpus.
    depth
        Hits per query in the run (the largest); ``n_docs`` for a full ranking.
    per_query
        ``{measure: {qid: value}}`` over every query of the setting.
    query_langs
        ``{qid: language}`` for every query of the setting.
    missing_queries
        Queries of the setting absent from the run (scored 0).
    rank_distance
        Multi only: ``{qid: max rank - min rank}`` of the query's relevant documents.
    rank_distance_bounded
        Queries whose rank distance is only a lower bound (some relevant docs beyond ``depth``).
    source
        Where the numbers come from (run file path, or 'exact: ENCODER').
    full_pool
        Every query of the setting ranked every candidate (AP is the protocol's full-pool AP).
    """
    dataset_id: str
    kind: str
    query_lang: str | None
    doc_langs: tuple[str, ...]
    n_docs: int
    depth: int
    per_query: dict[str, dict[str, float]]
    query_langs: dict[str, str]
    missing_queries: int = 0
    rank_distance: dict[str, float] | None = None
    rank_distance_bounded: int = 0
    source: str = ''
    full_pool: bool = False

    @property
    def n_queries(self) -> int:
        return len(self.query_langs)

    def mean(self, measure: str = PRIMARY) -> float:
        values = self.per_query[measure]
        return float(np.mean(list(values.values())))


def aggregate_units(results: Mapping[str, SettingResult], kind: str, value: str = PRIMARY,
                    settings: Iterable[str] | None = None) -> tuple[list[tuple[str, str]], np.ndarray, np.ndarray]:
    """The query units of one aggregate, with the weights that make their weighted mean the paper's number.

    Mono and Cross: every setting counts equally (macro over settings), each query equally within
    its setting. Multi: every query language counts equally (macro over query languages), each
    query equally within its language. ``value`` is a measure name or ``'rank_distance'`` (Multi).
    :data:`COLLECTION_KIND` (a collection's one setting): every query counts equally.

    Parameters
    ----------
    results
        ``{dataset_id: SettingResult}`` of one system.
    kind
        'mono', 'cross', 'multi' or :data:`COLLECTION_KIND`.
    settings
        Restrict to these dataset ids (e.g. the settings two systems share).

    Returns
    -------
    keys, weights, values
        ``keys[i] = (dataset_id, qid)``; ``weights`` sum to 1; ``values`` aligned with ``keys``.
        Empty when the system has no setting of that kind.
    """
    if kind not in AGGREGATE_KINDS + (COLLECTION_KIND,):
        raise ValueError(f"aggregate must be one of {AGGREGATE_KINDS + (COLLECTION_KIND,)}, got {kind!r}")
    chosen = sorted(d for d, r in results.items() if r.kind == kind and (settings is None or d in settings))
    keys: list[tuple[str, str]] = []
    groups: list[str] = []
    values: list[float] = []
    for dataset_id in chosen:
        result = results[dataset_id]
        table = result.rank_distance if value == 'rank_distance' else result.per_query[value]
        if table is None:
            raise ValueError(f"{dataset_id}: no rank distance (only Multi settings have one)")
        for qid in sorted(table):
            keys.append((dataset_id, qid))
            groups.append(result.query_langs[qid] if kind == 'multi' else dataset_id)
            values.append(table[qid])
    if not keys:
        return [], np.zeros(0), np.zeros(0)
    group_ids, inverse, counts = np.unique(groups, return_inverse=True, return_counts=True)
    weights = 1.0 / (len(group_ids) * counts[inverse])
    return keys, weights, np.asarray(values, dtype=np.float64)


def aggregate(results: Mapping[str, SettingResult], kind: str, value: str = PRIMARY,
              settings: Iterable[str] | None = None) -> dict | None:
    """One aggregate of one system: macro (the paper's), micro, counts and the per-language breakdown.

    ``by_lang`` is, per query language: Mono, the language's own setting; Cross, the mean over its
    corpus languages (macro); Multi, the mean over its queries in the pooled ranking.
    Returns ``None`` when the system has no setting of that kind.
    """
    keys, weights, values = aggregate_units(results, kind, value, settings)
    if not keys:
        return None
    by_lang_units: dict[str, list[tuple[float, float]]] = {}
    for (dataset_id, qid), w, v in zip(keys, weights, values):
        # a collection's query may name no language
        by_lang_units.setdefault(results[dataset_id].query_langs[qid] or 'unknown', []).append((w, v))
    by_lang = {lang: float(sum(w * v for w, v in units) / sum(w for w, _ in units))
               for lang, units in sorted(by_lang_units.items())}
    n_settings = len({dataset_id for dataset_id, _ in keys})
    # fsum, not numpy's SIMD reductions: the same number on every CPU (reports rebuilt elsewhere match)
    return {'macro': math.fsum((weights * values).tolist()), 'micro': math.fsum(values.tolist()) / len(values),
            'n_settings': n_settings, 'n_queries': len(keys), 'by_lang': by_lang}
