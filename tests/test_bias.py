"""Language-bias correction: shift cannot reorder Mono/Cross, fitting is deterministic, statistics
survive save/load and a FAISS index round trip, missing languages are one-line errors, the NTREX
validation benchmark holds no XQuAD-R text, and the language identifier reads XQuAD-R text."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from pyserini_hybrid.datasets import COLLECTIONS, list_settings, load_pool
from pyserini_hybrid.encoders import (BIAS_METHODS, BiasCorrection, BiasStats, EncoderError, ModelSpec,
                                      bias_stats_for, fit_bias_stats, parse_bias_method)
from pyserini_hybrid.eval import exact_scores
from pyserini_hybrid.search import dense_runs
from conftest import REPO, build_tiny_bert

LANGS = COLLECTIONS['xquad-r']


@pytest.fixture(scope='module')
def fixture_pool(fixtures_dir):
    return load_pool('xquad-r', data_dir=fixtures_dir / 'lareqa', verify=False)


def _planted(pool, seed=0, dim=16):
    """Unit vectors with a strong per-language offset (the bias), plus exact duplicates and near-ties."""
    rng = np.random.default_rng(seed)
    offset = {l: rng.normal(size=dim) * 0.8 for l in LANGS}
    q = np.stack([rng.normal(size=dim) + offset[x.lang] for x in pool.queries])
    d = np.stack([rng.normal(size=dim) + offset[x.lang] for x in pool.docs])
    d[1] = d[0]                                  # identical vectors tie exactly
    d[2] = d[0] + 1e-7                           # a near-tie that rounding to 6 decimals may merge
    unit = lambda x: (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)  # noqa: E731
    return unit(q), unit(d)


def _stats_from(pool, q, d):
    """Statistics from the vectors themselves (what fit_bias_stats computes from embedded text)."""
    means = {s: np.stack([v[[i for i, x in enumerate(items) if x.lang == l]].mean(0) for l in LANGS])
             for s, v, items in (('query', q, pool.queries), ('passage', d, pool.docs))}
    comps = {}
    for s, v, items in (('query', q, pool.queries), ('passage', d, pool.docs)):
        comps[s] = np.stack([np.linalg.svd(v[[i for i, x in enumerate(items) if x.lang == l]],
                                           full_matrices=False)[2][:2] for l in LANGS])
    return BiasStats(LANGS, {k: v.astype(np.float32) for k, v in means.items()},
                     {k: v.astype(np.float32) for k, v in comps.items()}, {'source': 'test', 'version': 1})


def test_shift_keeps_every_mono_and_cross_ranking_and_changes_multi(fixture_pool):
    q, d = _planted(fixture_pool)
    shift = BiasCorrection('shift', _stats_from(fixture_pool, q, d))
    settings = list_settings('xquad-r')
    depth = len(fixture_pool.docs)
    plain = dense_runs(fixture_pool, q, d, settings, hits=depth)
    fixed = dense_runs(fixture_pool, q, d, settings, hits=depth, correction=shift)
    one_language = [s.dataset_id for s in settings if s.kind in ('mono', 'cross')]
    assert len(one_language) == 121
    for dataset_id in one_language:
        assert [h[0] for hits in fixed[dataset_id].values() for h in hits] == \
               [h[0] for hits in plain[dataset_id].values() for h in hits], dataset_id
    assert fixed['lareqa/xquad-r'] != plain['lareqa/xquad-r']
    # The same through exact scoring: identical per-query AP on Mono/Cross, a better Multi.
    a = exact_scores(fixture_pool, q, d, settings)
    b = exact_scores(fixture_pool, q, d, settings, correction=shift)
    for dataset_id in one_language:
        assert b[dataset_id].per_query == a[dataset_id].per_query
    assert b['lareqa/xquad-r'].mean('AP') > a['lareqa/xquad-r'].mean('AP')
    multi_a, multi_b = a['lareqa/xquad-r'].rank_distance, b['lareqa/xquad-r'].rank_distance
    assert np.mean(list(multi_b.values())) < np.mean(list(multi_a.values()))


def test_shift_is_a_per_language_constant_and_center_lir_lsar_renormalise(fixture_pool):
    q, d = _planted(fixture_pool, seed=1)
    stats = _stats_from(fixture_pool, q, d)
    q_langs = [x.lang for x in fixture_pool.queries]
    d_langs = [x.lang for x in fixture_pool.docs]
    shifted = BiasCorrection('shift', stats).docs(d, d_langs)
    de = [i for i, l in enumerate(d_langs) if l == 'de']
    # every German document moved by the German mean: score differences within German are unchanged
    diff = (q @ d[de].T) - (q @ shifted[de].T)
    assert np.allclose(diff, diff[:, :1], atol=1e-6)
    assert np.array_equal(BiasCorrection('shift', stats).queries(q, q_langs), q)
    for method in ('center', 'lir', 'lsar'):
        fix = BiasCorrection(method, stats, rank=2)
        for x in (fix.queries(q, q_langs), fix.docs(d, d_langs)):
            assert np.allclose(np.linalg.norm(x, axis=1), 1, atol=1e-5)
    # lsar needs no language: one projection for all, and the language means lose their spread
    lsar = BiasCorrection('lsar', stats, rank=len(LANGS) - 1)
    assert np.array_equal(lsar.docs(d), lsar.docs(d, d_langs))
    means = np.stack([lsar.docs(d)[[i for i, l in enumerate(d_langs) if l == x]].mean(0) for x in LANGS])
    raw = np.stack([d[[i for i, l in enumerate(d_langs) if l == x]].mean(0) for x in LANGS])
    assert np.linalg.norm(means - means.mean(0), axis=1).mean() < 0.5 * np.linalg.norm(raw - raw.mean(0), axis=1).mean()


def test_bad_corrections_are_one_line_errors(fixture_pool):
    q, d = _planted(fixture_pool)
    stats = _stats_from(fixture_pool, q, d)
    with pytest.raises(EncoderError, match=r"^bias statistics have no language 'xx' \(fitted for ar, de"):
        BiasCorrection('center', stats).queries(q[:1], ['xx'])
    with pytest.raises(EncoderError, match="unknown bias correction 'median'"):
        BiasCorrection('median', stats)
    with pytest.raises(EncoderError, match='needs fitted statistics'):
        BiasCorrection('shift')
    with pytest.raises(EncoderError, match='rank for lir must be in 1..2'):
        BiasCorrection('lir', stats, rank=5)
    with pytest.raises(EncoderError, match='rank for lsar must be in 1..20'):
        BiasCorrection('lsar', stats, rank=21)
    with pytest.raises(EncoderError, match='needs the language of every passage text'):
        BiasCorrection('shift', stats).docs(d)
    assert parse_bias_method('lsar:8') == ('lsar', 8) and parse_bias_method('none') == ('none', None)
    with pytest.raises(EncoderError, match='only lir and lsar take a rank'):
        parse_bias_method('shift:2')
    assert set(BIAS_METHODS) == {'none', 'shift', 'center', 'lir', 'lsar'}


@pytest.fixture(scope='module')
def tiny(tmp_path_factory, fixture_pool):
    texts = [x.text for x in fixture_pool.docs] + [x.text for x in fixture_pool.queries]
    spec = ModelSpec(name='tiny', model='tiny', query_prefix='query: ', passage_prefix='passage: ', max_length=64)
    return build_tiny_bert(tmp_path_factory.mktemp('tiny_bias'), texts, spec, vocab_size=800)


@pytest.mark.slow
def test_fitted_twice_identical_saved_beside_the_model_and_reloaded(tiny, fixture_pool, tmp_path, monkeypatch):
    from pyserini_hybrid.encoders import Encoder
    from pyserini_hybrid.encoders._bias import bias_texts

    monkeypatch.setenv('PYSERINI_HYBRID_CACHE', str(tmp_path / 'cache'))
    encoder = Encoder(str(tiny), precision='fp32')
    texts = bias_texts('docs', LANGS, pool=fixture_pool)
    assert sorted(texts) == sorted(LANGS) and all(texts.values())
    one, two = fit_bias_stats(encoder, texts, 'docs'), fit_bias_stats(encoder, texts, 'docs')
    for side in ('query', 'passage'):
        assert np.array_equal(one.mean[side], two.mean[side])
        assert np.array_equal(one.components[side], two.components[side])
    saved = bias_stats_for(encoder, 'docs', pool=fixture_pool)
    files = list(tiny.glob('bias-docs-xquad-r-*.npz'))
    assert len(files) == 1, 'a trained model keeps its statistics in its own directory'
    loaded = BiasStats.load(files[0])
    assert loaded.langs == saved.langs == LANGS and loaded.meta['fingerprint'] == encoder.fingerprint
    assert np.array_equal(loaded.mean['passage'], one.mean['passage'])
    assert bias_stats_for(encoder, 'docs', pool=fixture_pool).meta == loaded.meta   # read back, not refitted
    broken = tmp_path / 'broken.npz'
    broken.write_bytes(b'not an npz')
    with pytest.raises(EncoderError, match='not a bias statistics file'):
        BiasStats.load(broken)


@pytest.mark.slow
def test_shift_fits_the_passage_side_only_and_a_later_method_adds_the_query_side(tiny, fixture_pool, tmp_path,
                                                                                 monkeypatch):
    import shutil

    from pyserini_hybrid.encoders import Encoder, load_bias_correction

    monkeypatch.setenv('PYSERINI_HYBRID_CACHE', str(tmp_path / 'cache'))
    model = shutil.copytree(tiny, tmp_path / 'model', ignore=shutil.ignore_patterns('bias-*'))   # no saved statistics
    encoder = Encoder(str(model), precision='fp32')
    calls = []
    for side in ('queries', 'passages'):
        real = getattr(encoder, f'encode_{side}')
        monkeypatch.setattr(encoder, f'encode_{side}',
                            lambda texts, *a, _real=real, _side=side, **k: calls.append(_side) or _real(texts, *a, **k))
    shift = load_bias_correction(encoder, 'shift', source='docs', pool=fixture_pool)
    assert set(calls) == {'passages'} and shift.stats.sides == ('passage',)
    path = next(model.glob('bias-docs-xquad-r-*.npz'))
    assert BiasStats.load(path).sides == ('passage',)
    with pytest.raises(EncoderError, match='needs query-side statistics'):
        BiasCorrection('lir', BiasStats.load(path))
    calls.clear()
    lir = load_bias_correction(encoder, 'lir', source='docs', pool=fixture_pool)
    assert set(calls) == {'queries'}, 'the passage side is kept, not embedded again'
    merged = BiasStats.load(path)
    assert merged.sides == ('query', 'passage') == lir.stats.sides
    assert np.array_equal(merged.mean['passage'], shift.stats.mean['passage'])
    # the merged file equals one fitted for both sides at once
    from pyserini_hybrid.encoders._bias import bias_texts

    both = fit_bias_stats(encoder, bias_texts('docs', LANGS, pool=fixture_pool), 'docs')
    for side in ('query', 'passage'):
        assert np.array_equal(merged.mean[side], both.mean[side])
        assert np.array_equal(merged.components[side], both.components[side])
    calls.clear()
    load_bias_correction(encoder, 'shift', source='docs', pool=fixture_pool)
    assert calls == [], 'read back, not refitted'


@pytest.mark.slow
def test_correction_survives_a_faiss_index_round_trip(tiny, fixture_pool, tmp_path, monkeypatch):
    from pyserini.search.faiss import FaissSearcher

    from pyserini_hybrid.encoders import Encoder, HybridDocumentEncoder, HybridQueryEncoder, load_bias_correction
    from pyserini_hybrid.search import dense_search, write_faiss_index

    monkeypatch.setenv('PYSERINI_HYBRID_CACHE', str(tmp_path / 'cache'))
    encoder = Encoder(str(tiny), precision='fp32')
    fix = load_bias_correction(encoder, 'center', source='docs', pool=fixture_pool)
    docs, queries = fixture_pool.docs, fixture_pool.queries
    d_vec = HybridDocumentEncoder(encoder, bias_correction=fix).encode([x.text for x in docs],
                                                                       langs=[x.lang for x in docs])
    write_faiss_index(tmp_path / 'index', d_vec, [x.doc_id for x in docs], fix)
    assert json.loads((tmp_path / 'index' / 'bias.json').read_text())['method'] == 'center'
    searcher = FaissSearcher(str(tmp_path / 'index'), HybridQueryEncoder(encoder, bias_correction=fix, lang='en'))
    english = [x for x in queries if x.lang == 'en']
    q_vec = fix.queries(encoder.encode_queries([x.text for x in english]), ['en'] * len(english))
    expected = dense_search(q_vec, fix.docs(encoder.encode_passages([x.text for x in docs]), [x.lang for x in docs]),
                            [x.query_id for x in english], [x.doc_id for x in docs], hits=5)
    for query in english:
        hits = searcher.search(query.text, k=5)
        assert [h.docid for h in hits][:3] == [d for d, _ in expected[query.query_id]][:3]
        assert np.allclose([h.score for h in hits], [s for _, s in expected[query.query_id]], atol=1e-5)


@pytest.mark.slow
def test_validation_benchmark_holds_no_xquad_text_and_is_never_trained_on(lareqa_dir, train_dir):
    from pyserini_hybrid.datasets import is_validation_document, load_validation_pool, validation_settings
    from pyserini_hybrid.train import TRAIN_LANGUAGES, load_source, normalize_text

    pool = load_validation_pool(train_dir)
    assert len(pool.langs) == 11 and len(validation_settings(pool)) == 122
    assert all(len(rel) == 11 for rel in pool.qrels.values())
    xquad = load_pool('xquad-r')
    evaluation = {normalize_text(x.text) for x in xquad.docs} | {normalize_text(x.text) for x in xquad.queries}
    validation = {normalize_text(x.text) for x in pool.docs} | {normalize_text(x.text) for x in pool.queries}
    assert len(validation) > 4000 and not (validation & evaluation)
    # queries and candidates are different lines (even / odd positions): only the few sentences NTREX
    # repeats verbatim in two places can be both
    shared = {x.text for x in pool.queries} & {x.text for x in pool.docs}
    assert len(shared) < 0.01 * len(pool.queries), sorted(shared)[:5]
    trained = load_source('ntrex', train_dir, TRAIN_LANGUAGES)
    trained_texts = set(trained.queries[:, trained.langs.index('en')]) | set(trained.positives[:, trained.langs.index('en')])
    english = {x.text for x in pool.docs if x.lang == 'en'} | {x.text for x in pool.queries if x.lang == 'en'}
    assert not (english & trained_texts)
    docs = (train_dir / 'ntrex' / 'DOCUMENT_IDS.tsv').read_text().split('\n')
    held = {d for d in docs if d and is_validation_document(d)}
    assert 25 <= len(held) <= 35


@pytest.mark.slow
def test_language_identifier_reads_xquad_text(lareqa_dir):
    from pyserini_hybrid.encoders import identify_languages

    pool = load_pool('xquad-r')
    sample = [x for i, x in enumerate(pool.queries) if i % 20 == 0]
    guessed = identify_languages([x.text for x in sample], LANGS)
    accuracy = np.mean([g == x.lang for g, x in zip(guessed, sample)])
    assert accuracy >= 0.97, accuracy
    by_lang = {l: np.mean([g == x.lang for g, x in zip(guessed, sample) if x.lang == l]) for l in LANGS}
    assert min(by_lang.values()) >= 0.9, by_lang


@pytest.mark.slow
def test_cli_rejects_a_bad_correction_before_any_work(tmp_path):
    out = tmp_path / 'run.trec'
    for args in (['-m', 'pyserini_hybrid.search', '--dataset', 'lareqa/xquad-r/en', '--retriever', 'dense',
                  '--bias-correction', 'median', '--output', str(out)],
                 ['-m', 'pyserini_hybrid.eval', '--dataset', 'lareqa/xquad-r', '--exact', 'me5-small-offline',
                  '--bias-correction', 'shift:3', '--output-dir', str(tmp_path / 'report')]):
        proc = subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith('error: ') and 'bias correction' in lines[0], proc.stderr
    assert not out.exists() and not (tmp_path / 'report').exists()


@pytest.mark.slow
def test_weight_interpolation_mixes_tensors_and_loads(tiny, tmp_path):
    import shutil

    import torch
    from safetensors.torch import load_file, save_file

    from pyserini_hybrid.encoders import Encoder
    from pyserini_hybrid.train.interpolate import interpolate_weights, main

    tuned = tmp_path / 'tuned'
    shutil.copytree(tiny, tuned)
    weights = load_file(str(tuned / 'model.safetensors'))
    torch.manual_seed(1)
    moved = {k: (v + torch.randn_like(v)) if v.is_floating_point() else v for k, v in weights.items()}
    save_file(moved, str(tuned / 'model.safetensors'))
    half = interpolate_weights(str(tiny), str(tuned), 0.5, tmp_path / 'half')
    mixed = load_file(str(half / 'model.safetensors'))
    for key, value in weights.items():
        if value.is_floating_point():
            assert torch.allclose(mixed[key], (value + moved[key]) / 2, atol=1e-6), key
    assert json.loads((half / 'interpolation.json').read_text())['weight'] == 0.5
    texts = ['a small test sentence', 'another one']
    ends = [interpolate_weights(str(tiny), str(tuned), w, tmp_path / f'w{w}') for w in (0.0, 1.0)]
    assert np.allclose(Encoder(str(ends[0]), precision='fp32').encode_passages(texts), Encoder(str(tiny), precision='fp32').encode_passages(texts), atol=1e-6)
    assert np.allclose(Encoder(str(ends[1]), precision='fp32').encode_passages(texts), Encoder(str(tuned), precision='fp32').encode_passages(texts), atol=1e-6)
    assert main(['--base', str(tiny), '--tuned', str(tuned), '--weight', '3.5', '--output', str(tmp_path / 'bad')]) == 2
    assert not (tmp_path / 'bad').exists()
