"""Evaluation of collections beyond LAReQA through ``python -m pyserini_hybrid.eval``: a JsonCollection
folder + topics + qrels written here (per-query values against pytrec_eval run directly), the exported
LAReQA Mono en setting (the same mean AP as the LAReQA path, run files and exact mode), an ir_datasets
id registered here, and the bad inputs (one line, exit 2, nothing written). Tiny data and the tiny
random-weight encoder of test_collection.py, so that nothing here takes long."""
from __future__ import annotations

import json

import numpy as np
import pytest
import pytrec_eval

import pyserini_hybrid  # noqa: F401  (Java set-up first)
from pyserini_hybrid._trec import read_qrels, read_run
from pyserini_hybrid.datasets import export_setting
from pyserini_hybrid.eval.__main__ import main
from test_collection import _register_tiny_irds, _search, tiny_model  # noqa: F401  (tiny_model: a fixture)
from test_eval_errors import assert_one_line_error, run_cli

FAST = ['--resamples', '200', '--bootstrap', '200']
PYTREC = {'AP': 'map', 'nDCG@10': 'ndcg_cut_10', 'R@10': 'recall_10', 'R@100': 'recall_100'}

DOCS = [('d1', 'Berlin is the capital of Germany.', 'en'), ('d2', 'Paris liegt an der Seine.', 'de'),
        ('d3', 'The Rhine flows through Basel.', 'en'), ('d4', 'Madrid es la capital de España.', 'es'),
        ('d5', 'Rome was not built in a day.', 'en'), ('d6', 'Wien ist die Hauptstadt Österreichs.', 'de')]
TOPICS = [('q1', 'capital of Germany'), ('q2', 'Seine'), ('q3', 'Rhine'), ('q4', 'Rome'), ('q5', 'unjudged')]
# graded (q1), two relevant (q2), one relevant (q3); q4 judged non-relevant only: not scored; q5 unjudged
QRELS = 'q1 0 d1 2\nq1 0 d6 1\nq2 0 d2 1\nq2 0 d3 1\nq3 0 d3 1\nq3 0 d5 0\nq4 0 d5 0\n'
RUN_A = {'q1': [('d1', 3.0), ('d2', 2.0), ('d6', 1.0)], 'q2': [('d3', 0.9), ('d4', 0.8), ('d2', 0.8)],
         'q3': [('d5', 1.0), ('d3', 1.0)], 'q5': [('d1', 1.0)]}   # q3: a tie, broken by docid as trec_eval does
RUN_B = {'q1': [('d6', 1.0), ('d1', 0.5)], 'q2': [('d2', 2.0)]}        # q3 absent: scores 0


def _write_run(run, path):
    path.write_text(''.join(f'{q} Q0 {d} {r} {s} t\n' for q, hits in run.items()
                            for r, (d, s) in enumerate(hits, start=1)), encoding='utf-8')
    return path


@pytest.fixture
def folder(tmp_path):
    corpus = tmp_path / 'corpus'
    corpus.mkdir()
    (corpus / 'docs.jsonl').write_text(''.join(json.dumps({'id': i, 'contents': t, 'lang': l}) + '\n'
                                               for i, t, l in DOCS), encoding='utf-8')
    (tmp_path / 'topics.tsv').write_text(''.join(f'{q}\t{t}\n' for q, t in TOPICS), encoding='utf-8')
    (tmp_path / 'qrels.txt').write_text(QRELS, encoding='utf-8')
    _write_run(RUN_A, tmp_path / 'a.trec')
    _write_run(RUN_B, tmp_path / 'b.trec')
    return tmp_path


def _report(out):
    return json.loads((out / 'report.json').read_text(encoding='utf-8'))


def test_folder_collection_per_query_values_are_pytrec_evals(folder, capsys):
    out = folder / 'report'
    main(['--dataset', str(folder / 'corpus'), '--topics', str(folder / 'topics.tsv'), '--qrels',
          str(folder / 'qrels.txt'), '--runs', f"a={folder / 'a.trec'}", f"b={folder / 'b.trec'}",
          '--output-dir', str(out), '--check-trec-eval'] + FAST)
    report = _report(out)
    qrels = {q: j for q, j in read_qrels(folder / 'qrels.txt').items() if any(r > 0 for r in j.values())}
    evaluator = pytrec_eval.RelevanceEvaluator(qrels, set(PYTREC.values()))
    for name, run_file in (('a', 'a.trec'), ('b', 'b.trec')):
        run = read_run(folder / run_file)
        direct = evaluator.evaluate({q: {d: float(s) for d, s in hits} for q, hits in run.items()})
        per_query = report['systems'][name]['per_query']
        for measure, key in PYTREC.items():
            # every judged query, a query absent from the run at 0 (trec_eval -c)
            want = {q: direct[q][key] if q in direct else 0.0 for q in qrels}
            assert per_query[measure] == pytest.approx(want, abs=1e-12), (name, measure)
            mean = report['systems'][name]['aggregates'][measure]['all']['macro']
            assert mean == pytest.approx(np.mean(list(want.values())), abs=1e-12)
    assert sorted(report['systems']['a']['per_query']['AP']) == ['q1', 'q2', 'q3']   # q4, q5 not scored
    assert report['systems']['a']['per_query']['AP']['q3'] == 0.5   # tie: d5 ranked above d3
    assert report['collection'] == 'corpus' and report['collection_info']['judged_queries'] == 3
    assert report['collection_info']['queries_without_relevant_docs'] == 1   # q4
    assert [(c['aggregate'], c['value']) for c in report['comparisons']] == [('all', m) for m in PYTREC]
    assert all(c['n_clusters'] == 3 for c in report['comparisons'])
    assert [c['agree'] for c in report['trec_eval_check']] == [True, True]
    assert sorted(p.name for p in out.iterdir()) == ['report.json', 'report.md']
    markdown = (out / 'report.md').read_text(encoding='utf-8')
    assert '## Collection' in markdown and '| a | b | nDCG@10 |' in markdown


def test_exported_lareqa_mono_en_gives_the_lareqa_paths_mean_ap(tiny_xquad, tiny_model, tmp_path):
    export = export_setting('lareqa/xquad-r/en', tmp_path / 'en')
    run = tmp_path / 'dense.trec'
    cache = ['--cache-dir', str(tmp_path / 'cache')]
    _search(['--dataset', 'lareqa/xquad-r/en', '--retriever', 'dense', '--encoder', tiny_model, '--precision',
             'fp32', '--hits', '1000', '--output', run] + cache)
    systems = ['--runs', f'dense={run}', '--exact', f'tiny={tiny_model}', '--precision', 'fp32'] + cache + FAST
    main(['--dataset', 'lareqa/xquad-r/en', '--output-dir', str(tmp_path / 'lareqa')] + systems)
    main(['--dataset', str(export), '--topics', str(export / 'topics.tsv'), '--qrels', str(export / 'qrels.txt'),
          '--output-dir', str(tmp_path / 'generic'), '--bias-correction', 'none', 'center', '--bias-source', 'docs',
          '--language', 'en'] + systems)
    lareqa, generic = _report(tmp_path / 'lareqa'), _report(tmp_path / 'generic')
    for name in ('dense', 'tiny'):
        want = lareqa['systems'][name]['aggregates']['AP']['mono']['macro']
        assert generic['systems'][name]['aggregates']['AP']['all']['macro'] == pytest.approx(want, abs=1e-12)
    # exact full-collection AP is the AP of a full-depth run file
    assert generic['systems']['tiny']['per_query']['AP'] == pytest.approx(
        generic['systems']['dense']['per_query']['AP'], abs=1e-9)
    assert 'bias correction center' in generic['systems']['tiny+center']['source']


def test_an_ir_datasets_id_registered_here(fixtures_dir, tmp_path):
    import ir_datasets

    dataset_id = _register_tiny_irds(fixtures_dir)
    dataset = ir_datasets.load(dataset_id)
    docs = [d.doc_id for d in dataset.docs_iter()]
    qids = [q.query_id for q in dataset.queries_iter()]
    run = {q: [(d, float(len(docs) - (i * 7 + j) % len(docs))) for j, d in enumerate(docs)] for i, q in enumerate(qids)}
    _write_run(run, tmp_path / 'run.trec')
    main(['--dataset', dataset_id, '--runs', f"r={tmp_path / 'run.trec'}", '--output-dir', str(tmp_path / 'out')]
         + FAST)
    qrels = {}
    for qrel in dataset.qrels_iter():
        qrels.setdefault(qrel.query_id, {})[qrel.doc_id] = qrel.relevance
    direct = pytrec_eval.RelevanceEvaluator(qrels, {'map'}).evaluate(
        {q: dict(hits) for q, hits in read_run(tmp_path / 'run.trec').items()})
    report = _report(tmp_path / 'out')
    assert report['collection'] == dataset_id and report['collection_info']['source'] == 'ir_datasets'
    assert report['systems']['r']['per_query']['AP'] == pytest.approx({q: v['map'] for q, v in direct.items()})


BAD = {   # extra arguments (@RUN, @ZZ, @DIR: files of the fixture; DROP=FLAG: leave that flag out), the line
    'query_not_in_topics': (['--runs', 'a=@ZZ'], ["@ZZ:1: query 'zz' is not a query of corpus (not in its topics)"]),
    'folder_without_qrels': (['--runs', 'a=@RUN', 'DROP=--qrels'], ['a corpus folder needs --qrels FILE']),
    'folder_without_topics': (['--runs', 'a=@RUN', 'DROP=--topics'], ['a corpus folder needs --topics FILE|NAME']),
    'run_directory': (['--runs', 'a=@DIR'], ['a run directory is --all-settings output of a LAReQA collection']),
    'no_setting_tests': (['--runs', 'a=@RUN', '--no-setting-tests'], ['--no-setting-tests is for LAReQA']),
    'check_trec_eval_setting': (['--runs', 'a=@RUN', '--check-trec-eval', 'lareqa/xquad-r/en'],
                                ["--check-trec-eval lareqa/xquad-r/en: settings are LAReQA's"]),
    'exact_with_graded_qrels': (['--exact', 'tiny=me5-small-offline'],
                                ['--exact scores binary relevance', 'grade relevance up to 2']),
}


@pytest.mark.parametrize('case', sorted(BAD))
def test_bad_collection_input_is_one_line(case, folder, capsys):
    args, needles = BAD[case]
    (folder / 'zz.trec').write_text('zz Q0 d1 1 1.0 t\n', encoding='utf-8')
    (folder / 'runs').mkdir()

    def fill(text):
        return (text.replace('@RUN', str(folder / 'a.trec')).replace('@ZZ', str(folder / 'zz.trec'))
                .replace('@DIR', str(folder / 'runs')))

    given = {'--dataset': folder / 'corpus', '--topics': folder / 'topics.tsv', '--qrels': folder / 'qrels.txt'}
    for arg in args:
        if arg.startswith('DROP='):
            del given[arg[5:]]
    argv = [str(x) for kv in given.items() for x in kv] + [fill(a) for a in args if not a.startswith('DROP=')]
    out = folder / 'report'
    code, err = run_cli(argv + ['--output-dir', out], capsys)
    assert code == 2
    assert_one_line_error(err, *map(fill, needles))
    assert not out.exists()


def test_unknown_id_and_lareqa_only_flags(folder, capsys):
    run = folder / 'a.trec'
    code, err = run_cli(['--dataset', 'no-such/collection', '--runs', f'a={run}', '--output-dir', folder / 'o'],
                        capsys)
    assert code == 2
    assert_one_line_error(err, "unknown collection 'no-such/collection': not a folder and not an ir_datasets id")
    code, err = run_cli(['--dataset', 'lareqa/xquad-r/en', '--qrels', folder / 'qrels.txt', '--runs', f'a={run}',
                         '--output-dir', folder / 'o'], capsys)
    assert code == 2
    assert_one_line_error(err, '--qrels is for a collection that is not LAReQA')
    assert not (folder / 'o').exists()


def test_bad_qrels_file_names_the_file_and_line(folder, capsys):
    bad = folder / 'bad.qrels'
    bad.write_text('q1 0 d1 1\nq2 0 d2\n', encoding='utf-8')
    out = folder / 'report'
    code, err = run_cli(['--dataset', folder / 'corpus', '--topics', folder / 'topics.tsv', '--qrels', bad,
                         '--runs', f"a={folder / 'a.trec'}", '--output-dir', out], capsys)
    assert code == 2
    assert_one_line_error(err, f'{bad}:2: expected 4 columns')
    assert not out.exists()
