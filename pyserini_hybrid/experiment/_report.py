"""The experiment report: per-arm mean and spread over seeds, paired significance, a plain answer.

``report.json`` holds every number; ``report.md`` is rendered from it. Every sentence of the
answer is generated from the numbers at report time.

Significance: per-query paired tests through :func:`pyserini_hybrid.eval.compare` (randomization
test, paired t-test, bootstrap 95% interval) on each arm's *seed-averaged* per-query values (a
query's AP averaged over the arm's seeds), weighted as the paper's macro aggregate; Holm correction
across every test of a collection, every comparison under every bias correction together. A
seed-level paired t-test over the per-seed macro values (seeds paired by number) is given beside
it: with few seeds it is weak, but it shows whether a difference outgrows the seed-to-seed spread.

Reproducible: the report is a function of the committed unit files and the configuration alone (no
time stamps, no absolute paths, no machine-dependent values; every resampling seeded), so
``--report-only`` on a clean clone rewrites ``report.md``, ``report.json`` and the SVG figures byte
for byte.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

from pyserini_hybrid._io import atomic_write
from pyserini_hybrid.experiment._config import ARMS, ExperimentConfig

__all__ = ['QUESTION', 'build_experiment_report', 'render_experiment_markdown', 'write_experiment_report']

QUESTION = ('Does combining hybrid batches with instruction fine-tuning improve zero-shot cross-lingual retrieval '
            'over hybrid-batch training alone, and over instruction tuning alone?')
KINDS = ('mono', 'cross', 'multi')
_TITLE = {'mono': 'Mono mAP', 'cross': 'Cross mAP', 'multi': 'Multi mAP', 'rank_distance': 'rank distance'}
_PHRASE = {'base': 'the untrained base model', 'mono': 'X-X-mono batches alone', 'cross': 'X-Y batches alone',
           'hybrid': 'hybrid batches alone', 'instruct-only': 'instruction tuning alone',
           'hybrid+instruct': 'hybrid batches with instruction pairs mixed in',
           'instruct-then-hybrid': 'instruction tuning followed by hybrid batches',
           'hybrid+instruct-e5': 'hybrid batches with instruction pairs and E5-instruct query instructions'}
_COLLECTION_TITLE = {'xquad-r': 'XQuAD-R', 'mlqa-r': 'MLQA-R'}


# ------------------------------------------------------------------------------------------------
# numbers


def _stats(values: Sequence[float]) -> dict:
    n = len(values)
    mean = sum(values) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return {'mean': mean, 'sd': sd, 'min': min(values), 'max': max(values), 'n': n}


def _seed_average(runs: Sequence[Mapping[str, Any]]) -> dict:
    """One SettingResult per setting whose per-query values are the mean over the runs (seeds)."""
    import dataclasses

    if len(runs) == 1:
        return dict(runs[0])
    out = {}
    for dataset_id, first in runs[0].items():
        per_query = {m: {q: sum(r[dataset_id].per_query[m][q] for r in runs) / len(runs) for q in values}
                     for m, values in first.per_query.items()}
        distance = None
        if first.rank_distance is not None:
            distance = {q: sum(r[dataset_id].rank_distance[q] for r in runs) / len(runs) for q in first.rank_distance}
        out[dataset_id] = dataclasses.replace(first, per_query=per_query, rank_distance=distance,
                                              source=f'mean of {len(runs)} seeds')
    return out


def _unit_values(results: Mapping[str, Any], zero_shot: Sequence[str]) -> dict:
    from pyserini_hybrid.eval import aggregate

    out: dict[str, float | None] = {}
    for kind in KINDS:
        agg = aggregate(results, kind, 'AP')
        out[kind] = None if agg is None else agg['macro']
        if kind == 'multi' and agg is not None:
            langs = [l for l in zero_shot if l in agg['by_lang']]
            out['multi_zero_shot'] = sum(agg['by_lang'][l] for l in langs) / len(langs) if langs else None
            out['multi_by_lang'] = dict(agg['by_lang'])
    bias = aggregate(results, 'multi', 'rank_distance')
    out['rank_distance'] = None if bias is None else bias['macro']
    return out


def _better(value: str, diff: float) -> float:
    """Improvement of b over a: higher AP is better, a lower rank distance is better."""
    return -diff if value == 'rank_distance' else diff


def _seed_level(a: Mapping[int, dict], b: Mapping[int, dict], key: str) -> dict:
    seeds = sorted(s for s in set(a) & set(b) if a[s].get(key) is not None and b[s].get(key) is not None)
    diffs = [b[s][key] - a[s][key] for s in seeds]
    out: dict[str, Any] = {'seeds': seeds, 'diffs': diffs, 'p_t': None}
    if len(diffs) >= 2:
        from pyserini_hybrid.eval import paired_t_test  # eval's test: one implementation

        out['p_t'] = paired_t_test([b[s][key] for s in seeds], [a[s][key] for s in seeds])
    return out


def _portable(path: str, root: Path) -> str:
    """``path`` relative to ``root`` when inside it, else as written when relative, else its name:
    what the report may show without depending on the machine."""
    try:
        return Path(path).resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path if not os.path.isabs(path) else Path(path).name


def _ran_precisions(dones: Sequence[Mapping[str, Any] | None]) -> list[str]:
    """The encoder precisions the finished units were evaluated at (fp32 is not recorded)."""
    return sorted({(d.get('identity') or {}).get('eval_precision', 'fp32') for d in dones if d is not None})


def build_experiment_report(config: ExperimentConfig, collections: Sequence[str]) -> dict:
    """Collect every finished unit of ``config`` and compute the report (see module doc)."""
    from pyserini_hybrid.datasets import COLLECTIONS
    from pyserini_hybrid.eval import holm
    from pyserini_hybrid.experiment._runner import DONE_FILE, load_unit_results, plan, results_path

    units = plan(config)
    root = config.output_dir
    trained_langs = _trained_languages(config)
    corrections = tuple(config.evaluation.bias_corrections)
    dones = []
    for unit in units:
        done_path = unit.dir / DONE_FILE
        dones.append(json.loads(done_path.read_text(encoding='utf-8')) if done_path.is_file() else None)
    ran = _ran_precisions(dones)
    precision = ', '.join(ran) or 'none yet'
    settings = config.to_dict()
    for key in ('output', 'models'):  # where this copy lives is no part of the result
        settings.pop(key)
    report: dict[str, Any] = {
        'tool': 'pyserini_hybrid.experiment', 'experiment': config.name, 'question': QUESTION,
        'config': settings, 'config_file': _portable(config.source, Path.cwd()) if config.source else '',
        'encoder_precision': precision, 'bias_corrections': list(corrections),
        'instruction_data': _instruction_note(config),
        'protocol': {
            'metric': 'AP over the full pool (every candidate ranked, exact scoring from the score matrix); '
                      'Mono / Cross / Multi are macro averages as in the paper; rank distance = max - min rank '
                      'of a query\'s relevant sentences in the Multi ranking, macro over query languages; '
                      f'encoder precision {precision} (asked: {config.evaluation.precision})',
            'bias_corrections': 'every arm is scored from the same vectors without correction (none) and under '
                                f"each of {', '.join(corrections)}, statistics fitted per model from NTREX "
                                'training-side text (no evaluation data); shift subtracts the mean document '
                                'vector of each language, so it can change only the Multi ranking',
            'spread': 'mean, sample standard deviation, min and max over the seeds of an arm; 95% interval: '
                      'query bootstrap (clustered by question) of the seed-averaged per-query values',
            'significance': 'per-query paired randomization test (and t-test, 95% bootstrap interval) on '
                            'seed-averaged per-query values, weighted as the macro aggregate; Holm correction '
                            'across all tests of a collection (every comparison under every bias correction); '
                            'seed-level paired t-test over per-seed means beside it',
            'alpha': config.report.alpha},
        'units': [], 'collections': {}}
    finished: dict[str, dict[str, dict[str, dict[int | None, Any]]]] = {
        c: {label: {} for label in corrections} for c in collections}
    for unit, done in zip(units, dones):
        report['units'].append({
            'arm': unit.arm, 'seed': unit.seed, 'dir': _portable(str(unit.dir), root), 'finished': done is not None,
            'training': [{k: t.get(k) for k in ('steps', 'train_seconds', 'pairs_per_second')}
                         for t in (done or {}).get('training', [])],
            'eval_seconds': {c: v.get('seconds') for c, v in (done or {}).get('collections', {}).items()}})
        for collection in collections:
            if done is not None and collection in done.get('collections', {}):
                for label in corrections:
                    path = results_path(unit.dir, collection, label)
                    finished[collection][label].setdefault(unit.arm, {})[unit.seed] = load_unit_results(path)

    for collection in collections:
        if not finished[collection]['none']:
            continue
        zero_shot = [l for l in COLLECTIONS[collection] if l not in trained_langs]
        block: dict[str, Any] = {'zero_shot_languages': zero_shot, 'corrections': {}}
        rows = []
        for label in corrections:
            sub = _correction_block(config, collection, label, finished[collection][label], zero_shot)
            block['corrections'][label] = sub
            rows.extend(sub['comparisons'])
        # one family: every comparison under every correction of the collection
        for row, p in zip(rows, holm([r['p_randomization'] for r in rows])):
            row['p_holm'] = p
            improvement = _better(row['measure'], row['diff'])
            row['outcome'] = ('better' if p <= config.report.alpha and improvement > 0 else
                              'worse' if p <= config.report.alpha and improvement < 0 else 'no significant difference')
        for label, sub in block['corrections'].items():
            sub['answer'] = _answers(collection, sub, config, label)
        report['collections'][collection] = block
    primary = next((c for c in ('xquad-r', 'mlqa-r') if c in report['collections']), None)
    report['answer'] = ([s for sub in report['collections'][primary]['corrections'].values() for s in sub['answer']]
                        if primary else [])
    report['caveats'] = _caveats(config, report)
    report['figures'] = _figure_names(report) if _can_plot() else []
    return _rounded(report)


# Bootstrap intervals and other numpy reductions differ in their last bits between CPUs (SIMD width):
# 10 significant digits keep report.json, and the figures drawn from it, byte-identical on every machine.
_DIGITS = 10


def _rounded(value):
    if isinstance(value, float):
        return float(f'{value:.{_DIGITS}g}') if math.isfinite(value) else value
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    if isinstance(value, tuple):
        items = [_rounded(v) for v in value]
        return type(value)(*items) if hasattr(value, '_fields') else tuple(items)
    return value


def _correction_block(config: ExperimentConfig, collection: str, label: str,
                      arms_runs: Mapping[str, Mapping[int | None, Any]], zero_shot: Sequence[str]) -> dict:
    """Per-arm statistics and the comparisons (without Holm) of one collection under one correction."""
    from pyserini_hybrid.eval import compare
    from pyserini_hybrid.eval._significance import seed_for
    from pyserini_hybrid.eval._report import _ci

    rs = config.report
    block: dict[str, Any] = {'arms': {}, 'comparisons': []}
    values: dict[str, dict[int | None, dict]] = {}
    averaged = {arm: _seed_average(list(runs.values())) for arm, runs in arms_runs.items()}
    for arm in config.arms:
        if arm not in arms_runs:
            continue
        values[arm] = {seed: _unit_values(res, zero_shot) for seed, res in arms_runs[arm].items()}
        entry: dict[str, Any] = {'seeds': [s for s in arms_runs[arm]], 'description': ARMS[arm]}
        for key in (*KINDS, 'multi_zero_shot', 'rank_distance'):
            vals = [v[key] for v in values[arm].values() if v.get(key) is not None]
            entry[key] = dict(_stats(vals), per_seed={str(s): v[key] for s, v in values[arm].items()}) \
                if vals else None
        for kind, value in [(k, 'AP') for k in KINDS] + [('multi', 'rank_distance')]:
            key = kind if value == 'AP' else 'rank_distance'
            if entry[key] is not None:
                entry[key]['ci95'] = _ci(averaged[arm], kind, value, rs.n_bootstrap,
                                         seed_for(rs.seed, f'ci|{collection}|{label}|{arm}|{key}'))
        by_lang: dict[str, list[float]] = {}
        for v in values[arm].values():
            for lang, ap in (v.get('multi_by_lang') or {}).items():
                by_lang.setdefault(lang, []).append(ap)
        entry['multi_by_lang'] = {lang: _stats(vals) for lang, vals in by_lang.items()}
        block['arms'][arm] = entry
    for a, b in config.comparisons:
        if a not in averaged or b not in averaged:
            continue
        for kind, value in [(k, 'AP') for k in KINDS] + [('multi', 'rank_distance')]:
            # the label seeds the resampling: the same test under another correction gets its own draws
            tag = f'{collection}|{a}|{b}' if label == 'none' else f'{collection}|{label}|{a}|{b}'
            row = compare(averaged[a], averaged[b], kind, value, seed=rs.seed, n_resamples=rs.n_resamples,
                          n_bootstrap=rs.n_bootstrap, label=tag)
            if row is None:
                continue
            key = kind if value == 'AP' else 'rank_distance'
            block['comparisons'].append({'arm_a': a, 'arm_b': b, 'measure': key, 'correction': label, **row,
                                         'seed_level': _seed_level(values[a], values[b], key)})
    return block


def _caveats(config: ExperimentConfig, report: dict[str, Any]) -> list[str]:
    """What the answer does not cover, in plain words, from the configuration and the finished units."""
    b = config.budget
    base = config.base or _recipe_base(config) or 'the recipe base'
    # the seeds the trained arms actually have, not the configured list: a report on a partly run
    # experiment must not claim seeds it has not seen
    finished = sorted({len(entry['seeds']) for block in report['collections'].values()
                       for sub in block['corrections'].values()
                       for arm, entry in sub['arms'].items() if arm != 'base'})
    if finished in ([], [len(config.seeds)]):
        seeds = f"{len(config.seeds)} seeds"
    else:
        count = str(finished[0]) if len(finished) == 1 else f"{finished[0]} to {finished[-1]}"
        seeds = f"{count} of the {len(config.seeds)} configured seeds finished"
    out = [f"Budget: every trained arm had {b.max_steps} steps x {b.batch_size} pairs "
           f"({b.max_steps * b.batch_size:,} pairs) and {seeds}; a longer budget may rank the arms otherwise."]
    sources = set(config.instructions.sources)
    if sources & {'offline', 'self-instruct', 'self-instruct-seed', 'self-instruct-user', 't0'}:
        out.append('Instruction data: an English-only offline stand-in (self-instruct and T0/P3 pairs) for '
                   'databricks-dolly-15k, which could not be obtained here; Dolly itself (also English) may behave '
                   'differently.')
    out.append(f"Model size: one small base encoder ({base}); larger or other encoders may respond differently "
               'to instruction tuning.')
    return out


def _recipe_base(config: ExperimentConfig) -> str | None:
    try:
        from pyserini_hybrid.experiment._runner import _base_recipe

        return _base_recipe(config).base
    except Exception:  # noqa: BLE001 - a report on finished units needs no readable recipe
        return None


def _trained_languages(config: ExperimentConfig) -> tuple[str, ...]:
    try:
        from pyserini_hybrid.experiment._runner import _base_recipe

        return tuple(_base_recipe(config).languages)
    except Exception:  # noqa: BLE001 - a report on finished units needs no readable recipe
        from pyserini_hybrid.train._data import TRAIN_LANGUAGES

        return TRAIN_LANGUAGES


def _instruction_note(config: ExperimentConfig) -> str:
    sources = list(config.instructions.sources)
    offline = {'offline', 'self-instruct', 'self-instruct-seed', 'self-instruct-user', 't0'}
    if any(s in offline for s in sources):
        note = (f"instruction data: {', '.join(sources)}, the offline stand-in for databricks-dolly-15k "
                "(self-instruct seed and user-oriented tasks, T0/P3 prompt-completion pairs; English), "
                "which is not obtainable on this machine")
    else:
        note = f"instruction data: {', '.join(sources)}"
    ins = config.instructions
    if 'hybrid+instruct' in config.arms:
        mixing = (f'a fixed share of {ins.share:g} of the batches' if ins.share is not None
                  else f'their share of the batches by size x weight {ins.weight:g}')
        note += f'; in hybrid+instruct the instruction pairs get {mixing}'
    if 'hybrid+instruct-e5' in config.arms:
        note += (f'; in hybrid+instruct-e5 they get a fixed share of {ins.e5_share:g} and every query carries the '
                 'E5-instruct task instruction of its source')
    return note


# ------------------------------------------------------------------------------------------------
# the plain-language answer


def _fmt_p(p: float) -> str:
    return f'{p:.3f}' if p >= 0.001 else f'{p:.1e}'


def _fmt(value: float, measure: str) -> str:
    return f'{value:.1f}' if measure == 'rank_distance' else f'{value:.3f}'


def _fmt_diff(value: float, measure: str) -> str:
    return f'{value:+.1f}' if measure == 'rank_distance' else f'{value:+.3f}'


def _answers(collection: str, block: Mapping[str, Any], config: ExperimentConfig, correction: str = 'none') -> list[str]:
    """One sentence per comparison of one collection under one bias correction, generated from its rows.

    The verdict looks at the zero-shot cross-lingual measures (Cross mAP, Multi mAP, rank distance):
    'Yes' when at least one is significantly better and none significantly worse (Holm-corrected,
    ``config.report.alpha``), 'No, it is worse' for the reverse, 'Mixed' for both, and 'No
    significant difference' otherwise. Mono mAP is reported beside it.
    """
    title = _COLLECTION_TITLE.get(collection, collection)
    if correction != 'none':
        title += f' with bias correction {correction}'
    out = []
    by_pair: dict[tuple[str, str], list[dict]] = {}
    for row in block['comparisons']:
        by_pair.setdefault((row['arm_a'], row['arm_b']), []).append(row)
    for (a, b), rows in by_pair.items():
        cross_lingual = [r for r in rows if r['measure'] in ('cross', 'multi', 'rank_distance')]
        better = [r for r in cross_lingual if r['outcome'] == 'better']
        worse = [r for r in cross_lingual if r['outcome'] == 'worse']
        against = f"{_PHRASE.get(a, a)} ({a})"
        if better and not worse:
            verdict, claim = 'Yes', f'{b} improves zero-shot cross-lingual retrieval over {against}'
        elif worse and not better:
            verdict, claim = 'No, it is worse', f'{b} retrieves worse across languages than {against}'
        elif better and worse:
            verdict, claim = 'Mixed', f'{b} is better than {against} on some cross-lingual measures and worse on others'
        else:
            verdict, claim = 'No significant difference', (f'{b} does not differ significantly from {against} in '
                                                            'zero-shot cross-lingual retrieval')

        def detail(r: dict) -> str:
            m = r['measure']
            return (f"{_TITLE[m]} {_fmt(r['b_value'], m)} vs {_fmt(r['a_value'], m)} ({_fmt_diff(r['diff'], m)}, "
                    f"95% CI [{_fmt(r['ci95'][0], m)}, {_fmt(r['ci95'][1], m)}], Holm p = {_fmt_p(r['p_holm'])})")

        n_a, n_b = len(block['arms'][a]['seeds']), len(block['arms'][b]['seeds'])
        sentence = f"{verdict}: on {title}, {claim}: " + '; '.join(detail(r) for r in cross_lingual) + '.'
        mono = [r for r in rows if r['measure'] == 'mono']
        if mono:
            sentence += f" Monolingual: {detail(mono[0])}, {mono[0]['outcome']}."
        agreement = []
        for r in better + worse:
            level = r['seed_level']
            if len(level['diffs']) >= 2:
                same = sum(1 for d in level['diffs'] if _better(r['measure'], d) * _better(r['measure'], r['diff']) > 0)
                agreement.append(f"{_TITLE[r['measure']]} {same} of {len(level['diffs'])}")
        sentence += (f" ({n_b} vs {n_a} seed(s); per-query paired tests on seed-averaged values, Holm-corrected, "
                     f"alpha {config.report.alpha}"
                     + (f"; seeds pointing the same way: {', '.join(agreement)}" if agreement else '') + '.)')
        out.append(sentence)
    return out


# ------------------------------------------------------------------------------------------------
# markdown


def _cell(stats: Mapping[str, Any] | None, measure: str) -> str:
    if stats is None:
        return '–'
    value = _fmt(stats['mean'], measure)
    if stats['n'] > 1:
        sd = f"{stats['sd']:.1f}" if measure == 'rank_distance' else f"{stats['sd']:.3f}"
        value += f' ± {sd}'
    return value


def render_experiment_markdown(report: Mapping[str, Any]) -> str:
    """``report.md`` from the report dict."""
    cfg = report['config']
    budget = cfg['budget']
    lines = [f"# Experiment `{report['experiment']}`", '', f"**Question.** {report['question']}", '']
    if report['answer']:
        lines += ['**Answer** (generated from the numbers below):', '']
        lines += [f'- {s}' for s in report['answer']]
        lines.append('')
    else:
        lines += ['**Answer:** not yet: no comparison has results on both sides.', '']
    lines += ['## Set-up', '',
              f"- config: `{report['config_file']}`; training recipe `{cfg['recipe']}`, base "
              f"`{cfg['base'] or '(the recipe base)'}`",
              f"- budget per trained arm: {budget['max_steps']} steps x batch {budget['batch_size']}"
              f"{'' if budget['lr'] is None else ', lr ' + str(budget['lr'])}; seeds {', '.join(map(str, cfg['seeds']))}"
              f"; hybrid alpha {cfg['alpha']}",
              f"- {report['instruction_data']}",
              f"- task instructions on queries (E5-instruct): {'on' if cfg['query_instructions'] else 'off'}",
              f"- metric: {report['protocol']['metric']}",
              f"- bias corrections: {report['protocol']['bias_corrections']}",
              f"- spread: {report['protocol']['spread']}",
              f"- significance: {report['protocol']['significance']}; alpha {report['protocol']['alpha']}",
              '', '| arm | what |', '|---|---|']
    lines += [f'| {arm} | {ARMS[arm]} |' for arm in cfg['arms']]
    lines.append('')
    if report.get('caveats'):
        lines += ['**Caveats.**', ''] + [f'- {c}' for c in report['caveats']] + ['']
    for collection, block in report['collections'].items():
        title = _COLLECTION_TITLE.get(collection, collection)
        zs = ', '.join(block['zero_shot_languages']) or 'none'
        for label, sub in block['corrections'].items():
            lines += _correction_markdown(report, collection, title, zs, label, sub)
    lines += ['## Units', '', '| arm | seed | finished | training steps | training s | pairs/s | evaluation s |',
              '|---|---|---|---|---|---|---|']
    for u in report['units']:
        steps = ' + '.join(str(t.get('steps')) for t in u['training']) or '–'
        secs = ' + '.join(str(t.get('train_seconds')) for t in u['training']) or '–'
        pps = ', '.join(str(t.get('pairs_per_second')) for t in u['training']) or '–'
        evs = ', '.join(f'{c} {s}' for c, s in u['eval_seconds'].items()) or '–'
        lines.append(f"| {u['arm']} | {'–' if u['seed'] is None else u['seed']} | {'yes' if u['finished'] else 'no'} | "
                     f"{steps} | {secs} | {pps} | {evs} |")
    lines.append('')
    return '\n'.join(lines)


def _cell_ci(stats: Mapping[str, Any] | None, measure: str) -> str:
    if stats is None:
        return '–'
    low, high = stats['ci95']
    return f"{_cell(stats, measure)} [{_fmt(low, measure)}, {_fmt(high, measure)}]"


def _correction_markdown(report: Mapping[str, Any], collection: str, title: str, zs: str, label: str,
                         block: Mapping[str, Any]) -> list[str]:
    heading = title if label == 'none' else f'{title}, bias correction {label}'
    lines = [f'## {heading}', '',
             'Mean ± sd over seeds (n = seeds finished) [95% interval: query bootstrap of the seed-averaged '
             f'values]. Zero-shot languages: {zs}.', '',
             f'| arm | n | Mono mAP | Cross mAP | Multi mAP | Multi mAP ({zs}) | rank distance |',
             '|---|---|---|---|---|---|---|']
    for arm, entry in block['arms'].items():
        lines.append(f"| {arm} | {len(entry['seeds'])} | {_cell_ci(entry['mono'], 'mono')} | "
                     f"{_cell_ci(entry['cross'], 'cross')} | {_cell_ci(entry['multi'], 'multi')} | "
                     f"{_cell(entry['multi_zero_shot'], 'multi')} | {_cell_ci(entry['rank_distance'], 'rank_distance')} |")
    stem = _figure_stem(collection, label)
    figures = [f for f in report.get('figures', []) if f.startswith(f'figures/{stem}-')]
    if figures:
        lines += [''] + [f'![{f}]({f})' for f in figures]
    langs = sorted({l for entry in block['arms'].values() for l in entry['multi_by_lang']})
    if langs:
        lines += ['', '### Multi mAP by query language (mean over seeds)', '',
                  '| arm | ' + ' | '.join(langs) + ' |', '|---|' + '---|' * len(langs)]
        for arm, entry in block['arms'].items():
            cells = [_fmt(entry['multi_by_lang'][l]['mean'], 'multi') if l in entry['multi_by_lang'] else '–'
                     for l in langs]
            lines.append(f"| {arm} | {' | '.join(cells)} |")
    if block['comparisons']:
        lines += ['', '### Paired comparisons (b - a)', '',
                  '| b | a | measure | b | a | b - a | 95% CI | p (rand.) | p (Holm) | seed-level diffs | '
                  'p (seeds, t) | outcome |', '|---|---|---|---|---|---|---|---|---|---|---|---|']
        for r in block['comparisons']:
            m = r['measure']
            level = r['seed_level']
            diffs = ', '.join(_fmt_diff(d, m) for d in level['diffs']) or '–'
            p_seeds = '–' if level['p_t'] is None else _fmt_p(level['p_t'])
            lines.append(f"| {r['arm_b']} | {r['arm_a']} | {_TITLE[m]} | {_fmt(r['b_value'], m)} | "
                         f"{_fmt(r['a_value'], m)} | {_fmt_diff(r['diff'], m)} | [{_fmt(r['ci95'][0], m)}, "
                         f"{_fmt(r['ci95'][1], m)}] | {_fmt_p(r['p_randomization'])} | {_fmt_p(r['p_holm'])} | "
                         f"{diffs} | {p_seeds} | {r['outcome']} |")
    if block.get('answer'):
        lines += ['', 'Answer under this correction:', ''] + [f'- {a}' for a in block['answer']]
    lines += ['', '### Per seed', '', '| arm | seed | Mono | Cross | Multi | rank distance |', '|---|---|---|---|---|---|']
    for arm, entry in block['arms'].items():
        for seed in entry['seeds']:
            key = str(seed)
            vals = [entry[k]['per_seed'][key] if entry[k] else None for k in (*KINDS, 'rank_distance')]
            cells = ['–' if v is None else _fmt(v, k) for v, k in zip(vals, (*KINDS, 'rank_distance'))]
            lines.append(f"| {arm} | {'–' if seed is None else seed} | {' | '.join(cells)} |")
    lines.append('')
    return lines


# ------------------------------------------------------------------------------------------------
# figures (SVG, deterministic)


def _can_plot() -> bool:
    import importlib.util

    return importlib.util.find_spec('matplotlib') is not None


def _figure_stem(collection: str, correction: str) -> str:
    return f"{collection}-{correction.replace(':', '_')}"


def _figure_names(report: Mapping[str, Any]) -> list[str]:
    return [f'figures/{_figure_stem(c, label)}-{kind}.svg' for c, block in report['collections'].items()
            for label in block['corrections'] for kind in ('arms', 'multi-by-language')]


def _svg(fig) -> bytes:
    import io

    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    # no date, a fixed id salt and text kept as text (no font-dependent glyph paths): same report, same bytes
    fig.savefig(buffer, format='svg', metadata={'Date': None, 'Creator': None}, bbox_inches='tight')
    plt.close(fig)
    return buffer.getvalue()


def _rc():
    import matplotlib

    matplotlib.use('Agg', force=True)
    return matplotlib.rc_context({'svg.hashsalt': 'pyserini-hybrid-experiment', 'svg.fonttype': 'none',
                                  'font.family': 'DejaVu Sans'})


def plot_arms(block: Mapping[str, Any], title: str) -> bytes:
    """Grouped bars: Mono / Cross / Multi mAP of each arm (mean over seeds) with 95% intervals."""
    import matplotlib.pyplot as plt

    arms = list(block['arms'])
    with _rc():
        fig, ax = plt.subplots(figsize=(1.6 + 1.1 * len(arms), 3.6))
        width = 0.8 / len(KINDS)
        for i, kind in enumerate(KINDS):
            xs, means, errs = [], [], [[], []]
            for j, arm in enumerate(arms):
                stats = block['arms'][arm][kind]
                if stats is None:
                    continue
                xs.append(j + (i - 1) * width)
                means.append(stats['mean'])
                errs[0].append(max(0.0, stats['mean'] - stats['ci95'][0]))
                errs[1].append(max(0.0, stats['ci95'][1] - stats['mean']))
            ax.bar(xs, means, width, yerr=errs, capsize=2, label=_TITLE[kind])
        ax.set_xticks(range(len(arms)), arms, rotation=20, ha='right')
        ax.set_ylabel('mAP (mean over seeds, 95% interval)')
        ax.set_ylim(0, 1)
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=8, ncols=3, loc='upper right')
        return _svg(fig)


def plot_multi_by_language(block: Mapping[str, Any], title: str) -> bytes:
    """Multi mAP per query language, one line of points per arm (mean over seeds, sd as error bars)."""
    import matplotlib.pyplot as plt

    langs = sorted({l for entry in block['arms'].values() for l in entry['multi_by_lang']})
    with _rc():
        fig, ax = plt.subplots(figsize=(1.5 + 0.6 * len(langs), 3.6))
        n = max(1, len(block['arms']))
        for k, (arm, entry) in enumerate(block['arms'].items()):
            xs = [i + (k - (n - 1) / 2) * 0.6 / n for i, l in enumerate(langs) if l in entry['multi_by_lang']]
            stats = [entry['multi_by_lang'][l] for l in langs if l in entry['multi_by_lang']]
            ax.errorbar(xs, [s['mean'] for s in stats], yerr=[s['sd'] for s in stats], fmt='o', markersize=4,
                        capsize=2, label=arm)
        ax.set_xticks(range(len(langs)), langs)
        ax.set_xlabel('query language')
        ax.set_ylabel('Multi mAP (mean ± sd over seeds)')
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=7, ncols=2)
        return _svg(fig)


def write_experiment_report(report: Mapping[str, Any], out_dir: str | os.PathLike) -> list[Path]:
    """Write ``report.json`` and ``report.md`` into ``out_dir`` (atomically)."""
    out_dir = Path(out_dir)
    paths = []
    with atomic_write(out_dir / 'report.json') as out:
        json.dump(report, out, indent=2, default=str)
        out.write('\n')
    paths.append(out_dir / 'report.json')
    with atomic_write(out_dir / 'report.md') as out:
        out.write(render_experiment_markdown(report))
    paths.append(out_dir / 'report.md')
    if not report.get('figures'):  # matplotlib missing: the tables say it all
        return paths
    (out_dir / 'figures').mkdir(exist_ok=True)
    for collection, block in report['collections'].items():
        for label, sub in block['corrections'].items():
            title = _COLLECTION_TITLE.get(collection, collection) + ('' if label == 'none' else
                                                                     f', bias correction {label}')
            for kind, plot in (('arms', plot_arms), ('multi-by-language', plot_multi_by_language)):
                path = out_dir / 'figures' / f'{_figure_stem(collection, label)}-{kind}.svg'
                with atomic_write(path, 'wb') as out:
                    out.write(plot(sub, title))
                paths.append(path)
    return paths
