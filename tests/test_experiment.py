"""The experiment runner end to end: a tiny model, a few steps, a small XQuAD-R subset.

Real training (sentence-transformers trainer through ``pyserini_hybrid.train.train``), real
evaluation (``pyserini_hybrid.eval.exact_scores``) and real data from ../shared: only the sizes are
small. The XQuAD-R subset (the first paragraphs of every language file) is written at test time
into a temporary folder; nothing from ../shared is copied into the repository.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import statistics
from pathlib import Path

import numpy as np
import pytest

import pyserini_hybrid  # noqa: F401  (Java set-up first)
from conftest import build_tiny_bert
from pyserini_hybrid.encoders import ModelSpec
from pyserini_hybrid.experiment import (ARMS, DONE_FILE, ExperimentError, arm_recipes, load_config, parse_config,
                                        plan, recipe_yaml, results_path, run_experiment)
from pyserini_hybrid.experiment.__main__ import main

XQUAD_LANGS = ('ar', 'de', 'el', 'en', 'es', 'hi', 'ru', 'th', 'tr', 'vi', 'zh')
PARAGRAPHS = 2


# -- fixtures ---------------------------------------------------------------------------------------

@pytest.fixture(scope='module')
def work(tmp_path_factory, lareqa_dir) -> Path:
    """Tiny XQuAD-R subset + tiny model + training recipe, shared by the tests of this module.

    Torch runs on one thread here: a 32-dimensional model gains nothing from more, and loses much
    to thread synchronisation on a busy machine (restored afterwards).
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield _make_work(tmp_path_factory.mktemp('experiment'), lareqa_dir)
    finally:
        torch.set_num_threads(threads)


def _make_work(root: Path, lareqa_dir: Path) -> Path:
    texts = []
    for lang in XQUAD_LANGS:
        data = json.loads((lareqa_dir / 'xquad-r' / f'{lang}.json').read_text(encoding='utf-8'))
        article = dict(data['data'][0], paragraphs=data['data'][0]['paragraphs'][:PARAGRAPHS])
        out = root / 'lareqa' / 'xquad-r' / f'{lang}.json'
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({'data': [article], 'version': data.get('version', '')}), encoding='utf-8')
        for paragraph in article['paragraphs']:
            texts.append(paragraph['context'])
            texts.extend(qa['question'] for qa in paragraph['qas'])
    build_tiny_bert(root / 'tiny', texts, ModelSpec(name='tiny', model='tiny', query_prefix='query: ',
                                                    passage_prefix='passage: ', max_length=64))
    (root / 'recipe.yaml').write_text(
        f"name: tiny\nbase: {root / 'tiny' / 'model'}\nlanguages: [de, en, es, zh]\nmax_length: 32\n"
        "logging_steps: 1\nsave_steps: 1000\ndata:\n  - pawsx\nvalidation:\n  fraction: 0.0\n", encoding='utf-8')
    return root


def _config_text(work: Path, **extra: str) -> str:
    values = {
        'name': 'tiny', 'recipe': str(work / 'recipe.yaml'), 'output': str(work / 'out'),
        'models': str(work / 'models'), 'seeds': '[1, 2]',
        'arms': '[base, hybrid, instruct-only, hybrid+instruct]',
        'budget': '{max_steps: 2, batch_size: 4, lr: 5.0e-3}',
        'instructions': '{sources: [self-instruct]}',
        # fp32: the end-to-end test checks AP against an fp32 computation to 3e-6 (bf16 or int8, what
        # 'auto' picks on most CPUs, move near-tied scores by more); 'auto' has its own test below
        'evaluation': (f"{{collections: [xquad-r, mlqa-r], data_dir: {work / 'lareqa'}, verify: false, threads: 1, "
                       "precision: fp32}"),
        'report': '{n_resamples: 500, n_bootstrap: 200}',
    }
    values.update(extra)
    return ''.join(f'{k}: {v}\n' for k, v in values.items())


def _write_config(work: Path, file: str = 'exp.yaml', **extra: str) -> Path:
    path = work / file
    path.write_text(_config_text(work, **extra), encoding='utf-8')
    return path


# -- an independent Mono AP ---------------------------------------------------------------------------

def _mono_ap_bounds(model_dir: str, data_dir: Path, lang: str, eps: float = 3e-6) -> tuple[float, float]:
    """Mono AP of one language, computed here from the raw file (LAReQA rules, cosine scores).

    Two encoders of the same model agree only to float noise, so candidates scoring within
    ``eps`` of the answer may fall on either side of it: the result is the interval of AP over
    those orders (one point when there are no near-ties).
    """
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(model_dir)
    spec = json.loads((Path(model_dir) / 'pyserini_hybrid.json').read_text(encoding='utf-8'))
    data = json.loads((data_dir / 'xquad-r' / f'{lang}.json').read_text(encoding='utf-8'))
    sentences, questions, answers = [], [], []
    for paragraph in data['data'][0]['paragraphs']:
        offset = len(sentences)
        sentences.extend(paragraph['sentences'])
        for qa in paragraph['qas']:
            start = qa['answers'][0]['answer_start']
            hit = next(i for i, (s, e) in enumerate(paragraph['sentence_breaks']) if s <= start < e)
            questions.append(qa['question'])
            answers.append(offset + hit)
    q = model.encode([spec['query_prefix'] + t.strip() for t in questions], normalize_embeddings=True)
    d = model.encode([spec['passage_prefix'] + t.strip() for t in sentences], normalize_embeddings=True)
    low, high = [], []
    for row, answer in zip(q @ d.T, answers):
        ahead = int(np.sum(row > row[answer] + eps))
        near = int(np.sum(np.abs(row - row[answer]) <= eps)) - 1
        # one relevant sentence per query and language: AP = 1 / rank
        low.append(1.0 / (1 + ahead + near))
        high.append(1.0 / (1 + ahead))
    return float(np.mean(low)), float(np.mean(high))


# -- the end-to-end run -----------------------------------------------------------------------------

# hybrid+instruct trains with the instruction pairs at a fixed share of the batches (through the trainer)
SHARED = '{sources: [self-instruct], share: 0.5}'
# every unit is also scored with the document mean shift, from the same vectors
def _corrected(work: Path) -> str:
    return (f"{{collections: [xquad-r, mlqa-r], data_dir: {work / 'lareqa'}, verify: false, threads: 1, "
            "precision: fp32, bias_corrections: [none, shift]}")


@pytest.mark.slow
def test_experiment_end_to_end_resumable(work):
    config_path = _write_config(work, instructions=SHARED, evaluation=_corrected(work))
    config = load_config(config_path)
    log: list[str] = []
    report = run_experiment(config, keep_models=True, log=log.append)

    # every unit finished, MLQA-R (absent from the data folder) left out
    units = plan(config)
    assert [u.label for u in units] == ['base', 'hybrid seed 1', 'hybrid seed 2', 'instruct-only seed 1',
                                        'instruct-only seed 2', 'hybrid+instruct seed 1', 'hybrid+instruct seed 2']
    assert all((u.dir / DONE_FILE).is_file() for u in units)
    assert list(report['collections']) == ['xquad-r']
    assert list(report['collections']['xquad-r']['corrections']) == ['none', 'shift']
    block = report['collections']['xquad-r']['corrections']['none']
    shifted = report['collections']['xquad-r']['corrections']['shift']

    # each unit's training ran its budget; the two-seed arms differ (seeded runs)
    for unit in units[1:]:
        done = json.loads((unit.dir / DONE_FILE).read_text(encoding='utf-8'))
        assert [t['steps'] for t in done['training']] == [2]
        # the model lives outside the (committed) results folder, under 'models'
        model_dir = work / 'models' / unit.arm / f'seed-{unit.seed}' / 'model'
        assert done['model'] == str(model_dir) and not (unit.dir / 'model').exists()
        training = json.loads((model_dir / 'training.json').read_text(encoding='utf-8'))
        assert training['seed'] == unit.seed and training['recipe']['batch_size'] == 4
        sources = set(training['sources'])
        assert sources == {'hybrid': {'pawsx'}, 'instruct-only': {'instructions'},
                           'hybrid+instruct': {'pawsx', 'instructions'}}[unit.arm]
        if 'instructions' in sources:  # the share is hybrid+instruct's only
            share = training['sources']['instructions']['share']
            assert share == (0.5 if unit.arm == 'hybrid+instruct' else None)
            card = (model_dir / 'README.md').read_text(encoding='utf-8')
            assert ('| share 0.5 |' in card) == (unit.arm == 'hybrid+instruct')

    # every trained arm evaluated its own model, not the base: against the base arm's per-query AP
    # (3,960 queries over the 122 settings), 31-40% of the values change with two training steps
    # here, and none would if the base were evaluated again (the Mono means alone move by ~.005);
    # the bounds below check the values, this the gap, with room on both sides of 10%
    from pyserini_hybrid.experiment import load_unit_results
    base_ap = load_unit_results(results_path(units[0].dir, 'xquad-r'))
    for unit in units[1:]:
        results = load_unit_results(results_path(unit.dir, 'xquad-r'))
        assert set(results) == set(base_ap) and len(results) == 122
        pairs = [(results[s].per_query['AP'][q], ap) for s in base_ap for q, ap in base_ap[s].per_query['AP'].items()]
        changed = sum(abs(a - b) > 1e-6 for a, b in pairs) / len(pairs)
        assert changed > 0.10, (unit.label, changed)

    # per-setting Mono AP agrees with an independent computation from the raw files and the saved
    # models, and the arm's Mono mAP is the mean of its 11 Mono settings
    for unit in (units[0], units[3]):
        model = json.loads((unit.dir / DONE_FILE).read_text(encoding='utf-8'))['model']
        results = load_unit_results(results_path(unit.dir, 'xquad-r'))
        for lang in ('en', 'de', 'es'):
            low, high = _mono_ap_bounds(model, work / 'lareqa', lang)
            assert low - 1e-9 <= results[f'lareqa/xquad-r/{lang}'].mean('AP') <= high + 1e-9
            # the tiny test model has near-ties: the interval stays informative, not always a point
            assert high - low < 0.05
        mono = [results[f'lareqa/xquad-r/{lang}'].mean('AP') for lang in XQUAD_LANGS]
        assert block['arms'][unit.arm]['mono']['per_seed'][str(unit.seed)] == pytest.approx(np.mean(mono), abs=1e-9)

    # mean and spread over seeds
    for arm in ('hybrid', 'instruct-only', 'hybrid+instruct'):
        for measure in ('mono', 'cross', 'multi', 'rank_distance'):
            entry = block['arms'][arm][measure]
            values = list(entry['per_seed'].values())
            assert len(values) == 2 and entry['n'] == 2
            # the report rounds to 10 significant digits: the spread of two close seeds, recomputed
            # from the rounded values, is good to the values' rounding, not to a relative 1e-6
            rounding = 1e-9 * max(abs(v) for v in values)
            assert entry['mean'] == pytest.approx(statistics.mean(values), abs=rounding)
            assert entry['sd'] == pytest.approx(statistics.stdev(values), abs=rounding)
    assert block['arms']['base']['multi']['n'] == 1 and block['arms']['base']['multi']['sd'] == 0
    assert report['collections']['xquad-r']['zero_shot_languages'] == ['ar', 'el', 'hi', 'ru', 'th', 'tr', 'vi']
    # the 95% interval of an arm's mean holds the seed-averaged value; per-language Multi averages to Multi
    for arm, entry in block['arms'].items():
        for measure in ('mono', 'cross', 'multi', 'rank_distance'):
            low, high = entry[measure]['ci95']
            assert low - 1e-9 <= entry[measure]['mean'] <= high + 1e-9 and low < high
        langs = entry['multi_by_lang']
        assert sorted(langs) == sorted(XQUAD_LANGS)
        assert np.mean([v['mean'] for v in langs.values()]) == pytest.approx(entry['multi']['mean'], abs=1e-9)

    # the shift moves every document of a language by one vector: Mono and Cross per-query AP are
    # those of the uncorrected vectors, Multi changes (its pooled ranking mixes languages)
    for unit in units:
        plain = load_unit_results(results_path(unit.dir, 'xquad-r'))
        moved = load_unit_results(results_path(unit.dir, 'xquad-r', 'shift'))
        assert set(moved) == set(plain)
        for dataset_id, r in plain.items():
            if r.kind in ('mono', 'cross'):
                assert moved[dataset_id].per_query['AP'] == r.per_query['AP']
        multi = [(moved[d].per_query['AP'][q], ap) for d, r in plain.items() if r.kind == 'multi'
                 for q, ap in r.per_query['AP'].items()]
        assert sum(abs(a - b) > 1e-9 for a, b in multi) > 0.05 * len(multi), unit.label
        done = json.loads((unit.dir / DONE_FILE).read_text(encoding='utf-8'))
        assert set(done['collections']['xquad-r']['corrections']) == {'none', 'shift'}
    for arm in block['arms']:
        assert shifted['arms'][arm]['mono']['mean'] == pytest.approx(block['arms'][arm]['mono']['mean'], abs=1e-12)

    # comparisons: hybrid+instruct vs hybrid and vs instruct-only, four measures each, under each
    # correction, Holm-adjusted over all 16 together
    rows = block['comparisons']
    every = rows + shifted['comparisons']
    assert len(every) == 16 and {r['correction'] for r in shifted['comparisons']} == {'shift'}
    from pyserini_hybrid.eval import holm
    assert [r['p_holm'] for r in every] == pytest.approx(holm([r['p_randomization'] for r in every]), abs=1e-9)

    assert [(r['arm_a'], r['arm_b'], r['measure']) for r in rows] == [
        (a, 'hybrid+instruct', m) for a in ('hybrid', 'instruct-only')
        for m in ('mono', 'cross', 'multi', 'rank_distance')]
    for r in rows:
        assert r['p_holm'] >= r['p_randomization'] and 0 < r['p_holm'] <= 1
        # the macro of seed-averaged per-query values is the mean of the per-seed macros (linear)
        assert r['a_value'] == pytest.approx(block['arms'][r['arm_a']][r['measure']]['mean'], rel=1e-9, abs=1e-9)
        assert r['b_value'] == pytest.approx(block['arms'][r['arm_b']][r['measure']]['mean'], rel=1e-9, abs=1e-9)
        assert r['diff'] == pytest.approx(r['b_value'] - r['a_value'], abs=1e-9 * max(abs(r['a_value']), abs(r['b_value']), 1))
        assert len(r['seed_level']['diffs']) == 2
        significant = r['p_holm'] <= 0.05
        better = (r['diff'] < 0) if r['measure'] == 'rank_distance' else (r['diff'] > 0)
        assert r['outcome'] == ('no significant difference' if not significant else 'better' if better else 'worse')

    # the plain-language answer is made of the numbers, one sentence per comparison and correction
    assert len(report['answer']) == 4
    assert all('with bias correction shift' in s for s in report['answer'][2:])
    for sentence, a in zip(report['answer'], ('hybrid', 'instruct-only')):
        multi = next(r for r in rows if r['arm_a'] == a and r['measure'] == 'multi')
        assert f"Multi mAP {multi['b_value']:.3f} vs {multi['a_value']:.3f}" in sentence
        assert sentence.split(':')[0] in ('Yes', 'No, it is worse', 'Mixed', 'No significant difference')
    md = (work / 'out' / 'report.md').read_text(encoding='utf-8')
    assert '| hybrid+instruct | 2 |' in md and report['answer'][0] in md
    assert 'in hybrid+instruct the instruction pairs get a fixed share of 0.5 of the batches' in md
    assert 'encoder precision fp32 (asked: fp32)' in md and report['encoder_precision'] == 'fp32'
    assert '## XQuAD-R, bias correction shift' in md and '### Multi mAP by query language' in md
    assert 'Budget: every trained arm had 2 steps x 4 pairs (8 pairs) and 2 seeds;' in md and 'stand-in' in md and 'Model size' in md
    hybrid_mono = block['arms']['hybrid']['mono']
    assert (f"{hybrid_mono['mean']:.3f} ± {hybrid_mono['sd']:.3f} [{hybrid_mono['ci95'][0]:.3f}, "
            f"{hybrid_mono['ci95'][1]:.3f}]") in md
    assert report['figures'] == [f'figures/xquad-r-{c}-{k}.svg' for c in ('none', 'shift')
                                 for k in ('arms', 'multi-by-language')]
    for name in report['figures']:
        svg = (work / 'out' / name).read_text(encoding='utf-8')
        assert svg.startswith('<?xml') and '<svg' in svg and f'![{name}]({name})' in md
        assert 'hybrid+instruct' in svg  # text kept as text: the arm names are in the figure
    assert json.loads((work / 'out' / 'report.json').read_text(encoding='utf-8'))['answer'] == report['answer']

    # a second run trains and evaluates nothing
    stamps = {u.dir: (u.dir / DONE_FILE).stat().st_mtime_ns for u in units}
    log.clear()
    again = run_experiment(config, keep_models=True, log=log.append)
    assert all((u.dir / DONE_FILE).stat().st_mtime_ns == stamps[u.dir] for u in units)
    assert sum('done, skipped' in line for line in log) == len(units)
    assert not any('training' in line or 'evaluating' in line for line in log)
    assert again['answer'] == report['answer']

    # an unfinished unit (no marker, no model) is redone alone, seeded CPU training giving the same
    # numbers; MLQA-R files that appear later are evaluated for every finished unit without retraining
    victim = units[2]
    victim_model = work / 'models' / 'hybrid' / 'seed-2' / 'model'
    before = block['arms']['hybrid']['multi']['per_seed']['2']
    (victim.dir / DONE_FILE).unlink()
    shutil.rmtree(victim_model)
    shutil.copytree(Path(__file__).parent / 'fixtures' / 'lareqa' / 'mlqa-r', work / 'lareqa' / 'mlqa-r')
    try:
        log.clear()
        redone = run_experiment(config, keep_models=False, log=log.append)
    finally:
        shutil.rmtree(work / 'lareqa' / 'mlqa-r')
    assert [line for line in log if 'training' in line] == [
        f"[experiment] hybrid seed 2: training hybrid for 2 steps -> {victim_model}"]
    assert [line for line in log if 'evaluating on xquad-r' in line] == [
        '[experiment] hybrid seed 2: evaluating on xquad-r']
    assert sum('evaluating on mlqa-r' in line for line in log) == len(units)
    assert list(redone['collections']) == ['xquad-r', 'mlqa-r']
    assert redone['collections']['xquad-r']['corrections']['none']['arms']['hybrid']['multi']['per_seed']['2'] == \
        pytest.approx(before, abs=1e-6)
    assert not (work / 'models').exists() or not any((work / 'models').rglob('model'))  # keep_models=False

    # a changed budget is refused for finished units, naming the marker
    changed = load_config(_write_config(work, 'changed.yaml', instructions=SHARED,
                                        evaluation=_corrected(work),
                                        budget='{max_steps: 3, batch_size: 4}'))
    with pytest.raises(ExperimentError, match=r'hybrid/seed-1/done\.json: this unit was finished under another'):
        run_experiment(changed, log=log.append)
    # another precision (what another kind of CPU resolves 'auto' to) is refused with the fix spelled out
    elsewhere_path = _write_config(work, 'elsewhere.yaml', instructions=SHARED,
                                   evaluation=_corrected(work).replace('fp32', 'int8'))
    elsewhere = load_config(elsewhere_path)
    with pytest.raises(ExperimentError, match=r'evaluated at precision fp32; this machine resolves .int8. to int8: '
                                              r'set evaluation\.precision to fp32 to continue it'):
        run_experiment(elsewhere, log=log.append)
    # ... but reading the finished units there (--report-only: nothing evaluated) is fine, and gives
    # their results at the precision they were evaluated at
    assert main([str(elsewhere_path), '--report-only']) == 0
    reread = json.loads((work / 'out' / 'report.json').read_text(encoding='utf-8'))
    assert reread['collections']['xquad-r'] == json.loads(json.dumps(redone['collections']['xquad-r']))
    assert reread['encoder_precision'] == 'fp32'

    # the CLI: --report-only rewrites the report from the finished units, byte for byte: twice, and
    # from a copy of the results folder elsewhere with no model anywhere (what a clean clone has)
    assert not (work / 'models').exists() or not any((work / 'models').rglob('training.json'))
    # (the files on disk are those of the run that saw MLQA-R, whose data is gone again: rewrite first)
    shutil.rmtree(work / 'out' / 'figures')
    assert main([str(config_path), '--report-only']) == 0
    names = ['report.md', 'report.json', *report['figures']]
    first = {n: (work / 'out' / n).read_bytes() for n in names}
    os.unlink(work / 'out' / 'report.md')
    shutil.rmtree(work / 'out' / 'figures')
    assert main([str(config_path), '--report-only']) == 0
    assert {n: (work / 'out' / n).read_bytes() for n in names} == first
    assert main([str(config_path), '--report-only']) == 0
    assert {n: (work / 'out' / n).read_bytes() for n in names} == first
    copy = work / 'elsewhere' / 'copy'
    shutil.copytree(work / 'out', copy, ignore=shutil.ignore_patterns('report.*', 'figures'))
    assert main([str(config_path), '--report-only', '--output', str(copy)]) == 0
    assert {n: (copy / n).read_bytes() for n in names} == first
    assert str(work / 'out') not in first['report.json'].decode('utf-8')

    # a unit finished before a correction was configured cannot be completed from its results alone
    done_path = copy / 'arms' / 'hybrid' / 'seed-1' / DONE_FILE
    old = json.loads(done_path.read_text(encoding='utf-8'))
    for entry in old['collections'].values():
        del entry['corrections']
    done_path.write_text(json.dumps(old), encoding='utf-8')
    with pytest.raises(ExperimentError, match=r"hybrid/seed-1/done\.json: no results under bias correction shift "
                                              r".*delete .*hybrid/seed-1 to redo the unit") as info:
        run_experiment(dataclasses.replace(config, output=str(copy)), report_only=True, log=log.append)
    assert '\n' not in str(info.value)
    # without the correction in the configuration the old unit is still valid
    plain = dataclasses.replace(config, output=str(copy),
                                evaluation=dataclasses.replace(config.evaluation, bias_corrections=('none',)))
    assert list(run_experiment(plain, report_only=True, log=log.append)['collections']['xquad-r']['corrections']) \
        == ['none']


@pytest.mark.slow
def test_two_stage_arm_continues_from_its_first_stage(work):
    config = load_config(_write_config(work, 'two.yaml', name='two', output=str(work / 'two'), seeds='[3]',
                                       arms='[instruct-then-hybrid]'))
    report = run_experiment(config, keep_models=True, log=lambda _: None)
    unit = plan(config)[0]
    models = work / 'models' / 'instruct-then-hybrid' / 'seed-3'
    stage1 = json.loads((models / 'stage-1' / 'training.json').read_text(encoding='utf-8'))
    stage2 = json.loads((models / 'model' / 'training.json').read_text(encoding='utf-8'))
    assert (stage1['steps'], stage2['steps']) == (1, 1)  # two_stage_fraction 0.5 of 2 steps
    assert set(stage1['sources']) == {'instructions'} and stage1['strategy'] == 'mono'
    assert set(stage2['sources']) == {'pawsx'} and stage2['strategy'] == 'hybrid'
    assert stage2['base'] == str(models / 'stage-1')
    assert (unit.dir / 'stage-1.yaml').is_file() and (unit.dir / 'recipe.yaml').is_file()
    assert report['collections']['xquad-r']['corrections']['none']['arms']['instruct-then-hybrid']['multi']['n'] == 1
    assert report['answer'] == []  # nothing to compare with


@pytest.mark.slow
def test_seeds_flag_runs_one_seed_of_every_arm_first(work, capsys):
    path = _write_config(work, 'seeds.yaml', name='seeds', output=str(work / 'seeds'), arms='[base, hybrid]')
    config = load_config(path)
    assert main([str(path), '--seeds', '2']) == 0
    done = {u.label: (u.dir / DONE_FILE).is_file() for u in plan(config)}
    assert done == {'base': True, 'hybrid seed 1': False, 'hybrid seed 2': True}
    # the report covers the finished units only
    report = json.loads((work / 'seeds' / 'report.json').read_text(encoding='utf-8'))
    assert report['collections']['xquad-r']['corrections']['none']['arms']['hybrid']['multi']['n'] == 1
    # ... and its caveats say so instead of claiming the configured seeds
    assert report['caveats'][0].endswith('and 1 of the 2 configured seeds finished; a longer budget may rank '
                                         'the arms otherwise.')
    capsys.readouterr()
    assert main([str(path), '--seeds', '7']) == 2
    assert capsys.readouterr().err.strip() == "error: seed(s) 7 not in the experiment's seeds (1, 2)"


# -- arms as recipes (no training) -----------------------------------------------------------------

def test_arm_recipes_share_the_budget_and_round_trip(work):
    from pyserini_hybrid.train._instructions import INSTRUCT_TEMPLATE, task_for
    from pyserini_hybrid.train._recipe import parse_recipe

    config = parse_config(_config_text(work, arms=f"[{', '.join(ARMS)}]", query_instructions='true',
                                       budget='{max_steps: 9, batch_size: 6, lr: 2.0e-5}'), 'inline')
    seen = {}
    for unit in plan(config):
        if unit.arm == 'base':
            continue
        recipes = arm_recipes(config, unit.arm, unit.seed)
        seen[unit.arm] = recipes
        assert sum(r.max_steps for r in recipes) == 9
        for r in recipes:
            assert (r.batch_size, r.lr, r.seed) == (6, 2e-5, unit.seed)
            assert r.query_instruction == INSTRUCT_TEMPLATE
            assert r.validation.patience == 0  # no early stopping: every arm trains its whole budget
            assert all(e.task == task_for(e.corpus, e.options) for e in r.data)
            again = parse_recipe(recipe_yaml(r), 'round trip')
            assert again.to_dict() == r.to_dict()
    strategies = {arm: [(r.strategy, sorted(e.corpus for e in r.data)) for r in rs] for arm, rs in seen.items()}
    assert strategies == {
        'mono': [('mono', ['pawsx'])], 'cross': [('cross', ['pawsx'])], 'hybrid': [('hybrid', ['pawsx'])],
        'instruct-only': [('mono', ['instructions'])],
        'hybrid+instruct': [('hybrid', ['instructions', 'pawsx'])],
        'instruct-then-hybrid': [('mono', ['instructions']), ('hybrid', ['pawsx'])],
        'hybrid+instruct-e5': [('hybrid', ['instructions', 'pawsx'])]}
    first, second = seen['instruct-then-hybrid']
    assert first.max_steps + second.max_steps == 9 and first.max_steps in (4, 5)  # two_stage_fraction 0.5
    assert second.base == str(first.output_dir)
    assert seen['hybrid'][0].alpha == 0.5 and seen['hybrid'][0].base == str(work / 'tiny' / 'model')


def test_instruction_template_is_filled_with_the_search_task(work, tmp_path):
    from pyserini_hybrid.encoders import get_spec, save_spec
    from pyserini_hybrid.experiment._runner import _encoder
    from pyserini_hybrid.train._instructions import INSTRUCT_TEMPLATE, SEARCH_TASK

    model = tmp_path / 'instructed'
    shutil.copytree(work / 'tiny' / 'model', model)
    import dataclasses
    save_spec(model, dataclasses.replace(get_spec(str(model)), query_instruction=INSTRUCT_TEMPLATE))
    encoder = _encoder(str(model), load_config(_write_config(work)))
    assert encoder.query_prefix == f'Instruct: {SEARCH_TASK}\nQuery: '


def test_instruction_share_is_given_to_hybrid_instruct_only(work):
    from pyserini_hybrid.train._recipe import parse_recipe

    config = parse_config(_config_text(work, arms=f"[{', '.join(ARMS)}]",
                                       instructions='{sources: [self-instruct], share: 0.25, weight: 3.0}'), 'inline')
    shares = {}
    for arm in ARMS:
        if arm == 'base':
            continue
        for recipe in arm_recipes(config, arm, 1):
            # query_instructions is off: the E5-instruct template and tasks are hybrid+instruct-e5's alone
            assert bool(recipe.query_instruction) == (arm == 'hybrid+instruct-e5')
            assert all(bool(e.task) == (arm == 'hybrid+instruct-e5') for e in recipe.data)
            for entry in recipe.data:
                shares[arm, entry.corpus] = shares.get((arm, entry.corpus), set()) | {entry.share}
            assert parse_recipe(recipe_yaml(recipe), 'round trip').to_dict() == recipe.to_dict()
    # alone (instruct-only, the first stage of instruct-then-hybrid) a share would mean nothing
    assert shares == {('mono', 'pawsx'): {None}, ('cross', 'pawsx'): {None}, ('hybrid', 'pawsx'): {None},
                      ('instruct-only', 'instructions'): {None}, ('hybrid+instruct', 'pawsx'): {None},
                      ('hybrid+instruct', 'instructions'): {0.25}, ('instruct-then-hybrid', 'instructions'): {None},
                      ('instruct-then-hybrid', 'pawsx'): {None}, ('hybrid+instruct-e5', 'pawsx'): {None},
                      ('hybrid+instruct-e5', 'instructions'): {0.1}}
    # a share the recipe's own shares leave no room for is one line naming the config
    crowded = work / 'crowded.yaml'
    crowded.write_text((work / 'recipe.yaml').read_text(encoding='utf-8').replace(
        'data:\n  - pawsx\n', 'data:\n  - corpus: pawsx\n    share: 0.8\n  - tatoeba\n'), encoding='utf-8')
    config = parse_config(_config_text(work, recipe=str(crowded), arms='[hybrid+instruct]',
                                       instructions='{sources: [self-instruct], share: 0.25}'), 'inline')
    with pytest.raises(ExperimentError, match=r"^inline: arm hybrid\+instruct: .*sum to 1\.05") as info:
        arm_recipes(config, 'hybrid+instruct', 1)
    assert '\n' not in str(info.value)


def test_evaluation_precision_reaches_the_encoder_and_the_unit_identity(work, monkeypatch):
    import torch

    from pyserini_hybrid.encoders import _model
    from pyserini_hybrid.experiment._runner import _encoder, _unit_identity, eval_precision

    def config(precision: str | None):
        extra = '' if precision is None else f', precision: {precision}'
        return parse_config(_config_text(work, evaluation=f"{{data_dir: {work / 'lareqa'}, verify: false, "
                                                         f"threads: 1{extra}}}"), 'inline')

    auto, fp32, int8 = config(None), config('fp32'), config('int8')
    assert (auto.evaluation.precision, fp32.evaluation.precision, int8.evaluation.precision) == ('auto', 'fp32', 'int8')
    model = str(work / 'tiny' / 'model')
    encoder = _encoder(model, int8)
    assert encoder.precision == 'int8' and encoder.int8_layers
    assert _encoder(model, fp32).precision == 'fp32'
    # a unit evaluated at another precision is another unit; at fp32 its marker is as before the option
    base = plan(fp32)[0]
    assert 'eval_precision' not in _unit_identity(fp32, base, [])
    assert _unit_identity(int8, base, [])['eval_precision'] == 'int8'
    # auto is resolved on the machine: the identity records what ran, never 'auto'
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    for native, expected in ((False, 'int8'), (True, 'bf16')):
        monkeypatch.setattr(_model, 'native_bf16', lambda: native)
        assert eval_precision(auto) == expected == _encoder(model, auto).precision
        assert _unit_identity(auto, base, [])['eval_precision'] == expected


def test_answer_verdicts_follow_the_outcomes():
    from pyserini_hybrid.experiment._report import _answers

    config = parse_config('name: x\nrecipe: r.yaml\n', 'inline')

    def row(a, measure, a_value, b_value, p):
        better = (b_value < a_value) if measure == 'rank_distance' else (b_value > a_value)
        outcome = 'no significant difference' if p > 0.05 else 'better' if better else 'worse'
        return {'arm_a': a, 'arm_b': 'hybrid+instruct', 'measure': measure, 'a_value': a_value, 'b_value': b_value,
                'diff': b_value - a_value, 'ci95': [b_value - a_value - 0.01, b_value - a_value + 0.01],
                'p_holm': p, 'outcome': outcome, 'seed_level': {'diffs': [b_value - a_value] * 3, 'p_t': 0.01}}

    block = {'arms': {a: {'seeds': [1, 2, 3]} for a in ('hybrid', 'instruct-only', 'hybrid+instruct')},
             'comparisons': [
                 row('hybrid', 'mono', 0.80, 0.79, 0.5), row('hybrid', 'cross', 0.70, 0.72, 0.001),
                 row('hybrid', 'multi', 0.60, 0.63, 0.002), row('hybrid', 'rank_distance', 300.0, 250.0, 0.01),
                 row('instruct-only', 'mono', 0.80, 0.81, 0.9), row('instruct-only', 'cross', 0.70, 0.66, 0.001),
                 row('instruct-only', 'multi', 0.60, 0.64, 0.001),
                 row('instruct-only', 'rank_distance', 300.0, 301.0, 0.7)]}
    first, second = _answers('xquad-r', block, config)
    assert first.startswith('Yes: on XQuAD-R, hybrid+instruct improves zero-shot cross-lingual retrieval over '
                            'hybrid batches alone (hybrid)')
    assert 'Multi mAP 0.630 vs 0.600 (+0.030' in first and 'rank distance 250.0 vs 300.0 (-50.0' in first
    assert 'seeds pointing the same way: Cross mAP 3 of 3, Multi mAP 3 of 3, rank distance 3 of 3' in first
    assert second.startswith('Mixed: on XQuAD-R, hybrid+instruct is better than instruction tuning alone')
    block['comparisons'] = [dict(r, outcome='worse', diff=-0.01) if r['measure'] == 'multi' else
                            dict(r, outcome='no significant difference') for r in block['comparisons'][:4]]
    (only,) = _answers('xquad-r', block, config)
    assert only.startswith('No, it is worse: on XQuAD-R')


# -- strict configuration --------------------------------------------------------------------------

@pytest.mark.parametrize('extra, message', [
    ({'sedes': '[1]'}, r"exp\.yaml:\d+: unknown key 'sedes'"),
    ({'seeds': '[1, one]'}, r"exp\.yaml:\d+: 'seeds\[1\]' must be an integer, got str 'one'"),
    ({'budget': '{max_steps: 2, batch_size: 4, lr: 3e-5}'}, r"'budget\.lr' must be a number.*write 3\.0e-5"),
    ({'arms': '[base, hybird]'}, r"exp\.yaml:\d+: unknown arm 'hybird'"),
    ({'budget': '{max_steps: 2, batch: 4}'}, r"unknown key 'budget\.batch'"),
    ({'evaluation': '{collections: [mlqa-r]}'}, r"must include xquad-r"),
    ({'comparisons': '[[hybrid, cross]]'}, r"arm 'cross' is not in 'arms'"),
    ({'alpha': 'true'}, r"'alpha' must be a number, got bool True"),
    ({'evaluation': '{collections: [xquad-r], precision: fp16}'},
     r"exp\.yaml:\d+: 'evaluation\.precision' must be one of auto, fp32, bf16, int8, onnx-int8, got 'fp16'"),
    ({'instructions': '{sources: [offline], share: 1.0}'}, r"exp\.yaml:\d+: 'instructions\.share' must be in \(0, 1\)"),
    ({'instructions': '{sources: [offline], e5_share: 0}'}, r"'instructions\.e5_share' must be in \(0, 1\)"),
    ({'evaluation': '{collections: [xquad-r], bias_corrections: [none, shfit]}'},
     r"exp\.yaml:\d+: unknown bias correction 'shfit'"),
    ({'evaluation': '{collections: [xquad-r], bias_corrections: [shift]}'},
     r"'evaluation\.bias_corrections' must start with none"),
])
def test_bad_config_is_one_clear_line(work, extra, message):
    path = _write_config(work, 'exp.yaml', **extra)
    with pytest.raises(ExperimentError, match=message) as info:
        load_config(path)
    assert '\n' not in str(info.value) and str(path) in str(info.value)


def test_cli_error_is_one_line_exit_2(work, capsys):
    path = work / 'broken.yaml'
    path.write_text('name: x\nrecipe: r.yaml\nseeds: [1\n', encoding='utf-8')
    assert main([str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f'error: {path}:') and 'invalid YAML' in err and '\n' not in err
    assert main([str(work / 'missing.yaml'), '--dry-run']) == 2
    assert 'experiment file not found' in capsys.readouterr().err


def test_dry_run_shows_the_second_instruction_mix(work, capsys):
    path = _write_config(work, 'dry.yaml', arms='[base, hybrid, hybrid+instruct-e5]', seeds='[5]',
                         comparisons='[[hybrid, hybrid+instruct-e5]]', output=str(work / 'dry'))
    assert main([str(path), '--dry-run']) == 0
    out = capsys.readouterr().out
    assert 'hybrid+instruct-e5 seed 5: to do' in out
    e5 = out.split('hybrid+instruct-e5 seed 5')[1]
    assert 'instructions (share 0.1); queries: E5-instruct template, a task per source' in e5
    assert f"-> {work / 'models' / 'hybrid+instruct-e5' / 'seed-5' / 'model'}" in e5
    hybrid = out.split('hybrid seed 5')[1].split('hybrid+instruct-e5')[0]
    assert 'share' not in hybrid and 'E5-instruct' not in hybrid
    assert not (work / 'dry').exists()  # a dry run writes nothing


def test_shipped_config_is_valid_and_realistic():
    repo = Path(__file__).resolve().parents[1]
    config = load_config(repo / 'experiments' / 'seed-question.yaml')
    # results are committed, models are not
    assert config.output_dir == Path('experiments/results/seed-question')
    assert config.models_dir == Path('models/experiments/seed-question')
    assert config.evaluation.bias_corrections == ('none', 'shift')
    assert 'hybrid+instruct-e5' in config.arms and ('hybrid', 'hybrid+instruct-e5') in config.comparisons
    assert set(config.arms) >= {'base', 'mono', 'cross', 'hybrid', 'instruct-only', 'hybrid+instruct'}
    assert len(config.seeds) >= 3
    assert (repo / config.recipe).is_file() or Path(config.recipe).is_file()
    assert math.isclose(config.alpha, 0.5)


def test_unit_results_round_trip_losslessly_and_point_to_the_plain_file(tmp_path):
    from pyserini_hybrid.eval import SettingResult
    from pyserini_hybrid.experiment import load_unit_results
    from pyserini_hybrid.experiment._runner import _save_results

    qids = ['q3_en', 'q1_en', 'q2_de']                               # not sorted: order is kept
    ap = {'q3_en': 1 / 3, 'q1_en': 0.0, 'q2_de': 0.1234567890123}   # 1/n, zero, any float
    mono = SettingResult('lareqa/x/en', 'mono', 'en', ('en',), 5, 5, {'AP': dict(ap)},
                         dict(zip(qids, ['en', 'en', 'de'])), source='exact: m')
    multi = SettingResult('lareqa/x', 'multi', None, ('de', 'en'), 9, 9, {'AP': {q: 1.0 for q in qids}},
                          dict(zip(qids, ['en', 'en', 'de'])), rank_distance={q: 2.0 for q in qids},
                          source='exact: m')
    plain = tmp_path / 'results-x.json.xz'
    _save_results(plain, {mono.dataset_id: mono, multi.dataset_id: multi})
    back = load_unit_results(plain)
    assert back == {mono.dataset_id: mono, multi.dataset_id: multi}
    assert list(back[mono.dataset_id].per_query['AP']) == qids
    assert all(type(v) is float for v in back[multi.dataset_id].per_query['AP'].values())

    # a correction that leaves Mono alone and moves Multi: Mono is stored as a pointer, read back whole
    shifted = {mono.dataset_id: dataclasses.replace(mono, source='exact: m (shift)'),
               multi.dataset_id: dataclasses.replace(multi, per_query={'AP': {q: 0.5 for q in qids}},
                                                     source='exact: m (shift)')}
    moved = tmp_path / 'results-x-shift.json.xz'
    _save_results(moved, shifted, reference=plain)
    assert load_unit_results(moved) == shifted
    plain.write_bytes(b'\x1f\x8b junk')
    with pytest.raises(ExperimentError, match=r'/results-x\.json\.xz: unreadable results'):
        load_unit_results(moved)


@pytest.mark.slow
def test_committed_seed_question_report_is_rebuilt_byte_identically(tmp_path):
    """What a clean clone has: the committed units and report; --report-only trains nothing and
    writes the same bytes (the report, its JSON and the figures)."""
    repo = Path(__file__).resolve().parents[1]
    committed = repo / 'experiments' / 'results' / 'seed-question'
    out = tmp_path / 'seed-question'
    shutil.copytree(committed, out)
    for name in ('report.md', 'report.json'):
        (out / name).unlink()
    shutil.rmtree(out / 'figures')
    assert main([str(repo / 'experiments' / 'seed-question.yaml'), '--report-only', '--output', str(out)]) == 0
    expected = sorted(p.relative_to(committed) for p in committed.rglob('*') if p.is_file())
    assert sorted(p.relative_to(out) for p in out.rglob('*') if p.is_file()) == expected
    for name in expected:
        assert (out / name).read_bytes() == (committed / name).read_bytes(), name
