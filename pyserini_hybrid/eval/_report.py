"""The evaluation report: one JSON document holding every number, a markdown rendering of it, and figures.

``report.json`` is the source of truth (per-setting means, aggregates with their counts, depths,
rules, tests); ``report.md`` and the PNGs are rendered from it, so every printed number can be
checked against the JSON and, through the per-setting table, recomputed from the runs.
"""
from __future__ import annotations

import contextlib
import itertools
import json
import os
from pathlib import Path
from typing import Mapping, Sequence

from pyserini_hybrid._io import atomic_dir, atomic_write
from pyserini_hybrid.eval._bias import MISSING_RANK_RULE
from pyserini_hybrid.eval._metrics import (AGGREGATE_KINDS, COLLECTION_KIND, MEASURES, MISSING_RULE, PRIMARY,
                                           TIE_RULE, SettingResult, aggregate, aggregate_units, unit_cluster)
from pyserini_hybrid.eval._significance import (DEFAULT_BOOTSTRAP, DEFAULT_RESAMPLES, bootstrap_ci, compare, holm,
                                                randomization_test, seed_for)

__all__ = ['build_report', 'render_markdown', 'write_report', 'REPORT_FILES']

REPORT_FILES = ('report.md', 'report.json', 'aggregates.png')  # plus cross_heatmap_<system>.png
ALPHA = 0.05
_KIND_TITLE = {'mono': 'Mono', 'cross': 'Cross', 'multi': 'Multi'}
_AGGREGATE_RULES = {
    'mono': 'mean over the Mono settings (one per language) of the setting mean over its queries',
    'cross': 'mean over the Cross settings (ordered language pairs) of the setting mean over its queries',
    'multi': ('mean over query languages of the mean over that language\'s queries in the pooled (Multi) '
              'ranking'),
    'micro': 'micro = plain mean over all (setting, query) units of the aggregate; equals macro when every '
             'setting (Multi: every query language) has the same number of queries, as in XQuAD-R; they '
             'differ on MLQA-R (en 1148 queries, the other languages ~500)',
}

# The same tests on a collection's one setting (no question clusters, every measure tested).
_COLLECTION_RULE = ('mean over the queries of the topics that have a relevant document in the qrels; a topic '
                    'absent from the qrels is not scored (as in trec_eval), nor is one judged with no relevant '
                    'document (trec_eval would average it in at 0; the collection table counts them)')
_COLLECTION_UNIT = 'one judged query, paired between the two systems; each query is its own cluster'
_COLLECTION_HOLM = 'Holm correction across all comparisons of the report (every system pair x measure), per test'


def _setting_row(result: SettingResult, measures: Sequence[str]) -> dict:
    row = {'kind': result.kind, 'query_lang': result.query_lang, 'doc_langs': list(result.doc_langs),
           'n_queries': result.n_queries, 'n_docs': result.n_docs, 'depth': result.depth,
           'full_pool': result.full_pool, 'missing_queries': result.missing_queries, 'source': result.source}
    row.update({m: result.mean(m) for m in measures})
    if result.rank_distance is not None:
        row['rank_distance'] = sum(result.rank_distance.values()) / len(result.rank_distance)
        row['rank_distance_lower_bounds'] = result.rank_distance_bounded
    return row


def _depth_summary(results: Mapping[str, SettingResult]) -> dict:
    depths = [r.depth for r in results.values()]
    full = [d for d, r in results.items() if r.full_pool]
    if len(full) == len(results):
        label = 'AP (full pool: every candidate ranked)'
    else:
        label = (f'AP@{max(depths)} (at most {max(depths)} hits per query; every candidate ranked in '
                 f'{len(full)}/{len(results)} settings)')
    return {'min': min(depths), 'max': max(depths), 'full_pool_settings': len(full), 'n_settings': len(results),
            'label': label}


def _clusters(results: Mapping[str, SettingResult], keys: Sequence[tuple[str, str]]) -> list[str]:
    return [unit_cluster(results[d], qid) for d, qid in keys]


def _ci(results: Mapping[str, SettingResult], kind: str, value: str, n_bootstrap: int, seed: int) -> list[float]:
    keys, weights, values = aggregate_units(results, kind, value)
    return list(bootstrap_ci(values, weights=weights, clusters=_clusters(results, keys), n_resamples=n_bootstrap,
                             seed=seed))


def _system_block(results: Mapping[str, SettingResult], measures: Sequence[str], *, seed: int, name: str,
                  n_bootstrap: int, kinds: Sequence[str] = AGGREGATE_KINDS) -> dict:
    aggregates: dict[str, dict] = {}
    for measure in measures:
        aggregates[measure] = {}
        for kind in kinds:
            agg = aggregate(results, kind, measure)
            if agg is None:
                continue
            if measure == PRIMARY:
                agg['ci95'] = _ci(results, kind, measure, n_bootstrap, seed_for(seed, f'ci|{name}|{kind}|{measure}'))
            aggregates[measure][kind] = agg
    block = {'depth': _depth_summary(results), 'aggregates': aggregates,
             'settings': {d: _setting_row(results[d], measures) for d in _ordered(results)}}
    bias = aggregate(results, 'multi', 'rank_distance')
    if bias is not None:
        bias['ci95'] = _ci(results, 'multi', 'rank_distance', n_bootstrap,
                           seed_for(seed, f'ci|{name}|multi|rank_distance'))
        multi = next(r for r in results.values() if r.kind == 'multi')
        bias['lower_bound_queries'] = multi.rank_distance_bounded
        bias['exact'] = multi.rank_distance_bounded == 0
        block['rank_distance'] = bias
    return block


def _ordered(results: Mapping[str, SettingResult]) -> list[str]:
    order = {'mono': 0, 'cross': 1, 'multi': 2}
    return sorted(results, key=lambda d: (order.get(results[d].kind, 3), d))


def _setting_tests(results_a: Mapping[str, SettingResult], results_b: Mapping[str, SettingResult], label: str, *,
                   seed: int, n_resamples: int) -> dict:
    """Per-setting randomization tests of AP (b - a), Holm-corrected across the settings compared.

    Mono and Cross settings are tested together with shared sign flips (columns zero-padded to the
    largest setting), the Multi setting on its own with questions as clusters.
    """
    import numpy as np

    shared = [d for d in _ordered(results_a) if d in results_b]
    diffs: dict[str, np.ndarray] = {}
    for dataset_id in shared:
        qa, qb = results_a[dataset_id].per_query[PRIMARY], results_b[dataset_id].per_query[PRIMARY]
        qids = sorted(qa)
        if sorted(qb) != qids:
            raise ValueError(f"{dataset_id}: the two systems were scored on different queries")
        diffs[dataset_id] = np.array([qb[q] - qa[q] for q in qids])
    pvalues: dict[str, float] = {}
    for group in ([d for d in shared if results_a[d].kind != 'multi'], [d for d in shared
                                                                        if results_a[d].kind == 'multi']):
        if not group:
            continue
        if results_a[group[0]].kind == 'multi':
            # One pooled ranking: a question's queries in every language form one cluster.
            dataset_id = group[0]
            qids = sorted(results_a[dataset_id].per_query[PRIMARY])
            clusters = _clusters(results_a, [(dataset_id, q) for q in qids])
            pvalues[dataset_id] = randomization_test(diffs[dataset_id], np.zeros(len(qids)), clusters=clusters,
                                                     n_resamples=n_resamples,
                                                     seed=seed_for(seed, f'rand|{label}|{dataset_id}'))
            continue
        # Mono/Cross: one query per question in a setting; all settings share the sign flips.
        matrix = np.zeros((max(diffs[d].size for d in group), len(group)))
        for column, dataset_id in enumerate(group):
            matrix[:diffs[dataset_id].size, column] = diffs[dataset_id]
        found = randomization_test(matrix, np.zeros_like(matrix), n_resamples=n_resamples,
                                   seed=seed_for(seed, f'rand|{label}|settings'))
        pvalues.update(zip(group, found.tolist()))
    rows = {d: {'diff': float(diffs[d].mean()), 'p_randomization': pvalues[d]} for d in shared}
    for row, p in zip(rows.values(), holm([row['p_randomization'] for row in rows.values()])):
        row['p_holm'] = p
    counts = {}
    for key, sign in (('b_better', 1), ('b_worse', -1)):
        counts[key] = {kind: sum(1 for d, r in rows.items() if results_a[d].kind == kind and r['p_holm'] <= ALPHA
                                 and r['diff'] * sign > 0) for kind in AGGREGATE_KINDS}
    total = {kind: sum(1 for d in rows if results_a[d].kind == kind) for kind in AGGREGATE_KINDS}
    return {'n_settings': len(rows), **counts, 'n_by_kind': total, 'settings': rows}


def build_report(dataset_id: str, systems: Mapping[str, Mapping[str, SettingResult]], *,
                 measures: Sequence[str] = MEASURES, seed: int = 0, n_resamples: int = DEFAULT_RESAMPLES,
                 n_bootstrap: int = DEFAULT_BOOTSTRAP, setting_tests: bool = True,
                 trec_eval_checks: Sequence[dict] = (), sources: Mapping[str, str] | None = None,
                 precisions: Mapping[str, str | None] | None = None, command: str | None = None,
                 collection: Mapping | None = None) -> dict:
    """Everything the report says, as one JSON-ready dict.

    Parameters
    ----------
    dataset_id
        The collection id (``lareqa/xquad-r``) or the one setting evaluated; with ``collection``,
        the ``--dataset`` a non-LAReQA collection was given as (folder or ir_datasets id).
    systems
        ``{system name: {dataset_id: SettingResult}}``, in display order; comparisons are ``b - a``
        for every pair ``(a, b)`` with ``a`` listed first.
    seed, n_resamples, n_bootstrap
        Randomization test and bootstrap settings (deterministic for a given seed).
    setting_tests
        Also test every shared setting (Holm across settings), not only the aggregates.
    trec_eval_checks
        Results of :func:`pyserini_hybrid.eval.check_trec_eval`, recorded as given.
    sources
        ``{system: where its numbers come from}`` (run directory, ``exact: ENCODER``).
    precisions
        ``{system: encoder precision it ran at}`` ('auto' resolved: ``'fp32'``, ``'bf16'``,
        ``'int8'``) for systems encoded here (exact mode); systems read from run files have none.
    collection
        For a collection that is not LAReQA (its one setting of kind ``'all'``): what the report says
        of it, at least ``name`` (e.g. ``docs``, ``queries``, ``judged_queries``, ``topics``,
        ``qrels``). Its aggregate is the mean over the judged queries, every measure is tested, each
        query is its own cluster, each system's per-query values are kept (``per_query``), and there
        are no per-setting tests, rank distance or figures.
    """
    from pyserini_hybrid import __version__
    from pyserini_hybrid.datasets import parse_dataset_id

    if not systems:
        raise ValueError("no system to report on")
    if PRIMARY not in measures:
        raise ValueError(f"the report needs {PRIMARY} among the measures")
    collection_name = parse_dataset_id(dataset_id).collection if collection is None else collection['name']
    report = {
        'tool': 'pyserini_hybrid.eval', 'version': __version__, 'command': command,
        'dataset': dataset_id, 'collection': collection_name, 'measures': list(measures), 'primary': PRIMARY,
        'protocol': {
            'metrics': 'ir_measures with the pytrec_eval provider (trec_eval code) on run files; exact mode '
                       'computes the same definitions from the full score matrix',
            'tie_rule': TIE_RULE, 'missing_queries': MISSING_RULE, 'rank_distance': MISSING_RANK_RULE,
            'aggregates': _AGGREGATE_RULES, 'averaging': 'macro (as the paper reports); micro also given',
            'significance': {
                'unit': 'one query of one setting, paired between the two systems; units weighted as the '
                        'aggregate weights them, so the tested difference is the printed macro difference; '
                        'units of the same SQuAD question (its translations, every corpus) form one cluster '
                        'that is flipped or resampled as a whole, since they are not independent',
                'tests': 'two-sided paired randomization (sign-flip) test over clusters and paired t-test over '
                         'cluster sums',
                'ci': f'95% percentile bootstrap over clusters ({n_bootstrap} resamples)',
                'holm': 'Holm correction across all aggregate comparisons of the report (every system pair x '
                        'Mono/Cross/Multi AP and rank distance), per test; per-setting tests are corrected '
                        'across the settings of a system pair',
                'n_resamples': n_resamples, 'n_bootstrap': n_bootstrap, 'seed': seed, 'alpha': ALPHA},
        },
        'systems': {}, 'comparisons': [], 'skipped_comparisons': [], 'setting_comparisons': [],
        'trec_eval_check': list(trec_eval_checks),
    }
    kinds: Sequence[str] = AGGREGATE_KINDS
    tested = [(k, PRIMARY) for k in AGGREGATE_KINDS] + [('multi', 'rank_distance')]
    if collection is not None:
        kinds, tested, setting_tests = (COLLECTION_KIND,), [(COLLECTION_KIND, m) for m in measures], False
        report['collection_info'] = dict(collection)
        protocol = report['protocol']
        del protocol['rank_distance']
        protocol['aggregates'] = {COLLECTION_KIND: _COLLECTION_RULE}
        protocol['averaging'] = 'mean over the judged queries'
        protocol['significance'].update(unit=_COLLECTION_UNIT, holm=_COLLECTION_HOLM)
    for name, results in systems.items():
        if not results:
            raise ValueError(f"system {name!r} has no evaluated setting")
        block = _system_block(results, measures, seed=seed, name=name, n_bootstrap=n_bootstrap, kinds=kinds)
        block['source'] = (sources or {}).get(name, '')
        block['precision'] = (precisions or {}).get(name)
        if collection is not None:   # one setting: its per-query values, to check against any other tool
            block['per_query'] = next(iter(results.values())).per_query
        report['systems'][name] = block

    for a, b in itertools.combinations(list(systems), 2):
        label = f'{a}|{b}'
        for kind, value in tested:
            if value == 'rank_distance':
                multis = [next((r for r in systems[s].values() if r.kind == 'multi'), None) for s in (a, b)]
                if None in multis:
                    continue
                bounded = [s for s, r in zip((a, b), multis) if r.rank_distance_bounded]
                if bounded:
                    # A lower bound is no measurement to test a difference on.
                    report['skipped_comparisons'].append(
                        {'a': a, 'b': b, 'value': 'rank_distance',
                         'why': f"rank distance of {' and '.join(bounded)} is only a lower bound (relevant "
                                f"sentences beyond the run's depth)"})
                    continue
            row = compare(systems[a], systems[b], kind, value, seed=seed, n_resamples=n_resamples,
                          n_bootstrap=n_bootstrap, label=label)
            if row is not None:
                report['comparisons'].append({'a': a, 'b': b, 'aggregate': kind, 'value': value, **row})
        if setting_tests:
            tests = _setting_tests(systems[a], systems[b], label, seed=seed, n_resamples=n_resamples)
            report['setting_comparisons'].append({'a': a, 'b': b, **tests})
    for key in ('p_randomization', 'p_t'):
        for row, p in zip(report['comparisons'], holm([r[key] for r in report['comparisons']])):
            row[key + '_holm'] = p
    return report


# ---------------------------------------------------------------------------------------------- markdown

def _f(value: float | None, digits: int = 4) -> str:
    return '–' if value is None else f'{value:.{digits}f}'


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    out = ['| ' + ' | '.join(header) + ' |', '|' + '|'.join('---' for _ in header) + '|']
    out += ['| ' + ' | '.join(str(c) for c in row) + ' |' for row in rows]
    return out


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _p(value: float) -> str:
    if value == 0.0:
        return '< 1e-300'  # underflow of the t distribution's tail
    return f'{value:.2e}' if value < 1e-3 else f'{value:.4f}'


def _header(report: Mapping) -> list[str]:
    return [f"# Retrieval evaluation: {report['dataset']}", '',
            f"Produced by `{report['tool']}` {report['version']}"
            + (f" with `{report['command']}`" if report.get('command') else '') + '.']


def _systems_table(systems: Mapping) -> list[str]:
    rows = []
    for name, block in systems.items():
        depth = block['depth']
        rows.append([name, block['source'] or '–', block.get('precision') or '–', depth['label'],
                     f"{depth['n_settings']}"])
    return _table(['system', 'source', 'encoder precision', 'measure depth', 'settings'], rows)


def _significance_section(report: Mapping) -> list[str]:
    if not report['comparisons']:
        return []
    sig = report['protocol']['significance']
    lines = ['', f'## Significance (b − a, paired per query; Holm across the {len(report["comparisons"])} '
                 'comparisons)', '']
    rows = []
    for c in report['comparisons']:
        bias = c['value'] == 'rank_distance'
        title = _KIND_TITLE.get(c['aggregate'])   # none for a collection's one setting
        what = 'rank distance' if bias else (f"{title} {c['value']}" if title else c['value'])
        digits = 2 if bias else 4
        star = ' *' if c['p_randomization_holm'] <= sig['alpha'] else ''
        rows.append([c['a'], c['b'], what, f"{_f(c['a_value'], digits)} → {_f(c['b_value'], digits)}",
                     f"{c['diff']:+.{digits}f}{star}", f"[{c['ci95'][0]:+.{digits}f}, {c['ci95'][1]:+.{digits}f}]",
                     _p(c['p_randomization']), _p(c['p_randomization_holm']), _p(c['p_t']), _p(c['p_t_holm']),
                     f"{c['n_units']} / {c['n_clusters']}"])
    lines += _table(['a', 'b', 'aggregate' if report['protocol'].get('rank_distance') else 'measure', 'a → b', 'Δ',
                     '95% CI', 'p rand.', 'p rand. Holm', 'p t-test', 'p t Holm', 'units / clusters'], rows)
    lines += ['', f"\\* significant at α = {sig['alpha']} after Holm (randomization test, "
                  f"{sig['n_resamples']} sign flips, seed {sig['seed']}). Unit: {sig['unit']}."]
    return lines


def _trec_eval_section(report: Mapping) -> list[str]:
    if not report['trec_eval_check']:
        return []
    rows = [[c['system'], c['setting'], _f(c['trec_eval_map']), _f(c['ir_measures_map'], 6),
             f"{c['abs_diff']:.1e}", 'yes' if c['agree'] else 'NO'] for c in report['trec_eval_check']]
    return ['', '## Cross-check with trec_eval', ''] + _table(
        ['system', 'setting', 'trec_eval map', 'ir_measures AP', 'abs. difference', 'agree (≤ 1e-4)'], rows)


def _rules(protocol: Mapping, specific: Sequence[str]) -> list[str]:
    return ['', '## Rules', '',
            f"- Metrics: {protocol['metrics']}.",
            f"- Ties: {protocol['tie_rule']}.",
            f"- Missing queries: {protocol['missing_queries']}.",
            *specific,
            f"- Significance: {protocol['significance']['tests']}; {protocol['significance']['ci']}; "
            f"{protocol['significance']['holm']}.", '']


def _render_collection(report: Mapping) -> str:
    """The markdown report of a collection that is not LAReQA: one setting, every measure tested."""
    systems, measures, info = report['systems'], report['measures'], report['collection_info']
    lines = _header(report)
    lines += ['', '## Collection', '']
    lines += _table(['', ''], [[key.replace('_', ' '), '–' if value is None else str(value)]
                               for key, value in info.items()])
    lines += ['', '## Systems and depth', '']
    lines += _systems_table(systems)
    primary = report['primary']
    lines += ['', f'## Measures (mean over the judged queries; {primary} with its 95% bootstrap CI)', '']
    rows = []
    for name, block in systems.items():
        cells = [name]
        for measure in measures:
            agg = block['aggregates'][measure][COLLECTION_KIND]
            cells.append(_f(agg['macro']) + (f" [{_f(agg['ci95'][0], 3)}, {_f(agg['ci95'][1], 3)}]"
                                             if 'ci95' in agg else ''))
        cells.append(str(next(iter(block['settings'].values()))['missing_queries']))
        rows.append(cells)
    lines += _table(['system'] + list(measures) + ['queries absent from the run (scored 0)'], rows)
    lines += _significance_section(report)
    lines += _trec_eval_section(report)
    lines += _rules(report['protocol'], [f"- Queries: {report['protocol']['aggregates'][COLLECTION_KIND]}."])
    return '\n'.join(lines)


def render_markdown(report: Mapping) -> str:
    """The markdown report (every number also in ``report.json``)."""
    from pyserini_hybrid.datasets import COLLECTIONS

    if 'collection_info' in report:
        return _render_collection(report)
    systems = report['systems']
    langs = COLLECTIONS[report['collection']]
    primary = report['primary']
    lines = _header(report)
    lines += ['', '## Systems and depth', '']
    lines += _systems_table(systems)
    lines += ['', 'The protocol\'s mAP ranks every candidate of the pool. A run that ranks fewer (cut at `hits`, '
                  'or a lexical retriever that returns only documents sharing a term with the query) gives AP at '
                  'that depth, which can only be lower or equal: relevant sentences it does not rank count as not '
                  'retrieved. `--exact ENCODER` scores a dense model over the full pool.']

    lines += ['', f'## Summary ({primary}, macro averages, 95% bootstrap CI)', '']
    rows = []
    for name, block in systems.items():
        agg = block['aggregates'][primary]
        cells = [name]
        for kind in AGGREGATE_KINDS:
            a = agg.get(kind)
            cells.append('–' if a is None else f"{_f(a['macro'])} [{_f(a['ci95'][0], 3)}, {_f(a['ci95'][1], 3)}]"
                         f" ({_plural(a['n_settings'], 'setting')}, {a['n_queries']} units)")
        bias = block.get('rank_distance')
        cells.append('–' if bias is None else f"{_f(bias['macro'], 1)}" + ('' if bias['exact'] else ' (lower bound)'))
        rows.append(cells)
    lines += _table(['system', 'Mono', 'Cross', 'Multi', 'rank distance ↓'], rows)
    lines += ['', 'Units = (setting, query) pairs in the aggregate. Rank distance: mean (max rank − min rank) of a '
                  'Multi query\'s relevant sentences, macro over query languages; lower is less biased.']

    rows = []
    for name, block in systems.items():
        for measure in report['measures']:
            agg = block['aggregates'][measure]
            rows.append([name, measure] + [f"{_f(agg[k]['macro'])} / {_f(agg[k]['micro'])}" if k in agg else '–'
                                           for k in AGGREGATE_KINDS])
    lines += ['', '## All measures (macro / micro)', '']
    lines += _table(['system', 'measure', 'Mono', 'Cross', 'Multi'], rows)
    lines += ['', report['protocol']['aggregates']['micro'] + '.']

    lines += _significance_section(report)
    for skipped in report.get('skipped_comparisons', []):
        lines.append(f"- Not compared: {skipped['value'].replace('_', ' ')} of {skipped['a']} vs {skipped['b']}: "
                     f"{skipped['why']}.")
    if report['setting_comparisons']:
        n_flips = report['protocol']['significance']['n_resamples']
        most = max(s['n_settings'] for s in report['setting_comparisons'])
        if most / (n_flips + 1) > ALPHA:
            lines.append(f"- Note: with {n_flips} sign flips the smallest Holm-adjusted p over {most} settings is "
                         f"{most / (n_flips + 1):.3f} > {ALPHA}, so no setting can reach significance; use more "
                         f"resamples (--resamples).")
    for s in report['setting_comparisons']:
        parts = [f"{_KIND_TITLE[k]} {s['b_better'][k]} better / {s['b_worse'][k]} worse of {s['n_by_kind'][k]}"
                 for k in AGGREGATE_KINDS if s['n_by_kind'][k]]
        lines.append(f"- Per setting, {s['b']} vs {s['a']} ({primary}, randomization test, Holm across "
                     f"{_plural(s['n_settings'], 'setting')}): " + '; '.join(parts) + '.')

    lines += ['', f'## Per language ({primary})', '']
    lines += ['Mono: the language\'s own setting. Cross: mean over the corpus languages for that query '
              'language. Multi: mean over that language\'s queries in the pooled ranking. Rank distance: '
              'mean over that language\'s Multi queries.']
    names = list(systems)
    sections = [(f'{_KIND_TITLE[k]} {primary}', lambda b, k=k: b['aggregates'][primary].get(k), 4)
                for k in AGGREGATE_KINDS] + [('Rank distance', lambda b: b.get('rank_distance'), 1)]
    for title, pick, digits in sections:
        blocks = {n: pick(systems[n]) for n in names}
        if not any(blocks.values()):
            continue
        rows = [[lang] + [_f(blocks[n]['by_lang'].get(lang), digits) if blocks[n] else '–' for n in names]
                for lang in langs]
        rows.append(['**all (macro)**'] + [f"**{_f(blocks[n]['macro'], digits)}**" if blocks[n] else '–'
                                           for n in names])
        lines += ['', f'### {title} by query language', '']
        lines += _table(['query language'] + names, rows)

    lines += ['', '## Figures', '']
    for name in systems:
        if 'cross' in systems[name]['aggregates'][primary]:
            lines.append(f"![Cross {primary} of {name}](cross_heatmap_{_safe(name)}.png)")
    lines.append(f'![Mono/Cross/Multi {primary}](aggregates.png)')

    lines += _trec_eval_section(report)

    lines += ['', f'## Every setting ({primary}; @ = most hits ranked for a query)', '']
    ids = []
    for block in systems.values():
        ids += [d for d in block['settings'] if d not in ids]
    names = list(systems)
    rows = []
    for dataset_id in ids:
        first = next(systems[n]['settings'][dataset_id] for n in names if dataset_id in systems[n]['settings'])
        cells = [dataset_id, first['kind'], str(first['n_queries']), str(first['n_docs'])]
        for n in names:
            row = systems[n]['settings'].get(dataset_id)
            cells.append('–' if row is None else f"{_f(row[primary])} @{row['depth']}"
                         + (f" ({row['missing_queries']} missing)" if row['missing_queries'] else ''))
        rows.append(cells)
    lines += _table(['setting', 'kind', 'queries', 'docs'] + names, rows)

    protocol = report['protocol']
    lines += _rules(protocol, [f"- Rank distance with cut runs: {protocol['rank_distance']}.",
                               f"- Mono: {protocol['aggregates']['mono']}; Cross: {protocol['aggregates']['cross']}; "
                               f"Multi: {protocol['aggregates']['multi']}."])
    return '\n'.join(lines)


def _safe(name: str) -> str:
    return ''.join(c if c.isalnum() or c in '-_.' else '_' for c in name)


def write_report(report: Mapping, output_dir: str | os.PathLike) -> list[Path]:
    """Write ``report.md``, ``report.json``, ``aggregates.png`` and ``cross_heatmap_<system>.png``.

    Everything is rendered in memory first; a missing ``output_dir`` (whose parent exists) is
    created atomically with all files in it, an existing one gets each file replaced atomically.

    Returns
    -------
    list of Path
        The files written.
    """
    from pyserini_hybrid.eval._plots import plot_aggregates, plot_cross_heatmap

    files: dict[str, bytes] = {
        'report.json': (json.dumps(report, indent=1, ensure_ascii=False, allow_nan=False) + '\n').encode('utf-8'),
        'report.md': render_markdown(report).encode('utf-8'),
    }
    if 'collection_info' not in report:   # the figures are of Mono / Cross / Multi
        files['aggregates.png'] = plot_aggregates(report)
    for name, block in report['systems'].items():
        if 'cross' in block['aggregates'][report['primary']]:
            files[f'cross_heatmap_{_safe(name)}.png'] = plot_cross_heatmap(report, name)
    output_dir = Path(output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise NotADirectoryError(f"output directory is a file: {output_dir}")
    with contextlib.ExitStack() as stack:
        target = output_dir if output_dir.is_dir() else stack.enter_context(atomic_dir(output_dir))
        for filename, data in files.items():
            with atomic_write(target / filename, 'wb') as out:
                out.write(data)
    return [output_dir / f for f in files]
