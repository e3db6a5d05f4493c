"""Collections beyond LAReQA: a LAReQA setting exported as JsonCollection + topics + qrels and searched
through the generic path ranks as the LAReQA path does (Mono, Cross, Multi); ``encode`` with two shards
and a merge gives the index of one shard; the index loads in Pyserini's FaissSearcher with the
project's QueryEncoder; a user's BM25 run fuses with the dense run; an ir_datasets id that is not
LAReQA (registered here) is encoded and searched. All on the hand-made XQuAD-R fixture and a tiny
random-weight encoder, so that nothing here takes long."""
from __future__ import annotations

import json

import numpy as np
import pytest

import pyserini_hybrid  # noqa: F401  (Java set-up first)
from conftest import build_tiny_bert
from pyserini_hybrid._trec import read_run
from pyserini_hybrid.datasets import Collection, CollectionError, export_setting, load_collection, read_topics
from pyserini_hybrid.encoders import ModelSpec
from pyserini_hybrid.search import fuse_runs

SETTINGS = ('lareqa/xquad-r/en', 'lareqa/xquad-r/en-de', 'lareqa/xquad-r')   # Mono, Cross, Multi


@pytest.fixture(scope='module')
def tiny_model(tmp_path_factory, fixtures_dir):
    texts = []
    for path in sorted((fixtures_dir / 'lareqa' / 'xquad-r').glob('*.json')):
        for article in json.loads(path.read_text(encoding='utf-8'))['data']:
            for paragraph in article['paragraphs']:
                texts += paragraph['sentences'] + [qa['question'] for qa in paragraph['qas']]
    spec = ModelSpec(name='tiny', model='tiny', query_prefix='query: ', passage_prefix='passage: ', max_length=64)
    return build_tiny_bert(tmp_path_factory.mktemp('tiny_collection'), texts, spec, vocab_size=800)


def _search(argv) -> None:
    from pyserini_hybrid.search.__main__ import main

    assert main([str(a) for a in argv]) == 0


def _encode(argv) -> None:
    from pyserini_hybrid.encode.__main__ import main

    assert main([str(a) for a in argv]) == 0


def _ranking(run):
    """Docids per query in score order, ties broken by docid; scores to 5 decimals (FAISS vs numpy)."""
    return {q: [d for d, _ in sorted(hits, key=lambda h: (-round(h[1], 5), h[0]))] for q, hits in run.items()}


def test_exported_lareqa_searched_generically_ranks_as_the_lareqa_path(tiny_xquad, tiny_model, tmp_path):
    common = ['--retriever', 'dense', '--encoder', tiny_model, '--precision', 'fp32', '--hits', '1000',
              '--cache-dir', tmp_path / 'cache']
    for dataset_id in SETTINGS:
        name = dataset_id.replace('/', '.')
        folder = export_setting(dataset_id, tmp_path / name)
        collection = load_collection(folder, folder / 'topics.tsv', folder / 'qrels.txt')
        assert collection.qrels_for() == tiny_xquad.qrels_for(dataset_id)
        assert [d.doc_id for d in collection.docs] == [tiny_xquad.docs[i].doc_id
                                                       for i in tiny_xquad.doc_indices(dataset_id)]
        _search(common + ['--dataset', dataset_id, '--output', tmp_path / f'{name}.lareqa.trec'])
        # the folder holds corpus.jsonl only as JSON; topics.tsv / qrels.txt beside it are not documents
        _search(common + ['--dataset', folder, '--topics', folder / 'topics.tsv',
                          '--output', tmp_path / f'{name}.generic.trec'])
        lareqa, generic = (read_run(tmp_path / f'{name}.{kind}.trec') for kind in ('lareqa', 'generic'))
        assert set(lareqa) == set(tiny_xquad.qrels_for(dataset_id)) and len(lareqa) > 0
        assert generic == lareqa, dataset_id


def test_encode_two_shards_and_merge_give_the_index_of_one_shard(tiny_xquad, tiny_model, tmp_path):
    import faiss

    folder = export_setting('lareqa/xquad-r', tmp_path / 'multi')
    base = ['--corpus', folder, '--encoder', tiny_model, '--precision', 'fp32', '--quiet']
    _encode(base + ['--index', tmp_path / 'one', '--embeddings', tmp_path / 'one.jsonl',
                    '--cache-dir', tmp_path / 'cache-one'])
    for shard in (0, 1):   # another cache: the shards encode their texts themselves
        _encode(base + ['--index', tmp_path / f'shard{shard}', '--shard-id', shard, '--shard-num', 2,
                        '--cache-dir', tmp_path / 'cache-shards'])
    _encode(['merge', '--shards', tmp_path / 'shard0', tmp_path / 'shard1', '--index', tmp_path / 'merged'])

    docids = [d.doc_id for d in tiny_xquad.docs]
    shard_ids = [(tmp_path / f'shard{s}' / 'docid').read_text().split() for s in (0, 1)]
    assert shard_ids[0] == docids[:len(docids) // 2] and shard_ids[1] == docids[len(docids) // 2:]
    one, merged = (faiss.read_index(str(tmp_path / name / 'index')) for name in ('one', 'merged'))
    assert (tmp_path / 'merged' / 'docid').read_text() == (tmp_path / 'one' / 'docid').read_text()
    assert (tmp_path / 'one' / 'docid').read_text().split() == docids
    assert one.ntotal == merged.ntotal == len(docids) and one.d == merged.d
    assert np.allclose(one.reconstruct_n(0, one.ntotal), merged.reconstruct_n(0, merged.ntotal), atol=1e-6)
    rows = [json.loads(line) for line in (tmp_path / 'one.jsonl').read_text(encoding='utf-8').splitlines()]
    assert [r['id'] for r in rows] == docids
    assert np.allclose([r['vector'] for r in rows], one.reconstruct_n(0, one.ntotal), atol=1e-6)
    # resumable through the embedding cache: a second run over the same cache encodes nothing new
    chunks = sorted(p.name for p in (tmp_path / 'cache-one').rglob('chunk-*.npz'))
    _encode(base + ['--index', tmp_path / 'again', '--cache-dir', tmp_path / 'cache-one'])
    assert sorted(p.name for p in (tmp_path / 'cache-one').rglob('chunk-*.npz')) == chunks
    # an HNSW index over the same vectors (faiss option), loadable as any other
    _encode(['merge', '--shards', tmp_path / 'shard0', tmp_path / 'shard1', '--index', tmp_path / 'hnsw',
             '--index-type', 'hnsw', '--hnsw-m', 8])
    assert isinstance(faiss.read_index(str(tmp_path / 'hnsw' / 'index')), faiss.IndexHNSWFlat)


def test_faiss_searcher_and_fusion_with_a_users_bm25_run(tiny_xquad, tiny_model, tmp_path):
    from pyserini.search.faiss import FaissSearcher

    from pyserini_hybrid.encoders import Encoder, HybridQueryEncoder

    folder = export_setting('lareqa/xquad-r/en-de', tmp_path / 'en-de')
    topics = folder / 'topics.tsv'
    _encode(['--corpus', folder, '--encoder', tiny_model, '--precision', 'fp32', '--index', tmp_path / 'index',
             '--cache-dir', tmp_path / 'cache', '--quiet'])
    common = ['--encoder', tiny_model, '--precision', 'fp32', '--hits', '5', '--cache-dir', tmp_path / 'cache']
    _search(common + ['--dataset', folder, '--topics', topics, '--retriever', 'dense', '--output', tmp_path / 'd.trec'])
    expected = read_run(tmp_path / 'd.trec')

    # Pyserini's own searcher over the encode output, with the project's QueryEncoder
    searcher = FaissSearcher(str(tmp_path / 'index'), HybridQueryEncoder(Encoder(str(tiny_model), precision='fp32')))
    queries = read_topics(topics)
    for query in queries[:5]:
        hits = searcher.search(query.text, k=5)
        assert np.allclose([h.score for h in hits], [s for _, s in expected[query.query_id]], atol=1e-5)
    # the search CLI over the index (FaissSearcher inside) ranks as the dense path
    _search(common + ['--index', tmp_path / 'index', '--topics', topics, '--retriever', 'dense',
                      '--output', tmp_path / 'i.trec'])
    assert _ranking(read_run(tmp_path / 'i.trec')) == _ranking(expected)

    # a user's own BM25 run (as pyserini.search.lucene writes it) fuses with the dense run
    german = [d.doc_id for d in load_collection(folder).docs]
    user = tmp_path / 'user.bm25.trec'
    user.write_text(''.join(f'{q.query_id} Q0 {german[(i + r) % len(german)]} {r + 1} {10.0 - r:.4f} Anserini\n'
                            for i, q in enumerate(queries) for r in range(3)), encoding='utf-8')
    for source in (['--index', tmp_path / 'index'], ['--dataset', folder]):
        out = tmp_path / f'fused.{source[0][2:]}.trec'
        _search(common + source + ['--topics', topics, '--retriever', 'fusion', '--runs-bm25', user, '--output', out])
        dense = read_run(tmp_path / ('i.trec' if source[0] == '--index' else 'd.trec'))
        want = fuse_runs([dense, read_run(user)], method='rrf', rrf_k=60, hits=5)
        got = read_run(out)
        assert got == {q: [(d, round(s, 6)) for d, s in h] for q, h in want.items()}
        assert any(d in dict(read_run(user)[q]) and d not in dict(dense[q]) for q in got for d, _ in got[q])


def _register_tiny_irds(fixtures_dir) -> str:
    """A small non-LAReQA collection registered with ir_datasets by this test (no download)."""
    import ir_datasets
    from ir_datasets.datasets.base import Dataset
    from ir_datasets.formats import TrecQrels, TsvDocs, TsvQueries
    from ir_datasets.util import StringFile

    dataset_id = 'pyserini-hybrid-test/tiny-multilingual'
    if dataset_id not in ir_datasets.registry._registered:
        folder = fixtures_dir / 'tiny_multilingual'
        docs = ''.join(f"{r['id']}\t{r['contents']}\n" for lang in ('de', 'en', 'zh')
                       for r in map(json.loads, (folder / f'{lang}.jsonl').read_text(encoding='utf-8').splitlines()))
        topics = (folder / 'topics.tsv').read_text(encoding='utf-8')
        qrels = ''.join(f"{line.split()[0]} 0 {lang}_{line.split()[0][-1]} 1\n"
                        for line in topics.splitlines() for lang in ('de', 'en', 'zh'))
        ir_datasets.registry.register(dataset_id, Dataset(TsvDocs(StringFile(docs)), TsvQueries(StringFile(topics)),
                                                          TrecQrels(StringFile(qrels), {1: 'answer'})))
    return dataset_id


def test_an_ir_datasets_id_that_is_not_lareqa(fixtures_dir, tiny_model, tmp_path):
    dataset_id = _register_tiny_irds(fixtures_dir)
    collection = load_collection(dataset_id)
    assert isinstance(collection, Collection) and collection.name == dataset_id
    assert len(collection.docs) == 9 and len(collection.queries) == 6
    assert collection.qrels_for()['en_q1'] == {'de_1': 1, 'en_1': 1, 'zh_1': 1}
    assert [s.dataset_id for s in collection.settings] == [dataset_id]
    common = ['--encoder', tiny_model, '--precision', 'fp32', '--hits', '4', '--cache-dir', tmp_path / 'cache']
    _search(common + ['--dataset', dataset_id, '--retriever', 'dense', '--output', tmp_path / 'run.trec'])
    run = read_run(tmp_path / 'run.trec')
    assert set(run) == {q.query_id for q in collection.queries} and all(len(h) == 4 for h in run.values())
    _encode(['--corpus', dataset_id, '--encoder', tiny_model, '--precision', 'fp32', '--index', tmp_path / 'idx',
             '--cache-dir', tmp_path / 'cache', '--quiet'])
    assert (tmp_path / 'idx' / 'docid').read_text().split() == [d.doc_id for d in collection.docs]
    _search(common + ['--index', tmp_path / 'idx', '--topics', fixtures_dir / 'tiny_multilingual' / 'topics.tsv',
                      '--retriever', 'dense', '--output', tmp_path / 'idx.trec'])
    assert _ranking(read_run(tmp_path / 'idx.trec')) == _ranking(run)


def test_topics_formats_and_bad_collections(tmp_path, fixtures_dir):
    rows = [('q1', 'What is it?'), ('q2', 'Wo ist das?')]
    (tmp_path / 't.tsv').write_text(''.join(f'{q}\t{t}\n' for q, t in rows), encoding='utf-8')
    (tmp_path / 't.json').write_text(json.dumps({q: {'title': t} for q, t in rows}), encoding='utf-8')
    (tmp_path / 't.jsonl').write_text(''.join(json.dumps({'qid': q, 'query': t, 'lang': 'en'}) + '\n'
                                              for q, t in rows), encoding='utf-8')
    for name in ('t.tsv', 't.json', 't.jsonl'):
        assert [(q.query_id, q.text) for q in read_topics(tmp_path / name)] == rows
    assert [q.lang for q in read_topics(tmp_path / 't.jsonl')] == ['en', 'en']
    (tmp_path / 'empty.tsv').write_text('\n', encoding='utf-8')
    with pytest.raises(CollectionError, match='empty topics'):
        read_topics(tmp_path / 'empty.tsv')
    with pytest.raises(CollectionError, match='no such topics file'):
        read_topics(tmp_path / 'missing.tsv')
    with pytest.raises(CollectionError, match="unknown collection 'no-such/collection'"):
        load_collection('no-such/collection')
    (tmp_path / 'bad').mkdir()
    (tmp_path / 'bad' / 'a.jsonl').write_text('{"id": "d1", "contents": "x"}\n{"id": "d2"}\n', encoding='utf-8')
    with pytest.raises(CollectionError, match=r"a\.jsonl:2: a document needs 'id' and 'contents'"):
        load_collection(tmp_path / 'bad')
    folder = load_collection(fixtures_dir / 'tiny_multilingual', fixtures_dir / 'tiny_multilingual' / 'topics.tsv',
                             lang='xx')
    assert {d.lang for d in folder.docs} == {'xx'} and len(folder.queries) == 6


@pytest.mark.slow
def test_processes_encode_through_the_sentence_transformers_pool(tiny_xquad, tiny_model, tmp_path):
    """--processes 2: sentence-transformers' multi-process pool gives the vectors of one process."""
    import faiss

    folder = export_setting('lareqa/xquad-r/de', tmp_path / 'de')
    base = ['--corpus', folder, '--encoder', tiny_model, '--precision', 'fp32', '--quiet']
    _encode(base + ['--index', tmp_path / 'one', '--cache-dir', tmp_path / 'c1'])
    _encode(base + ['--index', tmp_path / 'two', '--cache-dir', tmp_path / 'c2', '--processes', 2])
    # the default precision (auto: int8 on most CPUs) runs the workers at fp32, the same vectors
    auto = [a for a in base if a not in ('--precision', 'fp32')]
    _encode(auto + ['--index', tmp_path / 'auto', '--cache-dir', tmp_path / 'c3', '--processes', 2])
    assert (tmp_path / 'auto' / 'index').read_bytes() == (tmp_path / 'two' / 'index').read_bytes()
    one, two = (faiss.read_index(str(tmp_path / n / 'index')) for n in ('one', 'two'))
    assert (tmp_path / 'one' / 'docid').read_text() == (tmp_path / 'two' / 'docid').read_text()
    assert np.allclose(one.reconstruct_n(0, one.ntotal), two.reconstruct_n(0, two.ntotal), atol=1e-5)


def test_bias_correction_of_encode_is_applied_to_the_queries_of_search(tiny_xquad, tiny_model, tmp_path):
    """encode --bias-correction writes bias.json; search --index corrects the queries alike, as the
    generic dense path corrects both sides (statistics from the collection's own documents)."""
    folder = export_setting('lareqa/xquad-r', tmp_path / 'multi')
    topics = tmp_path / 'topics.jsonl'
    qids = set(tiny_xquad.qrels_for('lareqa/xquad-r'))
    topics.write_text(''.join(json.dumps({'qid': q.query_id, 'title': q.text, 'lang': q.lang}) + '\n'
                              for q in tiny_xquad.queries if q.query_id in qids), encoding='utf-8')
    fix = ['--bias-correction', 'center', '--bias-source', 'docs']
    common = ['--encoder', tiny_model, '--precision', 'fp32', '--cache-dir', tmp_path / 'cache']
    _encode(common + ['--corpus', folder, '--index', tmp_path / 'index', '--quiet'] + fix)
    assert json.loads((tmp_path / 'index' / 'bias.json').read_text())['method'] == 'center'
    _search(common + ['--index', tmp_path / 'index', '--topics', topics, '--retriever', 'dense', '--hits', '5',
                      '--output', tmp_path / 'i.trec'])
    _search(common + fix + ['--dataset', folder, '--topics', topics, '--retriever', 'dense', '--hits', '5',
                            '--output', tmp_path / 'd.trec'])
    _search(common + ['--dataset', folder, '--topics', topics, '--retriever', 'dense', '--hits', '5',
                      '--output', tmp_path / 'plain.trec'])
    corrected, plain = read_run(tmp_path / 'd.trec'), read_run(tmp_path / 'plain.trec')
    assert _ranking(read_run(tmp_path / 'i.trec')) == _ranking(corrected)
    assert _ranking(corrected) != _ranking(plain)     # the correction did change the Multi rankings
