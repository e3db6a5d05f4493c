"""Evaluation: metrics vs trec_eval / pytrec_eval / plain Python, exact full-pool mode, aggregates,
language bias, significance, report and CLI.

Expected values come from hand-worked examples (tests/fixtures/eval/README.md), from trec_eval and
pytrec_eval themselves, or from a second computation written here.
"""
from __future__ import annotations

import itertools
import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
import pytrec_eval
from hypothesis import given, settings, strategies as st
from scipy import stats

import pyserini_hybrid  # noqa: F401  (Java set-up first)
from pyserini_hybrid._trec import read_qrels, read_run, write_run
from pyserini_hybrid.datasets import list_settings, load_pool, run_filename
from pyserini_hybrid.eval import (aggregate, bootstrap_ci, build_report, check_trec_eval, compare, evaluate_run_file,
                                  evaluate_system, exact_scores, find_run_files, holm,
                                  metrics_from_ranks, paired_t_test, per_query_metrics, randomization_test,
                                  rank_distance, relevant_ranks, relevant_ranks_matrix, run_rank_distances,
                                  trec_eval_order, write_report)

PYTREC_NAMES = {'AP': 'map', 'R@1': 'recall_1', 'R@10': 'recall_10', 'nDCG@10': 'ndcg_cut_10'}


def plain_ap(hits, relevant):
    """Independent AP: rank by score desc, docid desc (trec_eval), precision at each relevant doc."""
    ranked = sorted(sorted(hits, key=lambda h: h[0], reverse=True), key=lambda h: -h[1])  # stable sorts
    found, total = 0, 0.0
    for rank, (docid, _) in enumerate(ranked, start=1):
        if docid in relevant:
            found += 1
            total += found / rank
    return total / len(relevant)


def pytrec(qrels, run, names=tuple(PYTREC_NAMES.values())):
    evaluator = pytrec_eval.RelevanceEvaluator(qrels, set(names))
    return evaluator.evaluate({q: {d: float(s) for d, s in hits} for q, hits in run.items()})


@pytest.fixture(scope='module')
def tiny(fixtures_dir):
    """The hand-made 11-language XQuAD-R layout of the datasets tests (4 questions per language)."""
    return load_pool('xquad-r', data_dir=fixtures_dir / 'lareqa', verify=False)


@pytest.fixture(scope='module')
def tiny_mlqa(fixtures_dir):
    """Hand-made MLQA-R layout: en has 6 queries, the others 2; Cross ar-vi has none."""
    return load_pool('mlqa-r', data_dir=fixtures_dir / 'lareqa', verify=False)


def tied_vectors(pool, seed, dim=6):
    """Small integer vectors: inner products are small integers, so ties are everywhere."""
    rng = np.random.default_rng(seed)
    q_emb = rng.integers(-1, 2, size=(len(pool.queries), dim)).astype(np.float32)
    d_emb = rng.integers(-1, 2, size=(len(pool.docs), dim)).astype(np.float32)
    return q_emb, d_emb


# --------------------------------------------------------------------------------------- metrics

def test_trec_eval_breaks_ties_by_descending_docid():
    qrels, run = {'q': {'d2': 1}}, {'q': [('d1', 1.0), ('d2', 1.0)]}
    assert pytrec(qrels, run, ['map'])['q']['map'] == 1.0  # trec_eval itself ranks d2 first
    assert [d for d, _ in trec_eval_order(run['q'])] == ['d2', 'd1']
    assert relevant_ranks(run['q'], {'d2'}) == ([1], 2)
    assert per_query_metrics(qrels, run)['AP'] == {'q': 1.0}
    ranks = relevant_ranks_matrix(np.array([[1.0, 1.0]]), np.array([[1]]), np.array([0, 1]))
    assert ranks.tolist() == [[1]]


def test_hand_worked_example_of_every_measure(fixtures_dir):
    qrels = read_qrels(fixtures_dir / 'eval' / 'toy.qrels')
    run = read_run(fixtures_dir / 'eval' / 'toy.run')
    got = per_query_metrics(qrels, run)
    ndcg_q1 = (1 + 1 / math.log2(3)) / (1 + 1 / math.log2(3) + 1 / math.log2(4))
    expected = {'AP': {'q1': 2 / 3, 'q2': 1.0, 'q3': 0.0}, 'R@1': {'q1': 1 / 3, 'q2': 1.0, 'q3': 0.0},
                'R@10': {'q1': 2 / 3, 'q2': 1.0, 'q3': 0.0}, 'nDCG@10': {'q1': ndcg_q1, 'q2': 1.0, 'q3': 0.0}}
    for measure, values in expected.items():
        assert got[measure] == pytest.approx(values, abs=1e-12), measure
    # The same numbers from the ranks of the relevant docs (exact mode's path).
    ranks, _ = relevant_ranks(run['q1'], {'d1', 'd3', 'd6'})
    assert ranks == [1, 2]
    from_ranks = metrics_from_ranks(ranks, n_relevant=3)
    assert from_ranks == pytest.approx({m: v['q1'] for m, v in expected.items()}, abs=1e-12)


@pytest.mark.slow
def test_trec_eval_ir_measures_and_plain_python_agree_on_real_xquad(lareqa_dir, tmp_path):
    pool = load_pool('xquad-r')
    setting = 'lareqa/xquad-r/en'
    qrels = pool.qrels_for(setting)
    corpus = [pool.docs[i].doc_id for i in pool.doc_indices(setting)]
    rng = np.random.default_rng(5)
    run = {}
    for qid, judged in qrels.items():
        docs = list(rng.choice(corpus, size=60, replace=False))
        # Scores on a 0.05 grid: many ties; the relevant doc is often (not always) retrieved and high.
        hits = {d: round(float(rng.integers(0, 20)) * 0.05, 2) for d in docs}
        if rng.random() < 0.8:
            hits[next(iter(judged))] = round(float(rng.integers(10, 21)) * 0.05, 2)
        run[qid] = list(hits.items())
    path = write_run(run, tmp_path / run_filename(setting))
    result = evaluate_run_file(pool, setting, path)
    from_file = read_run(path)
    plain = {qid: plain_ap(from_file.get(qid, []), set(qrels[qid])) for qid in qrels}
    assert result.per_query['AP'] == pytest.approx(plain, abs=1e-12)
    check = check_trec_eval(pool, setting, path, result.mean('AP'), system='synthetic')
    assert check['agree'] and abs(check['trec_eval_map'] - float(np.mean(list(plain.values())))) <= 1e-4
    assert 0.1 < check["trec_eval_map"] < 0.95  # neither all-relevant-first nor nothing found
    # the AP of another run (0.01 lower) against this file: trec_eval disagrees and the check says so
    other = check_trec_eval(pool, setting, path, result.mean('AP') - 0.01, system='other')
    assert not other['agree'] and other['abs_diff'] == pytest.approx(0.01, abs=1e-4)


# --------------------------------------------------------------------------------------- property test

@st.composite
def ranking_case(draw):
    n_docs = draw(st.integers(1, 25))
    docids = [f'd{i:02d}' for i in range(n_docs)]
    scores = draw(st.lists(st.integers(0, 4), min_size=n_docs, max_size=n_docs))  # ties on purpose
    relevant = draw(st.sets(st.sampled_from(docids), min_size=1))
    depth = draw(st.integers(1, n_docs))
    return docids, [float(s) for s in scores], relevant, depth


@settings(max_examples=150, deadline=None)
@given(ranking_case())
def test_metric_code_matches_pytrec_eval(case):
    docids, scores, relevant, depth = case
    full = list(zip(docids, scores))
    cut = trec_eval_order(full)[:depth]          # a run cut at `depth` hits
    qrels = {'q': {d: 1 for d in relevant}}
    reference = pytrec(qrels, {'q': cut})['q']
    ranks, n_ranked = relevant_ranks(cut, relevant)
    ours = metrics_from_ranks(ranks, n_relevant=len(relevant))
    via_ir_measures = per_query_metrics(qrels, {'q': cut})
    for name, trec_name in PYTREC_NAMES.items():
        assert ours[name] == pytest.approx(reference[trec_name], abs=1e-9), name
        assert via_ir_measures[name]['q'] == pytest.approx(reference[trec_name], abs=1e-9), name
    # Exact mode's matrix ranks equal the ranks in the full trec_eval ordering.
    keys = np.argsort(np.argsort(docids))
    cols = [docids.index(d) for d in sorted(relevant)]
    matrix = relevant_ranks_matrix(np.array([scores], dtype=np.float32), np.array([cols]), keys)[0]
    order = [d for d, _ in trec_eval_order(full)]
    assert matrix.tolist() == [order.index(d) + 1 for d in sorted(relevant)]
    # Rank distance: exact on the full ranking; a lower bound when relevant docs fell below the cut.
    exact, bounded = rank_distance(matrix.tolist(), len(relevant), len(docids))
    assert exact == max(matrix) - min(matrix) and not bounded
    cut_distance, cut_bounded = rank_distance(ranks, len(relevant), n_ranked)
    assert cut_bounded == (len(ranks) < len(relevant))
    assert cut_distance <= exact


# --------------------------------------------------------------------------------------- exact mode

@pytest.mark.slow
def test_exact_mode_equals_trec_eval_on_full_depth_runs(tiny, tmp_path):
    from pyserini_hybrid.search import dense_runs

    q_emb, d_emb = tied_vectors(tiny, seed=3)
    settings_ = list_settings('xquad-r')
    exact = exact_scores(tiny, q_emb, d_emb)
    assert set(exact) == {s.dataset_id for s in settings_}
    runs = dense_runs(tiny, q_emb, d_emb, settings_, hits=len(tiny.docs))  # search's own code, full depth
    for dataset_id, run in runs.items():
        path = write_run(run, tmp_path / run_filename(dataset_id))
        from_file = evaluate_run_file(tiny, dataset_id, path)
        assert from_file.full_pool and exact[dataset_id].full_pool
        for measure in from_file.per_query:
            assert exact[dataset_id].per_query[measure] == pytest.approx(from_file.per_query[measure], abs=1e-9)
    multi_run = evaluate_run_file(tiny, 'lareqa/xquad-r', tmp_path / run_filename('lareqa/xquad-r'))
    assert multi_run.rank_distance_bounded == 0
    assert exact['lareqa/xquad-r'].rank_distance == multi_run.rank_distance
    # And Pyserini's trec_eval (Java) on the full-depth Multi run.
    check = check_trec_eval(tiny, 'lareqa/xquad-r', tmp_path / run_filename('lareqa/xquad-r'),
                            exact['lareqa/xquad-r'].mean('AP'))
    assert check['agree'], check


def test_exact_ranks_match_brute_force_on_random_vectors(tiny):
    rng = np.random.default_rng(11)
    q_emb = rng.standard_normal((len(tiny.queries), 8)).astype(np.float32)
    d_emb = rng.standard_normal((len(tiny.docs), 8)).astype(np.float32)
    d_emb[5] = d_emb[40]  # one exact tie between two documents of the pool
    result = exact_scores(tiny, q_emb, d_emb, ['lareqa/xquad-r'], similarity='cosine')['lareqa/xquad-r']
    qn = q_emb / np.linalg.norm(q_emb, axis=1, keepdims=True)
    dn = d_emb / np.linalg.norm(d_emb, axis=1, keepdims=True)
    docids = [d.doc_id for d in tiny.docs]
    for i, query in enumerate(tiny.queries):
        scores = [round(x, 6) for x in (dn @ qn[i]).tolist()]  # run-file precision: the tie is kept
        ranked = sorted(zip(docids, scores), key=lambda h: (h[1], h[0]), reverse=True)
        relevant = set(tiny.qrels[query.query_id])
        ranks = [r for r, (d, _) in enumerate(ranked, start=1) if d in relevant]
        assert result.per_query['AP'][query.query_id] == pytest.approx(
            sum(k / r for k, r in enumerate(ranks, start=1)) / len(relevant), abs=1e-12)
        assert result.rank_distance[query.query_id] == max(ranks) - min(ranks)


def test_exact_mode_rejects_vectors_of_another_pool(tiny):
    with pytest.raises(ValueError, match='do not match the xquad-r pool'):
        exact_scores(tiny, np.zeros((3, 4)), np.zeros((len(tiny.docs), 4)))


# --------------------------------------------------------------------------------------- bias

def test_rank_distance_rule_for_cut_runs():
    run = {'q': [('a', 0.9), ('x', 0.8), ('y', 0.7), ('c', 0.6), ('z', 0.5)]}
    qrels = {'q': {'a': 1, 'b': 1, 'c': 1}, 'r': {'a': 1, 'b': 1}}
    distances, bounded = run_rank_distances(run, qrels)
    # a = 1, c = 4, b missing from 5 ranked docs -> rank 6: distance 5, a lower bound.
    # r is absent from the run: nothing ranked, both at rank 1 -> 0, a lower bound.
    assert distances == {'q': 5.0, 'r': 0.0} and bounded == 2
    assert rank_distance([1, 4], 2, 5) == (3.0, False)


# --------------------------------------------------------------------------------------- aggregates

def test_aggregates_macro_and_micro_on_unequal_query_counts(tiny_mlqa):
    q_emb, d_emb = tied_vectors(tiny_mlqa, seed=8)
    results = exact_scores(tiny_mlqa, q_emb, d_emb)
    assert 'lareqa/mlqa-r/ar-vi' not in results  # no shared question: no query, no unit
    # Independent computation from the per-query values.
    def setting_means(kind):
        return {d: np.mean(list(r.per_query['AP'].values())) for d, r in results.items() if r.kind == kind}
    for kind in ('mono', 'cross'):
        means = setting_means(kind)
        units = [v for d, r in results.items() if r.kind == kind for v in r.per_query['AP'].values()]
        agg = aggregate(results, kind)
        assert agg['macro'] == pytest.approx(np.mean(list(means.values())), abs=1e-12)
        assert agg['micro'] == pytest.approx(np.mean(units), abs=1e-12)
        assert agg['n_settings'] == len(means) and agg['n_queries'] == len(units)
    multi = results['lareqa/mlqa-r']
    by_lang = {}
    for qid, value in multi.per_query['AP'].items():
        by_lang.setdefault(multi.query_langs[qid], []).append(value)
    agg = aggregate(results, 'multi')
    assert agg['by_lang'] == pytest.approx({l: np.mean(v) for l, v in by_lang.items()}, abs=1e-12)
    assert agg['macro'] == pytest.approx(np.mean([np.mean(v) for v in by_lang.values()]), abs=1e-12)
    assert agg['micro'] == pytest.approx(np.mean([v for vs in by_lang.values() for v in vs]), abs=1e-12)
    assert abs(agg['macro'] - agg['micro']) > 1e-6  # en has 6 queries, the rest 2: they differ
    mono = aggregate(results, 'mono')
    assert mono['by_lang']['en'] == pytest.approx(setting_means('mono')['lareqa/mlqa-r/en'], abs=1e-12)


# --------------------------------------------------------------------------------------- significance

def test_holm_hand_example():
    # sorted: .005*4 = .02, .01*3 = .03, .03*2 = .06, .04*1 = .04 -> running max .06
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # .5*2 = 1, then max(1, .9*1)
    assert holm([]) == []


def test_paired_t_test_is_scipy_ttest_rel():
    rng = np.random.default_rng(1)
    a, b = rng.random(50), rng.random(50)
    assert paired_t_test(a, b) == pytest.approx(stats.ttest_rel(a, b).pvalue, rel=1e-12)


def _exact_sign_flip_p(sums):
    total = abs(sum(sums))
    flips = [abs(sum(s * x for s, x in zip(signs, sums))) for signs in itertools.product((1, -1), repeat=len(sums))]
    return sum(f >= total - 1e-12 for f in flips) / len(flips)


def test_randomization_test_matches_exact_enumeration():
    rng = np.random.default_rng(2)
    a, b = rng.random(12) + 0.15, rng.random(12)
    p = randomization_test(a, b, n_resamples=20000, seed=1)
    assert p == pytest.approx(_exact_sign_flip_p(a - b), abs=0.012)
    assert randomization_test(a, b, n_resamples=20000, seed=1) == p  # deterministic
    # Weighted and clustered: clusters flip as a whole, the statistic is the weighted mean.
    weights = rng.random(12) + 0.5
    clusters = [i // 3 for i in range(12)]
    d = (a - b) * weights / weights.sum()
    sums = [d[i * 3:(i + 1) * 3].sum() for i in range(4)]
    p = randomization_test(a, b, weights, clusters, n_resamples=20000, seed=4)
    assert p == pytest.approx(max(_exact_sign_flip_p(sums), 1 / 20001), abs=0.012)
    # 2-D: columns tested at once, zero-padded rows change nothing.
    two = randomization_test(np.stack([a, np.r_[a[:6], np.zeros(6)]], 1),
                             np.stack([b, np.r_[b[:6], np.zeros(6)]], 1), n_resamples=20000, seed=2)
    assert two[0] == pytest.approx(_exact_sign_flip_p(a - b), abs=0.012)
    assert two[1] == pytest.approx(_exact_sign_flip_p((a - b)[:6]), abs=0.012)
    assert randomization_test(a, a) == 1.0


def test_bootstrap_ci_is_deterministic_and_matches_normal_theory():
    rng = np.random.default_rng(3)
    x = rng.normal(0.5, 0.2, size=4000)
    low, high = bootstrap_ci(x, n_resamples=2000, seed=7)
    assert (low, high) == bootstrap_ci(x, n_resamples=2000, seed=7)
    half = 1.96 * x.std(ddof=1) / math.sqrt(x.size)
    assert low < x.mean() < high
    assert (high - low) / 2 == pytest.approx(half, rel=0.12)
    # Weighted mean: the interval moves with the weights.
    w = np.where(x > 0.5, 3.0, 1.0)
    low_w, high_w = bootstrap_ci(x, weights=w, n_resamples=1000, seed=7)
    assert low_w < np.average(x, weights=w) < high_w and low_w > low


def test_compare_tests_the_printed_macro_difference(tiny_mlqa):
    a = exact_scores(tiny_mlqa, *tied_vectors(tiny_mlqa, seed=1))
    b = exact_scores(tiny_mlqa, *tied_vectors(tiny_mlqa, seed=2))
    for kind in ('mono', 'cross', 'multi'):
        row = compare(a, b, kind, n_resamples=2000, n_bootstrap=500)
        assert row['diff'] == pytest.approx(aggregate(b, kind)['macro'] - aggregate(a, kind)['macro'], abs=1e-12)
        assert row['ci95'][0] <= row['diff'] <= row['ci95'][1]
        assert 0 < row['p_randomization'] <= 1 and 0 <= row['p_t'] <= 1
        # Clusters are SQuAD questions: the question ids of the fixture (q1..q6).
        assert row['n_clusters'] == 6
        assert row == compare(a, b, kind, n_resamples=2000, n_bootstrap=500)  # seeded


# --------------------------------------------------------------------------------------- report + CLI

def test_report_files_numbers_and_figures(tiny, tmp_path):
    import matplotlib.image

    systems = {'first': exact_scores(tiny, *tied_vectors(tiny, seed=4), source='exact: first'),
               'second': exact_scores(tiny, *tied_vectors(tiny, seed=5), source='exact: second')}
    report = build_report('lareqa/xquad-r', systems, n_resamples=500, n_bootstrap=200)
    out = tmp_path / 'report'
    written = write_report(report, out)
    assert sorted(p.name for p in written) == ['aggregates.png', 'cross_heatmap_first.png',
                                               'cross_heatmap_second.png', 'report.json', 'report.md']
    assert sorted(os.listdir(out)) == sorted(p.name for p in written)  # no temporary leftovers
    data = json.loads((out / 'report.json').read_text())
    md = (out / 'report.md').read_text()
    for name, results in systems.items():
        block = data['systems'][name]
        for kind in ('mono', 'cross', 'multi'):
            assert block['aggregates']['AP'][kind]['macro'] == pytest.approx(aggregate(results, kind)['macro'])
            assert f"{block['aggregates']['AP'][kind]['macro']:.4f}" in md
        assert block['depth']['label'].startswith('AP (full pool')
        assert block['settings']['lareqa/xquad-r/en-de']['n_queries'] == 4
        assert block['rank_distance']['exact']
    assert {(c['a'], c['b'], c['aggregate'], c['value']) for c in data['comparisons']} == {
        ('first', 'second', k, 'AP') for k in ('mono', 'cross', 'multi')} | {('first', 'second', 'multi',
                                                                               'rank_distance')}
    assert all(c['p_randomization_holm'] >= c['p_randomization'] for c in data['comparisons'])
    assert 'score descending, then docid descending' in md and 'lower bound' in md
    for png in ('aggregates.png', 'cross_heatmap_first.png'):
        image = matplotlib.image.imread(out / png)
        assert image.shape[0] > 400 and image.shape[1] > 600
    again = write_report(report, out)  # an existing directory: files replaced, same bytes
    assert [p.read_bytes() for p in again] == [p.read_bytes() for p in written]


def make_tiny_model(path: Path, texts: list[str], hidden: int = 16) -> Path:
    """A 2-layer BERT with a character vocabulary, saved as a model dir with our spec (E5 prefixes)."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules import Normalize, Transformer
    from sentence_transformers.sentence_transformer.modules import Pooling
    from transformers import BertConfig, BertModel, BertTokenizerFast

    from pyserini_hybrid.encoders import ModelSpec, save_spec

    chars = sorted(set(''.join(texts).lower()) - set(' \t\n'))
    vocab = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'] + chars + ['##' + c for c in chars]
    tokenizer = BertTokenizerFast(vocab={t: i for i, t in enumerate(vocab)}, do_lower_case=True, strip_accents=False)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(vocab), hidden_size=hidden, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=2 * hidden, max_position_embeddings=128)
    hf = path.with_name(path.name + '-hf')
    BertModel(config).save_pretrained(hf)
    tokenizer.save_pretrained(hf)
    modules = [Transformer(str(hf), max_seq_length=64), Pooling(hidden, pooling_mode='mean'), Normalize()]
    SentenceTransformer(modules=modules, device='cpu').save(str(path), create_model_card=False)
    save_spec(path, ModelSpec(name=str(path), model=str(path), pooling='mean', normalize=True,
                              query_prefix='query: ', passage_prefix='passage: ', max_length=64))
    return path


@pytest.mark.slow
def test_cli_run_dir_exact_encoder_and_trec_eval_check(tiny, fixtures_dir, tmp_path, monkeypatch, capsys):
    from pyserini_hybrid.eval.__main__ import main
    from pyserini_hybrid.search import dense_runs, embed_pool
    from pyserini_hybrid.encoders import Encoder

    run_dir = tmp_path / 'dense_a'
    run_dir.mkdir()
    runs = dense_runs(tiny, *tied_vectors(tiny, seed=6), list_settings('xquad-r'), hits=20)
    for dataset_id, run in runs.items():
        write_run(run, run_dir / run_filename(dataset_id))
    assert len(find_run_files('lareqa/xquad-r', run_dir)) == 122
    model = make_tiny_model(tmp_path / 'tiny-model', [d.text for d in tiny.docs] + [q.text for q in tiny.queries]
                            + ['query: passage: '])
    monkeypatch.setenv('PYSERINI_HYBRID_DATA', str(fixtures_dir / 'lareqa'))
    monkeypatch.setenv('PYSERINI_HYBRID_VERIFY', '0')
    out = tmp_path / 'report'
    main(['--dataset', 'lareqa/xquad-r', '--runs', f'a={run_dir}', '--exact', f'tiny={model}',
          '--output-dir', str(out), '--check-trec-eval', 'lareqa/xquad-r/en', '--resamples', '1000',
          '--bootstrap', '200', '--threads', '2', '--cache-dir', str(tmp_path / 'cache')])
    captured = capsys.readouterr()
    assert str(out / 'report.md') in captured.out
    data = json.loads((out / 'report.json').read_text())
    assert list(data['systems']) == ['a', 'tiny']
    assert data['systems']['a']['depth']['label'].startswith('AP@20')
    assert data['systems']['tiny']['depth']['full_pool_settings'] == 122
    [check] = data['trec_eval_check']
    assert check['system'] == 'a' and check['setting'] == 'lareqa/xquad-r/en' and check['agree']
    # The file-based numbers are the API's on the same files.
    api = evaluate_system(tiny, find_run_files('lareqa/xquad-r', run_dir))
    assert data['systems']['a']['aggregates']['AP']['cross']['macro'] == pytest.approx(
        aggregate(api, 'cross')['macro'], abs=1e-12)
    # --exact scored the model's own cached vectors over the full pool.
    q_emb, d_emb = embed_pool(tiny, Encoder(str(model)), cache_dir=tmp_path / 'cache')
    exact = exact_scores(tiny, q_emb, d_emb)
    assert data['systems']['tiny']['aggregates']['AP']['multi']['macro'] == pytest.approx(
        aggregate(exact, 'multi')['macro'], abs=1e-12)
    assert data['comparisons'] and (out / 'cross_heatmap_tiny.png').is_file()
    # The default precision (auto) is recorded resolved, for the encoded system only; and printed once.
    from pyserini_hybrid.encoders import resolve_precision

    resolved = resolve_precision('auto')
    assert data['systems']['tiny']['precision'] == resolved and data['systems']['a']['precision'] is None
    assert data['systems']['tiny']['source'] == f'exact: {model} ({resolved})'
    assert f'| tiny | exact: {model} ({resolved}) | {resolved} |' in (out / 'report.md').read_text()
    assert captured.err.count(f'encoder precision: {resolved} (asked: auto)') == 1
    # Run 'a' stops at 20 of 76 candidates: its Multi rank distance is a lower bound, not tested.
    assert data['systems']['a']['rank_distance']['lower_bound_queries'] > 0
    assert [c['value'] for c in data['comparisons']] == ['AP', 'AP', 'AP']
    assert data['skipped_comparisons'][0]['value'] == 'rank_distance'
    assert 'Not compared: rank distance of a vs tiny' in (out / 'report.md').read_text()
