"""LAReQA datasets: facts of the real XQuAD-R, the id rules, ir_datasets, export, Pyserini and trec_eval.

Expected numbers come from the issue / paper (counts), from a second, independent reading of the JSON
files in this test (ids and qrels), from hand-worked fixture layouts, or from docs/environment.md.
"""
from __future__ import annotations

import glob
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pyserini_hybrid  # noqa: F401  (registers the lareqa ids)
import ir_datasets
from pyserini_hybrid.datasets import (COLLECTIONS, LareqaDoc, LareqaQuery, Pool, Setting, clear_cache,
                                      collection_files, dataset_id_from_run_filename, export_setting,
                                      is_available, list_settings, load_pool, parse_dataset_id, parse_file,
                                      run_filename)
from pyserini_hybrid.datasets._download import fetch, file_md5

REPO = Path(__file__).resolve().parents[1]
PY = sys.executable

# Facts stated in the issue (and paper.md): XQuAD-R candidates per language.
XQUAD_DOCS = {'ar': 1222, 'de': 1276, 'el': 1234, 'en': 1180, 'es': 1215, 'hi': 1244, 'ru': 1219,
              'th': 852, 'tr': 1167, 'vi': 1209, 'zh': 1196}


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(extra)
    return env


def _reference_read(directory: Path, langs) -> tuple[dict[str, str], dict[str, dict[str, str]], list[str]]:
    """A second reading of the LAReQA rules, written from the issue text alone."""
    docs, answers, qids = {}, {}, []
    for lang in langs:
        data = json.loads((directory / f'{lang}.json').read_text(encoding='utf-8'))
        p = 0
        for article in data['data']:
            for para in article['paragraphs']:
                for s, sentence in enumerate(para['sentences']):
                    docs[f'{lang}_{p}_{s}'] = sentence
                for qa in para['qas']:
                    start = qa['answers'][0]['answer_start']
                    hits = [s for s, (b, e) in enumerate(para['sentence_breaks']) if b <= start < e]
                    assert len(hits) == 1
                    answers.setdefault(qa['id'], {})[lang] = f'{lang}_{p}_{hits[0]}'
                    qids.append(f"{qa['id']}_{lang}")
                p += 1
    return docs, answers, qids


# --------------------------------------------------------------------------- real XQuAD-R


def test_xquad_counts_through_ir_datasets(lareqa_dir):
    multi = ir_datasets.load('lareqa/xquad-r')
    assert multi.docs_count() == 13014
    assert multi.queries_count() == 13090
    assert multi.qrels_count() == 143990
    per_query = Counter(q.query_id for q in multi.qrels_iter())
    assert len(per_query) == 13090 and set(per_query.values()) == {11}
    assert Counter(q.lang for q in multi.queries_iter()) == {l: 1190 for l in XQUAD_DOCS}
    for lang, count in XQUAD_DOCS.items():
        mono = ir_datasets.load(f'lareqa/xquad-r/{lang}')
        assert mono.docs_count() == count, lang
        assert mono.queries_count() == 1190 and mono.qrels_count() == 1190
    cross = ir_datasets.load('lareqa/xquad-r/th-de')
    assert (cross.docs_count(), cross.queries_count(), cross.qrels_count()) == (1276, 1190, 1190)


def test_xquad_ids_and_qrels_follow_the_rules(lareqa_dir):
    langs = COLLECTIONS['xquad-r']
    docs, answers, qids = _reference_read(lareqa_dir / 'xquad-r', langs)
    pool = load_pool('xquad-r')
    assert {d.doc_id: d.text for d in pool.docs} == docs
    assert len(pool.docs) == len(docs) == 13014  # ids unique although some sentence texts repeat
    assert len(set(d.text for d in pool.docs)) < len(pool.docs)
    assert sorted(q.query_id for q in pool.queries) == sorted(qids)
    expected = {f'{sid}_{lang}': {doc: 1 for doc in by_lang.values()}
                for sid, by_lang in answers.items() for lang in by_lang}
    assert pool.qrels == expected
    # the paragraph context of every candidate holds its sentence's words (tr has 2 shifted breaks)
    assert sum(d.text[:10] in d.context for d in pool.docs) >= 13000
    assert all(d.doc_id.startswith(d.lang + '_') for d in pool.docs)
    # first question of the file: answer_start 34 is in the first sentence of the first paragraph
    assert pool.qrels['56beb4343aeaaa14008c925b_en'] == {f'{l}_0_0': 1 for l in langs}
    query = next(q for q in pool.queries if q.query_id == '56beb4343aeaaa14008c925b_en')
    assert query == LareqaQuery('56beb4343aeaaa14008c925b_en',
                                'How many points did the Panthers defense surrender?', 'en')


def test_xquad_settings_select_the_right_queries_docs_and_qrels(lareqa_dir):
    pool = load_pool('xquad-r')
    assert load_pool('xquad-r') is pool  # cached per process
    docs = pool.doc_indices('lareqa/xquad-r/en-de')
    assert len(docs) == 1276 and {pool.docs[i].lang for i in docs} == {'de'}
    queries = pool.query_indices(parse_dataset_id('lareqa/xquad-r/en-de'))
    assert len(queries) == 1190 and {pool.queries[i].lang for i in queries} == {'en'}
    qrels = pool.qrels_for('lareqa/xquad-r/en-de')
    assert len(qrels) == 1190
    assert all(len(d) == 1 and next(iter(d)).startswith('de_') for d in qrels.values())
    multi = parse_dataset_id('lareqa/xquad-r')
    assert len(pool.doc_indices(multi)) == 13014 and len(pool.query_indices(multi)) == 13090
    assert pool.qrels_for(multi) == pool.qrels
    with pytest.raises(ValueError, match='mlqa-r'):
        pool.doc_indices('lareqa/mlqa-r/en')


def test_parsing_is_fast_and_cached(lareqa_dir):
    clear_cache()
    start = time.perf_counter()
    pool = load_pool('xquad-r')
    first = time.perf_counter() - start
    start = time.perf_counter()
    assert load_pool('xquad-r') is pool
    again = time.perf_counter() - start
    assert first < 5.0, f'parsing all 11 XQuAD-R files took {first:.2f} s'
    assert again < 0.1


# --------------------------------------------------------------------------- id scheme


def test_settings_and_ids():
    xq, ml = list_settings('xquad-r'), list_settings('mlqa-r')
    assert (len(xq), len(ml)) == (11 + 110 + 1, 7 + 42 + 1)
    assert [s.kind for s in xq] == ['mono'] * 11 + ['cross'] * 110 + ['multi']
    assert [s.dataset_id for s in xq[:2]] == ['lareqa/xquad-r/ar', 'lareqa/xquad-r/de']
    assert [s.dataset_id for s in xq[11:13]] == ['lareqa/xquad-r/ar-de', 'lareqa/xquad-r/ar-el']
    assert xq[-1] == Setting('lareqa/xquad-r', 'xquad-r', 'multi', None, COLLECTIONS['xquad-r'])
    assert parse_dataset_id('lareqa/mlqa-r/hi-vi') == Setting('lareqa/mlqa-r/hi-vi', 'mlqa-r', 'cross', 'hi', ('vi',))
    assert parse_dataset_id('lareqa/mlqa-r/de') == Setting('lareqa/mlqa-r/de', 'mlqa-r', 'mono', 'de', ('de',))
    assert run_filename('lareqa/xquad-r/en-de') == 'lareqa.xquad-r.en-de.trec'
    assert run_filename('lareqa/mlqa-r') == 'lareqa.mlqa-r.trec'
    for s in xq + ml:
        assert dataset_id_from_run_filename(run_filename(s.dataset_id)) == s.dataset_id
    assert dataset_id_from_run_filename('run_files/x/lareqa.xquad-r.el.trec') == 'lareqa/xquad-r/el'
    registered = [i for i in ir_datasets.registry if i.startswith('lareqa/')]
    assert sorted(registered) == sorted(s.dataset_id for s in xq + ml)


# --------------------------------------------------------------------------- ir_datasets API


def test_ir_datasets_api(lareqa_dir):
    ds = ir_datasets.load('lareqa/xquad-r/de-en')
    assert ds.docs_cls() is LareqaDoc and ds.queries_cls() is LareqaQuery
    first = ds.docs_iter()[0]
    assert first.doc_id == 'en_0_0' and first.lang == 'en' and first.text in first.context
    assert [d.doc_id for d in ds.docs_iter()[1:3]] == ['en_0_1', 'en_0_2']
    store = ds.docs_store()
    assert store.get('en_0_3').text.startswith('The Panthers line also featured veteran')
    assert ds.docs.lookup(['en_0_0', 'de_0_0']).keys() == {'en_0_0'}  # de is not in this corpus
    assert ds.docs.lang == 'en' and ds.queries.lang == 'de'
    q = next(ds.queries_iter())
    assert q.query_id.endswith('_de') and q.default_text() == q.text
    qrel = next(ds.qrels_iter())
    assert (qrel.query_id, qrel.relevance, qrel.iteration) == (q.query_id, 1, '0')
    assert qrel.doc_id.startswith('en_')
    # one relevance level, described as the LAReQA paper defines a relevant candidate
    assert ds.qrels_defs() == {1: 'answer sentence: the candidate whose span holds the answer, in the corpus language'}
    assert {q.relevance for q in ds.qrels_iter()} == set(ds.qrels_defs())
    doc = ds.documentation()
    assert 'CC BY-SA 4.0' in doc['license'] and 'de' in doc['pretty_name'] and '{' not in doc['desc']
    assert 'CC BY-NC 4.0' in ir_datasets.load('lareqa/mlqa-r').documentation()['license']
    assert '@inproceedings' in ir_datasets.load('lareqa/xquad-r').documentation()['bibtex']
    # Mono en and every X-en Cross share one corpus handler
    assert ir_datasets.load('lareqa/xquad-r/en').docs_handler() is ds.docs_handler()
    assert ir_datasets.docs_parent_id('lareqa/xquad-r') == 'lareqa/xquad-r'


def test_import_stays_cheap_and_registration_is_lazy_and_idempotent():
    code = ("import sys, pyserini_hybrid\n"
            "heavy = [m for m in ('ir_datasets', 'torch', 'pyserini', 'jnius', 'numpy') if m in sys.modules]\n"
            "assert not heavy, heavy\n"
            "import ir_datasets\n"
            "from pyserini_hybrid.datasets import register\n"
            "register(); register()\n"
            "ds = ir_datasets.load('lareqa/mlqa-r/en-de')\n"
            "print(ds.dataset_id(), len([i for i in ir_datasets.registry if i.startswith('lareqa')]))\n")
    out = subprocess.run([PY, '-c', code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ['lareqa/mlqa-r/en-de', '172']
    # ir_datasets first, then our package: registered at once
    code = ("import ir_datasets, pyserini_hybrid\n"
            "print(ir_datasets.load('lareqa/xquad-r/zh').dataset_id())\n")
    out = subprocess.run([PY, '-c', code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == 'lareqa/xquad-r/zh', out.stderr


# --------------------------------------------------------------------------- fixtures (MLQA-R)


def test_mlqa_fixture_pool_follows_the_rules(fixtures_dir):
    """Hand-worked from the fixture layouts (see tests/fixtures/lareqa/mlqa-r/*.json)."""
    pool = load_pool('mlqa-r', data_dir=fixtures_dir / 'lareqa', verify=False)
    assert Counter(d.lang for d in pool.docs) == {'en': 8, 'ar': 5, 'de': 5, 'es': 2, 'hi': 4, 'vi': 4, 'zh': 3}
    assert Counter(q.lang for q in pool.queries) == {'en': 6, 'ar': 2, 'de': 2, 'es': 2, 'hi': 2, 'vi': 2, 'zh': 2}
    # paragraph counter runs over the whole file: de paragraph 1 of article 0, paragraph 2 = article 1
    assert pool.qrels['q1_de'] == {'en_0_1': 1, 'ar_0_0': 1, 'de_1_1': 1, 'zh_0_2': 1}
    assert pool.qrels['q4_en'] == {'en_2_1': 1, 'de_2_0': 1}
    assert pool.qrels['q5_hi'] == {'en_2_0': 1, 'ar_1_2': 1, 'es_0_0': 1, 'hi_1_1': 1}
    assert pool.qrels['q2_es'] == {'en_0_2': 1, 'es_0_1': 1}  # the first of two answers counts
    assert pool.qrels['q6_zh'] == {'en_3_0': 1, 'vi_1_0': 1, 'zh_0_0': 1}  # zh: bullet gaps, repeated text
    assert pool.qrels['q3_vi'] == {'en_1_0': 1, 'hi_0_0': 1, 'vi_0_2': 1}
    assert {len(d) for d in pool.qrels.values()} == {2, 3, 4}
    assert sum(len(d) for d in pool.qrels.values()) == 58
    assert pool.qrels_for('lareqa/mlqa-r/de-ar') == {'q1_de': {'ar_0_0': 1}}
    assert pool.qrels_for('lareqa/mlqa-r/en-es') == {'q2_en': {'es_0_1': 1}, 'q5_en': {'es_0_0': 1}}
    assert [pool.queries[i].query_id for i in pool.query_indices('lareqa/mlqa-r/es')] == ['q2_es', 'q5_es']
    assert len(pool.query_indices('lareqa/mlqa-r/vi-es')) == 0  # no shared question
    assert len(pool.query_indices('lareqa/mlqa-r')) == 18
    zh = [pool.docs[i] for i in pool.doc_indices('lareqa/mlqa-r/zh')]
    assert [d.doc_id for d in zh] == ['zh_0_0', 'zh_0_1', 'zh_0_2'] and zh[0].text == zh[2].text


def test_mlqa_fixture_through_ir_datasets(fixtures_dir, monkeypatch):
    monkeypatch.setenv('PYSERINI_HYBRID_DATA', str(fixtures_dir / 'lareqa'))
    monkeypatch.setenv('PYSERINI_HYBRID_VERIFY', '0')
    counts = {}
    for dataset_id in ('lareqa/mlqa-r', 'lareqa/mlqa-r/en', 'lareqa/mlqa-r/en-de', 'lareqa/mlqa-r/de-ar'):
        ds = ir_datasets.load(dataset_id)
        counts[dataset_id] = (ds.docs_count(), ds.queries_count(), ds.qrels_count())
    assert counts == {'lareqa/mlqa-r': (31, 18, 58), 'lareqa/mlqa-r/en': (8, 6, 6),
                      'lareqa/mlqa-r/en-de': (5, 2, 2), 'lareqa/mlqa-r/de-ar': (5, 1, 1)}
    assert [q.query_id for q in ir_datasets.load('lareqa/mlqa-r/zh-en').queries_iter()] == ['q1_zh', 'q6_zh']


def test_xquad_fixture_pool(fixtures_dir):
    """The tiny XQuAD-R fixture other tests can use: 11 languages, 4 questions, 6 to 8 sentences each."""
    pool = load_pool('xquad-r', data_dir=fixtures_dir / 'lareqa', verify=False)
    assert (len(pool.docs), len(pool.queries), sum(map(len, pool.qrels.values()))) == (76, 44, 484)
    assert pool.qrels['x2_th'] == {f'{l}_1_0': 1 for l in COLLECTIONS['xquad-r']}
    assert pool.qrels['x3_el'] == {f'{l}_2_2': 1 for l in COLLECTIONS['xquad-r']}


# --------------------------------------------------------------------------- data sources


def test_files_come_from_the_ir_datasets_cache_offline(lareqa_dir, tmp_path, monkeypatch):
    cache = tmp_path / 'irds' / 'lareqa' / 'xquad-r'
    shutil.copytree(lareqa_dir / 'xquad-r', cache)
    monkeypatch.delenv('PYSERINI_HYBRID_DATA')
    monkeypatch.setenv('IR_DATASETS_HOME', str(tmp_path / 'irds'))
    monkeypatch.setenv('PYSERINI_HYBRID_OFFLINE', '1')
    files = collection_files('xquad-r')
    assert files == {l: cache / f'{l}.json' for l in COLLECTIONS['xquad-r']}
    assert is_available('xquad-r') and not is_available('mlqa-r')
    assert len(load_pool('xquad-r').docs) == 13014


def _serve(directory: Path):
    handler = partial(SimpleHTTPRequestHandler, directory=str(directory))
    handler.log_message = lambda *a, **k: None
    server = ThreadingHTTPServer(('127.0.0.1', 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_download_through_ir_datasets_machinery(fixtures_dir, tmp_path, monkeypatch):
    monkeypatch.setenv('NO_PROXY', '127.0.0.1,localhost')
    source = fixtures_dir / 'lareqa' / 'mlqa-r' / 'en.json'
    server = _serve(source.parent)
    try:
        url = f'http://127.0.0.1:{server.server_address[1]}/en.json'
        dest = tmp_path / 'cache' / 'mlqa-r' / 'en.json'
        assert fetch(url, file_md5(source), dest) == dest
    finally:
        server.shutdown()
        server.server_close()
    assert dest.read_bytes() == source.read_bytes()
    assert sorted(p.name for p in dest.parent.iterdir()) == ['en.json']


# --------------------------------------------------------------------------- CLI, export, Pyserini, trec_eval


def _cli(capsys, *argv: str) -> tuple[str, str]:
    """Run the CLI in this process (its imports are already paid for); return (stdout, stderr)."""
    from pyserini_hybrid.datasets.__main__ import main

    capsys.readouterr()
    main(list(argv))
    return capsys.readouterr()


def test_cli_list(lareqa_dir, capsys):
    stdout, stderr = _cli(capsys, 'list')
    rows = [line.split('\t') for line in stdout.splitlines()]
    assert rows[0] == ['dataset_id', 'queries', 'docs', 'qrels'] and len(rows) == 1 + 122 + 50
    table = {r[0]: r[1:] for r in rows[1:]}
    assert table['lareqa/xquad-r'] == ['13090', '13014', '143990']
    assert table['lareqa/xquad-r/th'] == ['1190', '852', '1190']
    assert table['lareqa/xquad-r/vi-zh'] == ['1190', '1196', '1190']
    assert table['lareqa/mlqa-r/en'] == ['-', '-', '-']  # MLQA-R is not provided here
    assert 'mlqa-r' in stderr and 'mlqa-r/ar.json' in stderr


def test_cli_passes_through_to_ir_datasets(lareqa_dir, capsys):
    stdout, _ = _cli(capsys, 'export', 'lareqa/xquad-r/hi-en', 'queries', '--format', 'jsonl')
    rows = [json.loads(line) for line in stdout.splitlines()]
    assert len(rows) == 1190 and {r['lang'] for r in rows} == {'hi'}
    stdout, _ = _cli(capsys, 'ir_datasets', 'lookup', 'lareqa/xquad-r/en', 'en_0_0', '--format', 'jsonl')
    assert json.loads(stdout)['text'].startswith('The Panthers defense gave up just 308 points')


def _java_and_jar() -> tuple[str, str]:
    java_home = pyserini_hybrid.setup_java()
    jars = importlib.util.find_spec('pyserini').submodule_search_locations[0]
    return str(Path(java_home) / 'bin' / 'java'), glob.glob(os.path.join(jars, 'resources', 'jars', '*.jar'))[0]


@pytest.mark.slow
def test_export_loads_in_pyserini_and_trec_eval(lareqa_dir, tmp_path, capsys):
    export = tmp_path / 'de'
    _cli(capsys, 'export', 'lareqa/xquad-r/de', '--output-dir', str(export))
    assert sorted(p.name for p in export.iterdir()) == ['corpus.jsonl', 'qrels.txt', 'topics.tsv']
    corpus = [json.loads(line) for line in (export / 'corpus.jsonl').read_text(encoding='utf-8').splitlines()]
    assert len(corpus) == 1276 and set(corpus[0]) == {'id', 'contents', 'lang'}
    topics = [line.split('\t') for line in (export / 'topics.tsv').read_text(encoding='utf-8').splitlines()]
    assert len(topics) == 1190 and all(len(t) == 2 and t[0].endswith('_de') and t[1] for t in topics)
    # Pyserini indexes the exported folder as a JsonCollection (topics.tsv / qrels.txt are skipped).
    index = tmp_path / 'index'
    out = subprocess.run([PY, '-m', 'pyserini_hybrid.pyserini', 'pyserini.index.lucene', '-collection',
                          'JsonCollection', '-input', str(export), '-index', str(index), '-generator',
                          'DefaultLuceneDocumentGenerator', '-threads', '1', '-language', 'de'],
                         capture_output=True, text=True, cwd=REPO, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert 'Total 1,276 documents indexed' in out.stdout + out.stderr
    # trec_eval (Anserini's port, which pyserini.eval.trec_eval runs) reads qrels.txt: a run that puts
    # each query's relevant sentence second, after one non-relevant sentence, scores map 0.5 exactly.
    qrels = [line.split() for line in (export / 'qrels.txt').read_text().splitlines()]
    run = tmp_path / 'second.trec'
    with open(run, 'w') as out_run:
        for qid, _, rel, _ in qrels:
            other = corpus[0]['id'] if corpus[0]['id'] != rel else corpus[1]['id']
            out_run.write(f'{qid} Q0 {other} 1 2.0 t\n{qid} Q0 {rel} 2 1.0 t\n')
    java, jar = _java_and_jar()
    out = subprocess.run([java, '-cp', jar, 'trec_eval', '-m', 'map', '-m', 'num_q', '-m', 'num_rel',
                          '-m', 'num_rel_ret', str(export / 'qrels.txt'), str(run)],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    metrics = {line.split()[0]: line.split()[2] for line in out.stdout.splitlines() if line.strip()}
    assert metrics == {'map': '0.5000', 'num_q': '1190', 'num_rel': '1190', 'num_rel_ret': '1190'}


def test_export_default_location_and_existing_directory(fixtures_dir, tmp_path, monkeypatch):
    monkeypatch.setenv('PYSERINI_HYBRID_DATA', str(fixtures_dir / 'lareqa'))
    monkeypatch.setenv('PYSERINI_HYBRID_VERIFY', '0')
    monkeypatch.chdir(tmp_path)
    out = export_setting('lareqa/mlqa-r/en-de')
    assert out == Path('topics/lareqa.mlqa-r.en-de')
    assert (out / 'qrels.txt').read_text() == 'q1_en 0 de_1_1 1\nq4_en 0 de_2_0 1\n'
    assert (out / 'topics.tsv').read_text(encoding='utf-8') == 'q1_en\ten question one?\nq4_en\ten question four?\n'
    # exporting again into the existing folder replaces the three files and keeps other files
    (out / 'notes.txt').write_text('mine')
    export_setting('lareqa/mlqa-r/de', out)
    assert (out / 'qrels.txt').read_text() == 'q1_de 0 de_1_1 1\nq4_de 0 de_2_0 1\n'
    assert sorted(p.name for p in out.iterdir()) == ['corpus.jsonl', 'notes.txt', 'qrels.txt', 'topics.tsv']


# --------------------------------------------------------------------------- property test of the parser

_TEXT = st.text(alphabet=st.characters(codec='utf-8', exclude_categories=('Cs',)), min_size=1, max_size=12)
_GAP = st.sampled_from(['', ' ', '  ', '•', ' · ', '\n'])
_LANGS = COLLECTIONS['mlqa-r']


@st.composite
def _collection(draw):
    """Per language: articles -> paragraphs -> sentences, gaps, and questions with known answer sentences."""
    qids = [f'q{i}' for i in range(draw(st.integers(1, 6)))]
    files, truth = {}, {}
    for lang in _LANGS:
        articles, p, placed = [], 0, []
        for _ in range(draw(st.integers(0, 2))):
            paragraphs = []
            for _ in range(draw(st.integers(0, 3))):
                sentences = draw(st.lists(_TEXT, min_size=0, max_size=4))
                context, breaks = draw(_GAP), []
                for i, sentence in enumerate(sentences):
                    context += draw(_GAP) if i else ''
                    breaks.append([len(context), len(context) + len(sentence)])
                    context += sentence
                context += draw(_GAP)
                paragraphs.append({'context': context, 'sentences': sentences, 'sentence_breaks': breaks,
                                   'qas': [], 'p': p})
                if sentences:
                    placed.append(paragraphs[-1])
                p += 1
            articles.append({'title': 't', 'paragraphs': paragraphs})
        if placed:
            for qid in draw(st.lists(st.sampled_from(qids), unique=True)):
                para = draw(st.sampled_from(placed))
                s = draw(st.integers(0, len(para['sentences']) - 1))
                start, end = para['sentence_breaks'][s]
                answer = draw(st.integers(start, end - 1))
                para['qas'].append({'id': qid, 'question': f'{qid} in {lang}?',
                                    'answers': [{'answer_start': answer, 'text': 'x'}]})
                truth.setdefault(qid, {})[lang] = f"{lang}_{para['p']}_{s}"
        for article in articles:
            for para in article['paragraphs']:
                para.pop('p')
        files[lang] = {'data': articles, 'version': '1.1'}
    return files, truth


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(_collection())
def test_parser_property(tmp_path_factory, generated):
    files, truth = generated
    folder = tmp_path_factory.mktemp('gen') / 'mlqa-r'
    folder.mkdir()
    for lang, data in files.items():
        (folder / f'{lang}.json').write_text(json.dumps(data, ensure_ascii=False), encoding='utf-8')
    pool = Pool('mlqa-r', {lang: parse_file(folder / f'{lang}.json', lang) for lang in _LANGS})
    expected_docs = [f'{lang}_{p}_{s}' for lang in _LANGS
                     for p, para in enumerate(para for a in files[lang]['data'] for para in a['paragraphs'])
                     for s in range(len(para['sentences']))]
    assert [d.doc_id for d in pool.docs] == expected_docs
    expected_qrels = {f'{qid}_{lang}': {doc: 1 for doc in by_lang.values()}
                      for qid, by_lang in truth.items() for lang in by_lang}
    assert pool.qrels == expected_qrels
    for setting in list_settings('mlqa-r')[::7]:
        wanted = {f'{qid}_{ql}': {doc: 1 for dl, doc in by_lang.items() if dl in setting.doc_langs}
                  for qid, by_lang in truth.items() for ql in by_lang
                  if setting.query_lang in (None, ql) and set(by_lang) & set(setting.doc_langs)}
        assert pool.qrels_for(setting) == wanted
