"""Dense search: top-k order, per-setting slices of one pool, the embedding cache, FAISS layout, CLI."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import pyserini_hybrid  # noqa: F401  (Java set-up first)
from pyserini_hybrid._trec import read_run, write_run
from pyserini_hybrid.datasets import list_settings, load_pool, run_filename
from pyserini_hybrid.search import (dense_runs, dense_search, embed_pool, embed_texts, fuse_runs, top_k,
                                    write_faiss_index)


def _reference_order(row, k):
    return sorted(range(len(row)), key=lambda c: (-row[c], c))[:k]


@pytest.mark.parametrize('k', [1, 3, 7, 8, 50])
def test_top_k_is_score_desc_then_column_asc_even_for_ties_at_the_cut(k):
    rng = np.random.default_rng(k)
    scores = rng.integers(0, 4, size=(40, 8)).astype(np.float32)  # many ties
    idx, vals = top_k(scores, k)
    assert idx.shape == (40, min(k, 8))
    for row, got, got_vals in zip(scores, idx, vals):
        expected = _reference_order(row.tolist(), k)
        assert got.tolist() == expected
        assert got_vals.tolist() == [row[c] for c in expected]


@pytest.fixture(scope='module')
def xquad(lareqa_dir):
    return load_pool('xquad-r')


@pytest.mark.slow
def test_dense_runs_score_each_setting_on_its_own_slice(xquad, tmp_path):
    rng = np.random.default_rng(0)
    dim = 16
    q_emb = rng.standard_normal((len(xquad.queries), dim)).astype(np.float32)
    d_emb = rng.standard_normal((len(xquad.docs), dim)).astype(np.float32)
    q_emb /= np.linalg.norm(q_emb, axis=1, keepdims=True)  # cosine scores, as the encoders give
    d_emb /= np.linalg.norm(d_emb, axis=1, keepdims=True)
    # Two German candidates with the same vector: their tie must go to the smaller docid.
    de = [i for i, d in enumerate(xquad.docs) if d.lang == 'de']
    d_emb[de[5]] = d_emb[de[7]] = q_emb[xquad.query_indices('lareqa/xquad-r/de')[0]]
    settings = ['lareqa/xquad-r/de', 'lareqa/xquad-r/en-de', 'lareqa/xquad-r']
    runs = dense_runs(xquad, q_emb, d_emb, settings, hits=5)
    assert list(runs) == settings
    position = {d.doc_id: i for i, d in enumerate(xquad.docs)}
    qpos = {q.query_id: i for i, q in enumerate(xquad.queries)}
    for dataset_id in settings:
        run = runs[dataset_id]
        assert set(run) == set(xquad.qrels_for(dataset_id))
        corpus = [xquad.docs[i].doc_id for i in xquad.doc_indices(dataset_id)]
        for qid in list(run)[:20]:
            # Independent brute force: every corpus doc, Python sort.
            scored = [(d, round(float(q_emb[qpos[qid]] @ d_emb[position[d]]), 6)) for d in corpus]
            expected = sorted(scored, key=lambda h: (-h[1], h[0]))[:5]
            assert [d for d, _ in run[qid]] == [d for d, _ in expected]
            assert np.allclose([s for _, s in run[qid]], [s for _, s in expected], atol=1e-4)
    first = xquad.queries[xquad.query_indices('lareqa/xquad-r/de')[0]].query_id
    top_two = [d for d, _ in runs['lareqa/xquad-r/de'][first][:2]]
    assert top_two == sorted([xquad.docs[de[5]].doc_id, xquad.docs[de[7]].doc_id])
    assert all(d.startswith('de_') for hits in runs['lareqa/xquad-r/en-de'].values() for d, _ in hits)
    assert all(q.endswith('_en') for q in runs['lareqa/xquad-r/en-de'])
    assert len(runs['lareqa/xquad-r']) == len(xquad.queries)
    # Same vectors, same bytes.
    again = dense_runs(xquad, q_emb, d_emb, settings[:1], hits=5)
    write_run(runs[settings[0]], tmp_path / 'a.trec')
    write_run(again[settings[0]], tmp_path / 'b.trec')
    assert (tmp_path / 'a.trec').read_bytes() == (tmp_path / 'b.trec').read_bytes()


class _Counting:
    """The real encoder, counting the texts it is asked to encode."""

    def __init__(self, encoder):
        self.inner = encoder
        self.encoded = 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def encode_queries(self, texts, show_progress=False):
        self.encoded += len(texts)
        return self.inner.encode_queries(texts)

    def encode_passages(self, texts, show_progress=False):
        self.encoded += len(texts)
        return self.inner.encode_passages(texts)


@pytest.fixture(scope='module')
def encoder():
    from pyserini_hybrid.encoders import Encoder
    return Encoder('me5-small-offline', batch_size=16, precision='fp32')


@pytest.mark.slow
def test_cache_encodes_each_text_once_and_survives_partial_and_bad_chunks(encoder, xquad, tmp_path):
    texts = [d.text for d in xquad.docs[::700]][:19]
    texts = texts + texts[:3]  # repeats are encoded once
    counting = _Counting(encoder)
    first = embed_texts(counting, texts[:10], 'passage', tmp_path)
    assert counting.encoded == 10
    full = embed_texts(counting, texts, 'passage', tmp_path)  # a "killed" run completed: only the rest
    assert counting.encoded == 19
    assert np.array_equal(full[:10], first)
    direct = encoder.encode_passages(texts)
    assert np.allclose(full, direct, atol=1e-4)
    again = embed_texts(counting, texts, 'passage', tmp_path)
    assert counting.encoded == 19 and np.array_equal(again, full)

    # Same text as a query: another key (another prefix), another vector.
    as_query = embed_texts(counting, texts[:2], 'query', tmp_path)
    assert counting.encoded == 21 and not np.allclose(as_query, full[:2])

    # A damaged chunk is ignored with a warning; its texts are encoded again.
    chunks = sorted((tmp_path / encoder.fingerprint / 'passage').glob('chunk-*.npz'))
    assert len(chunks) == 2
    with np.load(chunks[0]) as chunk:
        damaged = len(chunk['keys'])
    assert damaged in (9, 10)
    data = chunks[0].read_bytes()
    chunks[0].write_bytes(data[:len(data) // 2])
    with pytest.warns(RuntimeWarning, match='ignoring unreadable embedding cache chunk'):
        repaired = embed_texts(counting, texts, 'passage', tmp_path)
    assert counting.encoded == 21 + damaged and np.allclose(repaired, full, atol=1e-5)
    # No temporary file is ever left next to the chunks.
    assert not list((tmp_path / encoder.fingerprint / 'passage').glob('.*'))


@pytest.mark.slow
def test_faiss_index_in_pyserini_layout_answers_like_dense_search(encoder, xquad, tmp_path):
    import faiss
    from pyserini.search.faiss import FaissSearcher

    from pyserini_hybrid.encoders import HybridQueryEncoder

    docs = [d for d in xquad.docs if d.lang == 'en'][:150]
    queries = [q for q in xquad.queries if q.lang == 'en'][:6]
    vectors = embed_texts(encoder, [d.text for d in docs], 'passage', tmp_path / 'cache')
    index_dir = write_faiss_index(tmp_path / 'index', vectors, [d.doc_id for d in docs])
    assert (index_dir / 'docid').read_text().split() == [d.doc_id for d in docs]
    assert faiss.read_index(str(index_dir / 'index')).ntotal == len(docs)

    searcher = FaissSearcher(str(index_dir), HybridQueryEncoder(encoder))
    q_emb = embed_texts(encoder, [q.text for q in queries], 'query', tmp_path / 'cache')
    ours = dense_search(q_emb, vectors, [q.query_id for q in queries], [d.doc_id for d in docs], hits=5)
    batch = searcher.batch_search([q.text for q in queries], [q.query_id for q in queries], k=5, threads=1)
    for q in queries:
        assert [h.docid for h in batch[q.query_id]] == [d for d, _ in ours[q.query_id]]
        assert np.allclose([h.score for h in batch[q.query_id]], [s for _, s in ours[q.query_id]], atol=1e-4)
        assert [h.docid for h in searcher.search(q.text, k=5)] == [d for d, _ in ours[q.query_id]]


def test_build_faiss_index_and_embed_pool_share_the_cache(encoder, tiny_xquad, tmp_path):
    import faiss

    from pyserini_hybrid.search import build_faiss_index

    counting = _Counting(encoder)
    q_emb, d_emb = embed_pool(tiny_xquad, counting, tmp_path / 'cache')
    assert q_emb.shape == (len(tiny_xquad.queries), encoder.dim) and d_emb.shape == (len(tiny_xquad.docs), encoder.dim)
    encoded = counting.encoded
    assert encoded == len({d.text for d in tiny_xquad.docs}) + len({q.text for q in tiny_xquad.queries})
    index_dir = build_faiss_index('lareqa/xquad-r/de', counting, tmp_path / 'de-index', cache_dir=tmp_path / 'cache')
    assert counting.encoded == encoded  # the German corpus came from the pool's cached vectors
    de = tiny_xquad.doc_indices('lareqa/xquad-r/de')
    assert (index_dir / 'docid').read_text().split() == [tiny_xquad.docs[i].doc_id for i in de]
    index = faiss.read_index(str(index_dir / 'index'))
    assert np.allclose(index.reconstruct_n(0, index.ntotal), d_emb[de], atol=1e-6)


@pytest.mark.slow
def test_cli_all_settings_dense_bm25_and_fusion(tiny_xquad, tmp_path, capsys):
    from pyserini_hybrid.search.__main__ import main

    settings = [s.dataset_id for s in list_settings('xquad-r')]
    common = ['--dataset', 'lareqa/xquad-r', '--all-settings', '--index-root', str(tmp_path / 'idx'),
              '--cache-dir', str(tmp_path / 'cache'), '--hits', '3']
    assert main(common + ['--retriever', 'dense', '--output', str(tmp_path / 'dense')]) == 0
    assert main(common + ['--retriever', 'bm25', '--output', str(tmp_path / 'bm25')]) == 0
    assert main(common + ['--retriever', 'fusion', '--runs-dense', str(tmp_path / 'dense'), '--runs-bm25',
                          str(tmp_path / 'bm25'), '--output', str(tmp_path / 'fusion')]) == 0
    for kind in ('dense', 'bm25', 'fusion'):
        assert sorted(p.name for p in (tmp_path / kind).iterdir()) == sorted(run_filename(s) for s in settings)
    for dataset_id in ('lareqa/xquad-r/de', 'lareqa/xquad-r/en-de', 'lareqa/xquad-r'):
        name = run_filename(dataset_id)
        dense, bm25, fused = (read_run(tmp_path / kind / name) for kind in ('dense', 'bm25', 'fusion'))
        assert set(dense) == set(tiny_xquad.qrels_for(dataset_id))
        assert all(len(h) <= 3 for h in dense.values())
        expected = fuse_runs([dense, bm25], method='rrf', rrf_k=60, hits=3)
        assert fused == {q: [(d, round(s, 6)) for d, s in h] for q, h in expected.items()}
    # Deterministic bytes: BM25 again (indexes reused) writes the same files.
    first = {p.name: p.read_bytes() for p in (tmp_path / 'bm25').iterdir()}
    assert main(common + ['--retriever', 'bm25', '--output', str(tmp_path / 'bm25')]) == 0
    assert {p.name: p.read_bytes() for p in (tmp_path / 'bm25').iterdir()} == first


def test_cli_task_fills_the_instruction_template_of_the_encoder(tiny_xquad, instruction_model, tmp_path, capsys):
    from pyserini_hybrid.encoders import Encoder
    from pyserini_hybrid.search.__main__ import main
    from pyserini_hybrid.train._instructions import SEARCH_TASK, TASK_INSTRUCTIONS

    setting = 'lareqa/xquad-r/en'
    common = ['--dataset', setting, '--retriever', 'dense', '--encoder', str(instruction_model),
              '--cache-dir', str(tmp_path / 'cache'), '--hits', '3']
    assert main(common + ['--task', SEARCH_TASK, '--output', str(tmp_path / 'run.trec')]) == 0
    encoder = Encoder(str(instruction_model), task=SEARCH_TASK)
    # the default precision, auto, resolved (the cache below is keyed by it) and said once
    assert capsys.readouterr().err.count(f'encoder precision: {encoder.precision} (asked: auto') == 1
    assert encoder.query_prefix == f'Instruct: {SEARCH_TASK}\nQuery: '
    # the vectors were cached under the fingerprint of the encoder with that task (it hashes the prefix)
    assert [p.name for p in (tmp_path / 'cache').iterdir()] == [encoder.fingerprint]
    # and the run holds the top scores of that encoder's query vectors, whatever the order of ties
    qi, di = tiny_xquad.query_indices(setting), tiny_xquad.doc_indices(setting)
    scores = encoder.encode_queries([tiny_xquad.queries[i].text for i in qi]) @ \
        encoder.encode_passages([tiny_xquad.docs[i].text for i in di]).T
    column = {tiny_xquad.docs[i].doc_id: c for c, i in enumerate(di)}
    run = read_run(tmp_path / 'run.trec')
    assert set(run) == {tiny_xquad.queries[i].query_id for i in qi}
    for row, i in enumerate(qi):
        hits = run[tiny_xquad.queries[i].query_id]
        assert np.allclose([s for _, s in hits], [scores[row, column[d]] for d, _ in hits], atol=1e-5)
        assert np.allclose([s for _, s in hits], np.sort(scores[row])[::-1][:3], atol=1e-5)
    # another task is another query encoding: its own cache entry and other query vectors
    other = TASK_INSTRUCTIONS['tatoeba']
    assert main(common + ['--task', other, '--output', str(tmp_path / 'other.trec')]) == 0
    assert len(list((tmp_path / 'cache').iterdir())) == 2
    query = [tiny_xquad.queries[qi[0]].text]
    assert not np.allclose(Encoder(str(instruction_model), task=other).encode_queries(query),
                           encoder.encode_queries(query), atol=1e-4)


def test_rrf_and_interpolation_follow_their_formulas():
    dense = {'q': [('a', 0.9), ('b', 0.8), ('c', 0.1)]}
    bm25 = {'q': [('c', 12.0), ('a', 3.0)], 'r': [('x', 1.0)]}
    rrf = fuse_runs([dense, bm25], method='rrf', rrf_k=60, hits=10)
    expected = {'a': 1 / 61 + 1 / 62, 'b': 1 / 62, 'c': 1 / 63 + 1 / 61}
    assert [d for d, _ in rrf['q']] == sorted(expected, key=lambda d: (-expected[d], d))
    assert np.allclose([s for _, s in rrf['q']], sorted(expected.values(), reverse=True))
    assert rrf['r'] == [('x', pytest.approx(1 / 61))]
    inter = fuse_runs([dense, bm25], method='interpolation', alpha=0.25, hits=2)
    values = {'a': 0.25 * 0.9 + 0.75 * 3.0, 'b': 0.25 * 0.8, 'c': 0.25 * 0.1 + 0.75 * 12.0}
    assert inter['q'] == [('c', pytest.approx(values['c'])), ('a', pytest.approx(values['a']))]
    with pytest.raises(ValueError, match='exactly two runs'):
        fuse_runs([dense, bm25, dense], method='interpolation')
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        assert fuse_runs([dense, {}], method='rrf', hits=1) == {'q': [('a', pytest.approx(1 / 61))]}
